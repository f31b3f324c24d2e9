"""Peak memory of `predict --streaming` against video length.

    PYTHONPATH=. python bench/predict_streaming.py [--minutes=1,10,30] [--stride=25]

Exports bench/predict.py's untrained `toy` two-stream model (tiny backbone,
K = 16, L = 4, frames stored at 64x85), writes MJPG videos of each length
at 25 fps (a textured pattern drifting 1 px per frame, at the stored size),
and streams each through `avlad_tf.serving.streaming_prediction` (running top-5 every
10 s of video) in a fresh process, whose peak resident memory (`ru_maxrss`)
is the measure. The reference is the shortest video, measured in the same
run: a bounded stream has the same peak at every length. No timing or
memory is asserted anywhere.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEIGHT, WIDTH, FPS = 64, 85, 25


def write_long_video(path, num_frames):
    """A texture drifting 1 px per frame, wrapping around (any length)."""
    texture = cv2.GaussianBlur(
        np.random.default_rng(0).integers(0, 256, (HEIGHT, 4 * WIDTH, 3), np.uint8),
        (7, 7),
        2,
    )
    writer = cv2.VideoWriter(
        path, cv2.VideoWriter_fourcc(*"MJPG"), FPS, (WIDTH, HEIGHT)
    )
    for i in range(num_frames):
        writer.write(np.roll(texture, -i, axis=1)[:, :WIDTH])
    writer.release()
    return path


def measure(export_dir, video, stride):
    """In this process: streams `video`; peak RSS and seconds."""
    from avlad_tf.serving import streaming_prediction

    start = time.perf_counter()
    result = streaming_prediction.Streamer(export_dir).run(video, stride=stride)
    return {
        "frames": result["frames"],
        "samples": result["samples"],
        "reports": len(result["reports"]),
        "seconds": time.perf_counter() - start,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", default="1,10,30")
    parser.add_argument("--stride", type=int, default=25)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child, args.stride)))
        return
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import predict as predict_bench  # bench/predict.py

    root = tempfile.mkdtemp()
    export_dir = predict_bench.make_export(root, "toy")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([REPO, env.get("PYTHONPATH", "")])
    rows = []
    for minutes in (float(m) for m in args.minutes.split(",")):
        video = write_long_video(
            os.path.join(root, f"{minutes:g}min.avi"), int(minutes * 60 * FPS)
        )
        command = [sys.executable, __file__, f"--stride={args.stride}", "--child"]
        run = subprocess.run(
            command + [export_dir, video], env=env, capture_output=True, text=True
        )
        if run.returncode:
            raise RuntimeError(run.stderr[-2000:])
        rows.append((minutes, json.loads(run.stdout.strip().splitlines()[-1])))
    reference = rows[0][1]["peak_mb"]
    print(
        f"predict --streaming, toy export, stride {args.stride}, frames {HEIGHT}x{WIDTH}"
    )
    print(
        "| video | frames | samples | running top-5s | peak RSS MB | vs shortest | s |"
    )
    print("|---|---|---|---|---|---|---|")
    for minutes, r in rows:
        print(
            f"| {minutes:g} min | {r['frames']} | {r['samples']} | {r['reports']} | "
            f"{r['peak_mb']:.0f} | {r['peak_mb'] / reference:.2f}x | {r['seconds']:.0f} |"
        )


if __name__ == "__main__":
    main()
