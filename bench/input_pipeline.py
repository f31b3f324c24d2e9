"""Input pipeline speed against a decode-only reference, in one run.

    python bench/input_pipeline.py [--data_dir=DIR --split=S] [--videos=16]

Without `--data_dir` it writes synthetic records at 256×340 (textured frames,
about the JPEG size of real frames) to a temporary directory. For each
modality (rgb, flow, rgb+flow) and mode (training batches, 1-crop and 5-crop
evaluation batches, float32 or the uint8 crops of
`evaluate.normalize_on_device`) it measures videos/s of `video_input.make_dataset`, and
of a reference that parses the same records, computes the same frame
indices and decodes the same JPEGs (each distinct sampled frame once) and
nothing else, with the same parallel map, batch and prefetch. It prints the
ratio pipeline / reference, by wall time and by this process's CPU time
(steadier on a shared machine), and the pipeline's videos per CPU-second:
what one core feeds (docs/PERFORMANCE.md, planning). Runs alternate and the
best of `--repeats` is kept for each, to damp noise. `--nopartial_decode`
decodes whole frames, as the reference does.
"""

import os
import tempfile
import time

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from avlad_tf.data import manifest
from avlad_tf.data import sampling
from avlad_tf.data import schema
from avlad_tf.data import video_input

# name: (training, crops, pixel dtype). uint8 is `evaluate.normalize_on_device`,
# evaluation's default where frames are stored at `resize_to`; float32 its
# fallback.
MODES = {
    "train": (True, 1, "float32"),
    "eval1": (False, 1, "uint8"),
    "eval5": (False, 5, "uint8"),
    "eval1_float": (False, 1, "float32"),
    "eval5_float": (False, 5, "float32"),
}

flags.DEFINE_string("data_dir", None, "prepared dataset; synthetic if unset")
flags.DEFINE_string("split", "train", "split to read")
flags.DEFINE_integer("videos", 16, "synthetic videos to write")
flags.DEFINE_integer("frames", 186, "frames per synthetic video (UCF101 mean)")
flags.DEFINE_integer("batch_size", 4, "videos per batch")
flags.DEFINE_integer("batches", 8, "batches timed per run")
flags.DEFINE_integer("repeats", 2, "runs of each measurement (best kept)")
flags.DEFINE_list("streams", ["rgb", "flow", "rgb+flow"], "stream sets to time")
flags.DEFINE_list("modes", list(MODES), f"modes to time, of {list(MODES)}")
flags.DEFINE_boolean(
    "partial_decode", True, "make_dataset's partial_decode (False: whole frames)"
)
FLAGS = flags.FLAGS


def _texture(rng, height, width, channels):
    """Smooth noise plus detail: JPEG sizes like real frames (~20 kB RGB)."""
    coarse = rng.uniform(0, 255, (height // 16 + 1, width // 16 + 1, channels))
    image = tf.image.resize(coarse[None], [height, width], "bicubic")[0].numpy()
    image += rng.normal(0, 12, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_synthetic(data_dir, *, num_videos, num_frames, seed=0):
    """Writes `num_videos` textured videos at 256×340 as split 'train'."""
    rng = np.random.default_rng(seed)
    h, w = schema.FRAME_HEIGHT, schema.FRAME_WIDTH
    # A pool of frames reused across videos keeps generation fast.
    pool_rgb = [
        tf.io.encode_jpeg(_texture(rng, h, w, 3), quality=90).numpy() for _ in range(16)
    ]
    pool_flow = [
        tf.io.encode_jpeg(_texture(rng, h, w, 1), quality=90).numpy() for _ in range(16)
    ]
    name = "train-00000-of-00001.tfrecord"
    with tf.io.TFRecordWriter(os.path.join(data_dir, name)) as writer:
        for v in range(num_videos):

            def pick(pool, k, v=v):
                return [pool[(v + i) % len(pool)] for i in range(k)]

            writer.write(
                schema.make_sequence_example(
                    video_id=f"synthetic/{v}",
                    labels=[v % 2],
                    rgb_jpegs=pick(pool_rgb, num_frames),
                    flow_x_jpegs=pick(pool_flow, num_frames - 1),
                    flow_y_jpegs=pick(pool_flow[::-1], num_frames - 1),
                )
            )
    schema.write_metadata(
        data_dir,
        {
            "dataset": "synthetic",
            "labels": ["a", "b"],
            "num_classes": 2,
            "multi_label": False,
            "frame_height": h,
            "frame_width": w,
            "splits": {
                "train": {
                    "num_records": num_videos,
                    "shards": [{"file": name, "num_records": num_videos}],
                }
            },
        },
    )
    return data_dir


def reference_dataset(
    data_dir, split, *, modalities, training, num_frames=25, flow_stack=10
):
    """Parse, same indices, decode the same distinct JPEGs; nothing else.

    Yields one video per element (distinct frame counts differ, so there is
    nothing to batch without extra work).
    """
    metadata = video_input.dataset_info(data_dir)
    files, _ = manifest.split_shards(metadata, data_dir, split)
    records = tf.data.TFRecordDataset(files)
    if training:
        records = records.repeat()

    def decode_only(serialized):
        example = schema.parse_sequence_example(serialized)
        n = example[schema.LENGTH_KEY]
        out = {}
        flow = sampling.flow_indices(n, num_samples=num_frames, flow_stack=flow_stack)
        if "rgb" in modalities:
            rgb = (
                flow[:, 0]
                if "flow" in modalities
                else sampling.rgb_indices(n, num_samples=num_frames)
            )
            out["rgb"] = video_input.decode_distinct_frames(
                [example[schema.RGB_KEY]], rgb, 3
            )[0]
        if "flow" in modalities:
            out["flow"] = video_input.decode_distinct_frames(
                [example[schema.FLOW_X_KEY], example[schema.FLOW_Y_KEY]], flow, 1
            )[0]
        return out

    dataset = records.map(
        decode_only, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def videos_per_second(dataset, num_videos, videos_per_element):
    """Iterates one warm-up element, then times `num_videos` videos.

    Returns (videos per wall second, videos per CPU second of this process);
    the second is steadier when other processes share the cores.
    """
    iterator = iter(dataset)
    next(iterator)
    videos, start, cpu = 0, time.perf_counter(), time.process_time()
    while videos < num_videos:
        try:
            next(iterator)
        except StopIteration:
            break
        videos += videos_per_element
    return (
        videos / (time.perf_counter() - start),
        videos / (time.process_time() - cpu),
    )


def main(argv):
    del argv
    data_dir = FLAGS.data_dir
    if data_dir is None:
        data_dir = write_synthetic(
            tempfile.mkdtemp(), num_videos=FLAGS.videos, num_frames=FLAGS.frames
        )
    print(f"data {data_dir}, batch {FLAGS.batch_size}, {os.cpu_count()} CPUs visible")
    print(
        "| modalities | mode | pipeline videos/s | decode-only videos/s | "
        "ratio (wall) | ratio (CPU time) | pipeline videos per CPU-s |"
    )
    print("|---|---|---|---|---|---|---|")
    for modalities in (tuple(s.split("+")) for s in FLAGS.streams):
        for mode in FLAGS.modes:
            training, crops, pixels = MODES[mode]
            best_pipe = best_ref = (0.0, 0.0)
            for _ in range(FLAGS.repeats):
                # The eval passes see each video once, so time what exists.
                batches = (
                    FLAGS.batches if training else FLAGS.videos // FLAGS.batch_size - 1
                )
                ref = reference_dataset(
                    data_dir, FLAGS.split, modalities=modalities, training=training
                )
                best_ref = np.maximum(
                    best_ref, videos_per_second(ref, batches * FLAGS.batch_size, 1)
                )
                pipe = video_input.make_dataset(
                    data_dir=data_dir,
                    split=FLAGS.split,
                    training=training,
                    modalities=modalities,
                    batch_size=FLAGS.batch_size,
                    num_crops=crops,
                    pixel_dtype=pixels,
                    partial_decode=FLAGS.partial_decode,
                )
                best_pipe = np.maximum(
                    best_pipe,
                    videos_per_second(
                        pipe, batches * FLAGS.batch_size, FLAGS.batch_size
                    ),
                )
            ratio = best_pipe / best_ref
            print(
                f"| {'+'.join(modalities)} | {mode} | {best_pipe[0]:.2f} | "
                f"{best_ref[0]:.2f} | {ratio[0]:.2f} | {ratio[1]:.2f} | "
                f"{best_pipe[1]:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    app.run(main)
