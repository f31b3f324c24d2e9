"""Sampled against dense evaluation: accuracy, cost and peak memory.

    PYTHONPATH=. python bench/dense_eval.py --workdir=runs/toy [--loops=24]
        [--lengths=1,4,16,64]

With a trained workdir (the README's main command leaves runs/toy):

1. Accuracy and cost on the run's test split: each stream scored from the
   run's T sampled frames (the release's evaluation, the reference) and
   from every frame (`evaluate.frames='all'`, chunks of 32 frames),
   with the late fusion of each (weights 1 : 2, raw logits).
2. The same on "Charades-length" videos: every test video looped --loops
   times (32 x 24 = 768 frames, about 30 s at 25 fps, as Charades' videos
   are); the frame pair at each seam gets the previous pair's flow.
3. Peak memory against video length: one looped test video of 32 x
   --lengths frames, flow stream, each run in a fresh process (peak RSS,
   `ru_maxrss`): dense streaming, against the one-shot alternative that
   puts all n frames in one bag (`make_dataset(num_frames=n)`).

No timing or memory is asserted anywhere.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import keras
import tensorflow as tf

from avlad_tf import run_record
from avlad_tf.data import manifest
from avlad_tf.data import schema
from avlad_tf.data import video_input
from avlad_tf.evaluation import late_fusion
from avlad_tf.evaluation import metrics
from avlad_tf.evaluation import score_files as scores_lib
from avlad_tf.evaluation import scoring
from avlad_tf.evaluation.dense import predict_split_dense

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STREAMS, WEIGHTS = ("rgb", "flow"), (1.0, 2.0)


def looped_dataset(data_dir, split, loops, out_dir, *, limit=None):
    """`split` with every video played `loops` times, as a new dataset."""
    info = video_input.dataset_info(data_dir)
    files, _ = manifest.split_shards(info, data_dir, split)
    records = []
    for serialized in tf.data.TFRecordDataset(files).take(limit or -1):
        ex = schema.parse_sequence_example(serialized)
        rgb = list(ex[schema.RGB_KEY].numpy()) * loops
        flows = []
        for key in (schema.FLOW_X_KEY, schema.FLOW_Y_KEY):
            one = list(ex[key].numpy())
            flows.append((one + one[-1:]) * (loops - 1) + one)  # seam: repeat
        records.append(
            schema.make_sequence_example(
                video_id=ex[schema.VIDEO_ID_KEY].numpy().decode(),
                labels=ex[schema.LABEL_INDEX_KEY].numpy().tolist(),
                rgb_jpegs=rgb,
                flow_x_jpegs=flows[0],
                flow_y_jpegs=flows[1],
            )
        )
    os.makedirs(out_dir, exist_ok=True)
    name = f"{split}-00000-of-00001.tfrecord"
    with tf.io.TFRecordWriter(os.path.join(out_dir, name)) as writer:
        for record in records:
            writer.write(record)
    splits = {
        split: {
            "num_records": len(records),
            "shards": [{"file": name, "num_records": len(records)}],
        }
    }
    keep = (
        "dataset",
        "labels",
        "num_classes",
        "multi_label",
        "frame_height",
        "frame_width",
        "flow",
    )
    schema.write_metadata(
        out_dir, {**{k: info[k] for k in keep if k in info}, "splits": splits}
    )
    return out_dir


def score(workdir, stream, data_dir, split, dense, one_shot_frames=None):
    """`(logits, labels, seconds)` of one stream, sampled or dense."""
    record = run_record.read(workdir)
    entry = run_record.stream(record, stream)
    settings = dict(entry["input"])
    if one_shot_frames:
        settings["num_frames"] = one_shot_frames
    model = scoring.load_stream_model(workdir, stream)
    info = video_input.dataset_info(data_dir)
    start = time.perf_counter()
    if dense:
        logits, _, hot = predict_split_dense(
            model,
            data_dir=data_dir,
            split=split,
            info=info,
            settings=settings,
            num_crops=entry["num_crops"],
            frame_stride=1,
            chunk_frames=32,
        )
    else:
        dataset = video_input.make_dataset(
            data_dir=data_dir,
            split=split,
            training=False,
            modalities=tuple(entry["modalities"]),
            batch_size=1,
            num_crops=entry["num_crops"],
            with_ids=True,
            info=info,
            **settings,
        )
        logits, _, hot = scoring.predict_split(model, dataset)
    return logits, scores_lib.label_array(hot), time.perf_counter() - start


def compare(workdir, data_dir, split, title):
    print(f"\n{title}")
    print("| frames | rgb top-1 | flow top-1 | late fusion top-1 | seconds |")
    print("|---|---|---|---|---|")
    for dense in (False, True):
        logits, seconds = {}, 0.0
        for stream in STREAMS:
            logits[stream], labels, spent = score(
                workdir, stream, data_dir, split, dense
            )
            seconds += spent
        fused = late_fusion.fuse_scores([logits[s] for s in STREAMS], WEIGHTS)
        accuracy = [
            metrics.top_k_accuracy(x, labels, k=1) * 100
            for x in (logits["rgb"], logits["flow"], fused)
        ]
        name = "all (dense, streamed)" if dense else "T sampled (release)"
        print(
            f"| {name} | {accuracy[0]:.1f} | {accuracy[1]:.1f} | "
            f"{accuracy[2]:.1f} | {seconds:.1f} |"
        )


def child(workdir, data_dir, split, way, frames):
    keras.utils.set_random_seed(0)
    start = time.perf_counter()
    if way == "dense":
        score(workdir, "flow", data_dir, split, True)
    else:
        score(workdir, "flow", data_dir, split, False, one_shot_frames=int(frames))
    return {
        "seconds": time.perf_counter() - start,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def memory_curve(workdir, data_dir, lengths, tmp):
    print("\nPeak memory, one flow video (fresh process each)")
    print(
        "| frames | dense, streamed: peak MB | s | one bag of all frames: peak MB | s |"
    )
    print("|---|---|---|---|---|")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([REPO, env.get("PYTHONPATH", "")])
    for loops in lengths:
        looped = looped_dataset(
            data_dir, "test", loops, os.path.join(tmp, f"m{loops}"), limit=1
        )
        frames = 32 * loops
        cells = []
        for way in ("dense", "one_shot"):
            run = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    workdir,
                    looped,
                    "test",
                    way,
                    str(frames),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if run.returncode:
                cells.append(
                    "failed (" + run.stderr.strip().splitlines()[-1][:60] + ")"
                )
                cells.append("-")
                continue
            r = json.loads(run.stdout.strip().splitlines()[-1])
            cells += [f"{r['peak_mb']:.0f}", f"{r['seconds']:.1f}"]
        print(f"| {frames} | " + " | ".join(cells) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default="runs/toy")
    parser.add_argument("--loops", type=int, default=24)
    parser.add_argument("--lengths", default="1,4,16,64")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    record = run_record.read(args.workdir)
    data_dir, split = record["data"]["data_dir"], record["data"]["evaluate_split"]
    compare(args.workdir, data_dir, split, f"Test split of {data_dir}")
    tmp = tempfile.mkdtemp()
    looped = looped_dataset(data_dir, split, args.loops, os.path.join(tmp, "looped"))
    compare(
        args.workdir,
        looped,
        split,
        f"Every test video looped {args.loops} times ({32 * args.loops} frames)",
    )
    memory_curve(args.workdir, data_dir, [int(x) for x in args.lengths.split(",")], tmp)


if __name__ == "__main__":
    main()
