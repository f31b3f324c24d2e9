"""Per-video latency of `avlad_tf.serving.prediction`, split into decode, flow and model.

    python bench/predict.py [--sizes=toy,default] [--frames=48] [--repeats=2]
        [--reference_sizes=toy]

For each size it saves an untrained two-stream (late fusion) model, exports
it with `avlad_tf.serving.saved_model`, writes an MJPG video of `--frames` frames at
320×240 with OpenCV, and times `prediction.predict_video` on it (best of
`--repeats`, after a warm-up call on zeros that traces the graph):

* `toy`: the toy configuration (gin/toy/base.gin): tiny backbone, K = 16,
  T = 8, L = 4, 56-pixel crops, frames stored at 64×85;
* `default`: the paper's (gin/base.gin): VGG16 conv5_3, K = 64, T = 25,
  L = 10, 224-pixel crops, frames stored at 256×340, 51 classes.

Each part is printed with its share of the total. For the sizes in
`--reference_sizes` the reference, measured in the same run on the same
decoded frames, is TV-L1 on *every* consecutive pair of the video (what a
predictor that computed the video's whole flow would spend); the ratio shows
what sampling the stacks first saves.
"""

import os
import tempfile
import time

from absl import app
from absl import flags
from absl import logging
import cv2
import keras
import numpy as np
import tensorflow as tf

from avlad_tf import run_record
from avlad_tf.data import video_input
from avlad_tf.models import action_vlad
from avlad_tf.serving import prediction
from avlad_tf.serving import saved_model
from data_prep import flow as flow_lib
from data_prep import video_io

flags.DEFINE_list("sizes", ["toy", "default"], "configurations to time")
flags.DEFINE_integer("frames", 48, "frames of the benchmark video")
flags.DEFINE_integer("repeats", 2, "timed runs per size (best kept)")
flags.DEFINE_enum(
    "flow_backend",
    "opencv",
    ["opencv", "keras"],
    "TV-L1 backend (predict's default is keras; the first keras call compiles)",
)
flags.DEFINE_list(
    "reference_sizes",
    ["toy"],
    "sizes whose all-pairs flow reference is measured (TV-L1 "
    "at 256x340 takes seconds per pair on a small CPU)",
)
FLAGS = flags.FLAGS

SIZES = {
    "toy": dict(
        backbone="tiny",
        num_clusters=16,
        num_classes=8,
        num_frames=8,
        flow_stack=4,
        image_size=56,
        stored=(64, 85),
    ),
    "default": dict(
        backbone="vgg16",
        num_clusters=64,
        num_classes=51,
        num_frames=25,
        flow_stack=10,
        image_size=224,
        stored=(256, 340),
    ),
}


def write_video(path, num_frames, *, size=(240, 320)):
    """A textured pattern drifting right and down (real TV-L1 work)."""
    rng = np.random.default_rng(0)
    height, width = size
    texture = cv2.GaussianBlur(
        rng.integers(0, 256, (2 * height, 2 * width, 3), np.uint8), (7, 7), 2
    )
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25, (width, height))
    for i in range(num_frames):
        writer.write(texture[i : i + height, 2 * i : 2 * i + width])
    writer.release()
    return path


def make_export(root, size):
    """An untrained two-stream workdir, exported with matching bindings."""
    cfg = SIZES[size]
    workdir = os.path.join(root, size)
    for modality in ("rgb", "flow"):
        os.makedirs(os.path.join(workdir, modality))
        action_vlad.build_model(
            num_classes=cfg["num_classes"],
            modality=modality,
            backbone=cfg["backbone"],
            num_clusters=cfg["num_clusters"],
            image_size=cfg["image_size"],
            flow_stack=cfg["flow_stack"],
            weights=None,
        ).save(os.path.join(workdir, modality, "model.keras"))
    # The run record training would write; the export reads only this.
    settings = run_record.recorded_settings(video_input.make_dataset)
    settings.update(
        num_frames=cfg["num_frames"],
        flow_stack=cfg["flow_stack"],
        image_size=cfg["image_size"],
        resize_to=cfg["stored"],
    )
    info = {
        "labels": [f"class_{c:02d}" for c in range(cfg["num_classes"])],
        "frame_height": cfg["stored"][0],
        "frame_width": cfg["stored"][1],
    }
    streams = {
        m: {"modalities": [m], "train_split": None, "input": settings, "num_crops": 1}
        for m in ("rgb", "flow")
    }
    run_record.write(
        workdir,
        run_record.build(
            data_dir=root,
            info=info,
            evaluate_split=None,
            streams=streams,
            fuse_weights=(1, 2),
        ),
    )
    export_dir = saved_model.export(workdir=workdir)
    return export_dir


def time_size(root, size, video):
    """Prints the latency split of one size against the all-pairs flow."""
    export_dir = make_export(root, size)
    serve, config = prediction.load_export(export_dir)
    cfg = SIZES[size]
    start = time.perf_counter()
    # Traces the graph; zeros are enough, no flow is computed for them.
    serve(
        **{
            m: tf.zeros([1, cfg["num_frames"], *cfg["stored"], c], tf.uint8)
            for m, c in config["channels"].items()
        }
    )
    first = time.perf_counter() - start
    pair_flow = prediction.flow_function(config, backend=FLAGS.flow_backend)
    best = None
    for _ in range(FLAGS.repeats):
        seconds = prediction.predict_video(serve, config, video, pair_flow)["seconds"]
        if best is None or sum(seconds.values()) < sum(best.values()):
            best = seconds
    frames = video_io.read_video(
        video, height=config["frame_height"], width=config["frame_width"]
    )
    flow_idx = prediction.sample_indices(len(frames), config)["flow"]
    total = sum(best.values())
    print(
        f"\n[{size}] {len(frames)} frames, T={config['num_frames']}, "
        f"L={config['flow_stack']}, stored {config['frame_height']}x"
        f"{config['frame_width']}, graph tracing (first call) {first:.2f} s"
    )
    for part in ("decode", "flow", "model"):
        print(f"  {part:6s} {best[part]:8.3f} s  {best[part] / total:6.1%}")
    print(f"  total  {total:8.3f} s")
    used, pairs = len(np.unique(flow_idx)), len(frames) - 1
    line = f"  TV-L1 on {used} of {pairs} pairs: {best['flow']:.2f} s"
    if size in FLAGS.reference_sizes:
        start = time.perf_counter()
        greys = flow_lib.greys(frames)
        pair_flow(greys[:-1], greys[1:])
        all_pairs = time.perf_counter() - start
        line += (
            f" vs all pairs {all_pairs:.2f} s (ratio {best['flow'] / all_pairs:.2f})"
        )
    print(line)


def main(argv):
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.set_verbosity(logging.WARNING)
    keras.utils.set_random_seed(0)
    unknown = set(FLAGS.sizes) - set(SIZES)
    if unknown:
        raise app.UsageError(
            f"Unknown sizes {sorted(unknown)}; choose from {sorted(SIZES)}."
        )
    with tempfile.TemporaryDirectory() as root:
        video = write_video(os.path.join(root, "bench.avi"), FLAGS.frames)
        for size in FLAGS.sizes:
            time_size(root, size, video)


if __name__ == "__main__":
    app.run(main)
