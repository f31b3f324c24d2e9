"""Top-5 action classes of video files, with a SavedModel from `avlad_tf.export`.

  python -m avlad_tf.predict --model runs/toy/export a.mp4 b.avi [--json]
  python -m avlad_tf.predict --model runs/toy/export --streaming long.mp4

Each video is decoded with OpenCV (any container / codec it reads) and
resized to the stored frame size of the training data; frames are sampled
with evaluation's rules (`avlad_tf.data.sampling`, the release's by default);
TV-L1 flow of the training data's family is computed only for the frame
pairs the sampled stacks use, with `avlad_tf.flow` on Keras's device (a GPU
when present; `--flow_backend=opencv` for OpenCV on the CPU), and quantised
as `data_prep` stores it. The SavedModel's `serving_default` does
the rest (resize, crops, means, model, fusion).

With `--streaming`, each video is decoded one frame at a time and every
`--stride`-th frame (default: the flow stack length) is fed, in chunks, to
the SavedModel's streaming signatures, printing a running top-5 every
`--report_every` seconds of video: memory stays bounded whatever the
video's length (`avlad_tf.serving.streaming_prediction`, docs/SERVING.md).

A video that cannot be read, or is too short for the model's flow stacks,
gets an error line naming the file; the other videos are still processed and
the exit code is 1. The library is `avlad_tf.serving.prediction`.
"""

import json
import sys

from absl import app
from absl import flags

from avlad_tf import cli

if __name__ == "__main__":
    cli.start_quietly()  # first: before anything imports TensorFlow

from avlad_tf.serving import prediction
from avlad_tf.serving import streaming_prediction
from data_prep import video_io


def define_flags():
    """Defined only when run as a program: importing predict (tests) must
    not claim the global flag names `--model` / `--json`."""
    flags.DEFINE_string("model", None, "Export directory (SavedModel).")
    flags.DEFINE_bool("json", False, "Print one JSON document.")
    flags.DEFINE_enum(
        "flow_backend",
        "keras",
        ["keras", "opencv"],
        "What computes TV-L1: avlad_tf.flow on Keras's device (GPU when "
        "present, else XLA on the CPU), or OpenCV on the CPU (docs/FLOW.md).",
    )
    flags.DEFINE_bool(
        "streaming", False, "Stream each video at bounded memory, with running top-5."
    )
    flags.DEFINE_integer(
        "stride", 0, "--streaming: every n-th frame is a sample (0: the flow stack L)."
    )
    flags.DEFINE_integer("chunk_frames", 16, "--streaming: samples per model call.")
    flags.DEFINE_bool(
        "keep_truncated",
        False,
        "Predict a video that decodes to fewer frames than its container "
        "promises from the frames that do (as data_prep's flag); refused "
        "otherwise.",
    )
    flags.DEFINE_float(
        "report_every", 10.0, "--streaming: seconds of video between running top-5s."
    )


def _print_text(results):
    for result in results:
        if "error" in result:
            print(f"error: {result['video']}: {result['error']}", file=sys.stderr)
            continue
        print(result["video"])
        for rank, entry in enumerate(result["top5"], start=1):
            print(f"  {rank}. {entry['probability']:.4f}  {entry['class']}")


def _print_report(report):
    minutes, seconds = divmod(report["second"], 60)
    ranked = " | ".join(f"{e['class']} {e['probability']:.3f}" for e in report["top5"])
    print(f"  [{int(minutes):02d}:{seconds:04.1f}] {ranked}", flush=True)


def _streaming(paths):
    streamer = streaming_prediction.Streamer(
        flags.FLAGS.model, flow_backend=flags.FLAGS.flow_backend
    )
    results = []
    for path in paths:
        if not flags.FLAGS.json:
            print(path, "(streaming)", flush=True)
        try:
            results.append(
                streamer.run(
                    path,
                    stride=flags.FLAGS.stride or None,
                    chunk_frames=flags.FLAGS.chunk_frames,
                    report_every=flags.FLAGS.report_every,
                    on_report=None if flags.FLAGS.json else _print_report,
                    keep_truncated=flags.FLAGS.keep_truncated,
                )
            )
        except (video_io.SourceError, prediction.VideoError) as e:
            results.append({"video": path, "error": str(e)})
    return results


def main(argv):
    paths = argv[1:]
    if not flags.FLAGS.model:
        raise app.UsageError("--model EXPORT_DIR is required.")
    if not paths:
        raise app.UsageError("Give at least one video file.")
    if flags.FLAGS.streaming:
        results = _streaming(paths)
    else:
        results = prediction.predict_videos(
            flags.FLAGS.model,
            paths,
            flow_backend=flags.FLAGS.flow_backend,
            keep_truncated=flags.FLAGS.keep_truncated,
        )
    if flags.FLAGS.json:
        json.dump(
            {"model": flags.FLAGS.model, "results": results}, sys.stdout, indent=2
        )
        print()
        for result in results:
            if "error" in result:
                print(f"error: {result['video']}: {result['error']}", file=sys.stderr)
    else:
        _print_text(results)
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    define_flags()
    cli.run(main)
