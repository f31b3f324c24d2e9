"""Peak memory and speed of pooling whole videos: one-shot against streamed.

    python bench/streaming.py [--max_minutes=2] [--one_shot_limit_gb=4]
        [--chunk_frames=50] [--fps=25] [--size=14] [--depth=512]
        [--clusters=64]

For videos of 0.25 to 30 minutes (those up to --max_minutes) at --fps, made of
synthetic per-frame conv5_3 features `[T, 14, 14, 512]` (VGG16 at 224 pixels),
it pools with `NetVLAD` (K = 64) two ways, on the same features:

* one-shot: the whole video's features in memory, one `layer(video)` call;
* streamed: `streaming.pool_in_chunks`, --chunk_frames frames at a time, so
  only one chunk of features and the `[K, D]` running sums are ever held.

Each (length, way) runs in a fresh process whose peak resident memory
(`ru_maxrss`) is the measure: it counts the features, every intermediate and
the framework itself (the "baseline" line is a process that only imports,
builds the layer and pools one chunk). frames/s is from features in hand to
the descriptor, after a warm-up call. One-shot memory grows linearly with the
length, so it stops at the first length whose peak, extrapolated from the
last one measured, would pass --one_shot_limit_gb. Where both ran, the last
column is the largest difference between the two descriptors.

The backend is Keras's configured one (KERAS_BACKEND); both ways run eagerly.
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
import numpy as np

from avlad_tf.layers import netvlad
from avlad_tf.layers import streaming

MINUTES = (0.25, 0.5, 1, 2, 5, 10, 20, 30)
BANK_FRAMES = 16
WAYS = ("one_shot", "streamed")


class SyntheticVideo:
    """A `(1, T, size, size, depth)` video whose frames are made on demand.

    Frames cycle through a small bank of random frames, so a 30-minute video
    costs no memory until it is sliced; both ways read identical frames.
    """

    def __init__(self, num_frames, size, depth):
        rng = np.random.default_rng(0)
        self.bank = rng.normal(size=(BANK_FRAMES, size, size, depth))
        self.bank = self.bank.astype(np.float32)
        self.shape = (1, num_frames, size, size, depth)

    def __getitem__(self, index):
        _, frames = index
        order = np.arange(self.shape[1])[frames] * 7 % BANK_FRAMES
        return self.bank[order][None]  # (1, t, size, size, depth)


def measure(args):
    """Child process: pools one video one way; prints a JSON line."""
    video = SyntheticVideo(args.frames, args.size, args.depth)
    keras.utils.set_random_seed(0)  # the same centres in every process
    layer = netvlad.NetVLAD(num_clusters=args.clusters)
    layer.build(video.shape)
    warm = video[:, : min(args.chunk_frames, args.frames)]
    keras.ops.convert_to_numpy(layer(warm))  # eager warm-up, not measured
    start = time.perf_counter()
    if args.measure == "one_shot":
        descriptor = layer(video[:, : args.frames])
    elif args.measure == "streamed":
        descriptor = streaming.pool_in_chunks(
            layer, video, chunk_frames=args.chunk_frames
        )
    else:  # baseline: the warm-up only
        descriptor = layer(warm)
    descriptor = keras.ops.convert_to_numpy(descriptor)
    seconds = time.perf_counter() - start
    np.save(args.output, descriptor)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"peak_mb": peak_kb / 1024, "fps": args.frames / seconds}))


def run_child(args, way, num_frames, output):
    flags = [
        f"--{name}={getattr(args, name)}"
        for name in ("chunk_frames", "size", "depth", "clusters")
    ]
    command = [sys.executable, os.path.abspath(__file__), *flags]
    command += [f"--measure={way}", f"--frames={num_frames}", f"--output={output}"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode:
        raise RuntimeError(f"{way} with {num_frames} frames:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def one_shot_fits(args, measured, num_frames, baseline_mb):
    """False once the last one-shot peak, scaled to `num_frames`, passes the cap."""
    if not measured:
        return True
    last_frames, last_mb = measured[-1]
    per_frame = max(last_mb - baseline_mb, 0.0) / last_frames
    estimate_mb = baseline_mb + per_frame * num_frames
    return max(estimate_mb, last_mb) <= args.one_shot_limit_gb * 1024


def cell(result, key, fmt):
    return format(result[key], fmt) if result else "skipped"


def table_row(args, minutes, measured, baseline_mb, workdir):
    """Runs both ways on one length (one-shot while it fits); returns a line."""
    num_frames = max(1, round(minutes * 60 * args.fps))
    one_shot = None
    if one_shot_fits(args, measured, num_frames, baseline_mb):
        one_shot = run_child(args, "one_shot", num_frames, f"{workdir}/one_shot.npy")
        measured.append((num_frames, one_shot["peak_mb"]))
    streamed = run_child(args, "streamed", num_frames, f"{workdir}/streamed.npy")
    ratio = diff = "-"
    if one_shot:
        ratio = f"{one_shot['peak_mb'] / streamed['peak_mb']:.1f}x"
        descriptors = [np.load(f"{workdir}/{way}.npy") for way in WAYS]
        diff = f"{np.max(np.abs(descriptors[0] - descriptors[1])):.1e}"
    return (
        f"{minutes:>7g} {num_frames:>7} | "
        f"{cell(one_shot, 'peak_mb', '.0f'):>11} {cell(one_shot, 'fps', '.0f'):>8} | "
        f"{streamed['peak_mb']:>11.0f} {streamed['fps']:>8.0f} | "
        f"{ratio:>8} {diff:>9}"
    )


def main():
    args = parse_args()
    if args.measure:
        return measure(args)
    lengths = [m for m in MINUTES if m <= args.max_minutes] or [args.max_minutes]
    with tempfile.TemporaryDirectory(prefix="bench-streaming-") as workdir:
        baseline = run_child(
            args, "baseline", args.chunk_frames, f"{workdir}/baseline.npy"
        )
        print(
            f"NetVLAD K={args.clusters} on [T, {args.size}, {args.size}, "
            f"{args.depth}] float32 at {args.fps:g} fps, chunks of "
            f"{args.chunk_frames} frames, backend {keras.backend.backend()}; "
            f"baseline process {baseline['peak_mb']:.0f} MB"
        )
        print(
            f"{'minutes':>7} {'frames':>7} | {'one-shot MB':>11} {'frames/s':>8} | "
            f"{'streamed MB':>11} {'frames/s':>8} | {'MB ratio':>8} {'max|diff|':>9}"
        )
        measured = []  # (frames, one-shot peak MB), to extrapolate from
        for minutes in lengths:
            line = table_row(args, minutes, measured, baseline["peak_mb"], workdir)
            print(line, flush=True)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max_minutes", type=float, default=2.0)
    parser.add_argument("--one_shot_limit_gb", type=float, default=4.0)
    parser.add_argument("--chunk_frames", type=int, default=50)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--size", type=int, default=14)
    parser.add_argument("--depth", type=int, default=512)
    parser.add_argument("--clusters", type=int, default=64)
    # Set by main() for its child processes only.
    for name, kind in (("measure", str), ("frames", int), ("output", str)):
        parser.add_argument(f"--{name}", type=kind, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    main()
