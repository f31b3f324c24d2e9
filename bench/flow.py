r"""TV-L1 flow and preparation throughput at the release's 340 x 256.

    python bench/flow.py [--video=some.avi] [--workers=16] [--pairs=6]

Measures, in one run:
1. TV-L1 frame pairs per second (OpenCV Dual TV-L1, default parameters, one
   OpenCV thread per process) in one process, then in `--workers` processes
   each doing the same work; prints the ratio to the one-process reference.
2. Preparation throughput (decode, resize, TV-L1, quantise, JPEG, TFRecord)
   in videos per minute with one worker and with `--workers`, and the ratio.
3. What that rate means for UCF101 (13,320 videos, ~186 frames on average).

Footage: `--video` if given, else a video this script writes (textured
scene with several independently moving textured objects, MJPG, 340 x 256).
No timing is asserted anywhere; machines are noisy, so read the ratios.
"""

import argparse
import multiprocessing
import os
import sys
import tempfile
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from data_prep import flow as flow_lib  # pylint: disable=wrong-import-position
from data_prep import records  # pylint: disable=wrong-import-position
from data_prep import video_io  # pylint: disable=wrong-import-position
from data_prep import writer  # pylint: disable=wrong-import-position

HEIGHT, WIDTH = 256, 340
UCF101_VIDEOS, UCF101_FRAMES = 13320, 186


def write_footage(path, num_frames, *, seed=0):
    """A textured scene with moving textured blobs, like handheld footage."""
    rng = np.random.default_rng(seed)
    scene = cv2.GaussianBlur(
        rng.uniform(0, 255, (HEIGHT + 80, WIDTH + 80, 3)).astype(np.float32),
        (0, 0),
        3.0,
    )
    blobs = [
        (
            rng.uniform(40, HEIGHT - 40),
            rng.uniform(40, WIDTH - 40),
            rng.uniform(-4, 4),
            rng.uniform(-4, 4),
            rng.uniform(15, 35),
            rng.uniform(0, 255, 3),
        )
        for _ in range(5)
    ]
    out = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25, (WIDTH, HEIGHT))
    for t in range(num_frames):
        pan = int(round(1.5 * t)) % 80  # a slow camera pan
        frame = scene[20 : 20 + HEIGHT, pan : pan + WIDTH].copy()
        for y, x, vy, vx, r, colour in blobs:
            cv2.circle(
                frame, (int(x + vx * t), int(y + vy * t)), int(r), colour.tolist(), -1
            )
            cv2.circle(
                frame,
                (int(x + vx * t), int(y + vy * t)),
                int(r / 2),
                (colour * 0.5).tolist(),
                3,
            )
        out.write(np.clip(frame, 0, 255).astype(np.uint8))
    out.release()


def _pairs_job(args):
    path, num_pairs = args
    flow_lib.single_threaded()
    frames = video_io.read_video(path, height=HEIGHT, width=WIDTH, count=num_pairs + 1)
    start = time.perf_counter()
    flow_lib.compute_flow(frames, preset="opencv", backend="opencv")
    return time.perf_counter() - start


def flow_rate(path, *, num_pairs, workers):
    """Frame pairs per second over all processes."""
    jobs = [(path, num_pairs)] * workers
    start = time.perf_counter()
    if workers == 1:
        _pairs_job(jobs[0])
    else:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            pool.map(_pairs_job, jobs)
    return workers * num_pairs / (time.perf_counter() - start)


def prep_rate(paths, *, workers, tmp):
    """Videos per minute through `writer.write_dataset`."""
    items = [
        records.Item(video_id=str(i), labels=(0,), path=p) for i, p in enumerate(paths)
    ]
    out = tempfile.mkdtemp(dir=tmp)
    start = time.perf_counter()
    summary = writer.write_dataset(
        output_dir=out,
        splits={"bench": items},
        options=records.Options(min_frames=2),
        workers=workers,
        records_per_shard=len(items),
    )
    assert not summary.left_out, summary.left_out
    return 60.0 * len(items) / (time.perf_counter() - start)


def _days(pairs_per_second):
    return UCF101_VIDEOS * (UCF101_FRAMES - 1) / pairs_per_second / 86400


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--video", default="", help="footage to use")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--pairs", type=int, default=6, help="frame pairs per process in the flow test"
    )
    parser.add_argument(
        "--videos",
        type=int,
        default=0,
        help="videos in the preparation test (0: 2*workers)",
    )
    parser.add_argument(
        "--frames", type=int, default=8, help="frames per video in the preparation test"
    )
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    video = args.video
    if not video:
        video = os.path.join(tmp, "footage.avi")
        write_footage(video, max(args.pairs + 1, args.frames))
    print(f"footage: {video}; {os.cpu_count()} CPUs; OpenCV {cv2.__version__}")

    one = flow_rate(video, num_pairs=args.pairs, workers=1)
    many = flow_rate(video, num_pairs=args.pairs, workers=args.workers)
    print(
        f"TV-L1 340x256, 1 process:  {one:.2f} pairs/s "
        f"(reference, 1.00x; UCF101 would take {_days(one):.1f} days)"
    )
    print(
        f"TV-L1 340x256, {args.workers} processes: {many:.2f} pairs/s "
        f"({many / one:.2f}x; UCF101 would take {_days(many):.1f} days)"
    )

    num_videos = args.videos or 2 * args.workers
    paths = []
    for i in range(num_videos):
        paths.append(os.path.join(tmp, f"v{i}.avi"))
        write_footage(paths[-1], args.frames, seed=i)
    prep_one = prep_rate(paths, workers=1, tmp=tmp)
    prep_many = prep_rate(paths, workers=args.workers, tmp=tmp)
    scale = (args.frames - 1) / (UCF101_FRAMES - 1)  # per-video flow work
    for workers, rate in ((1, prep_one), (args.workers, prep_many)):
        ucf_rate = rate * scale  # UCF101-length videos per minute
        print(
            f"preparation, {workers} worker(s), {args.frames}-frame videos: "
            f"{rate:.1f} videos/min ({rate / prep_one:.2f}x); at ~186 "
            f"frames: {ucf_rate:.2f} videos/min, UCF101 in "
            f"{UCF101_VIDEOS / ucf_rate / 1440:.1f} days"
        )


if __name__ == "__main__":
    main()
