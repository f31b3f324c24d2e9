"""TV-L1 frame pairs per second at 256 x 340: OpenCV against avlad_tf.flow.

    python bench/tvl1.py [--pairs=32] [--batches=1,8,32] [--opencv_pairs=8]

Measures, in one run and on the same grey frame pairs (bench/flow.py's
synthetic handheld footage: a panning textured scene with moving blobs):

1. OpenCV contrib `DualTVL1OpticalFlow_create()` (the reference) with 1 and
   with 2 OpenCV threads;
2. `avlad_tf.flow.PairFlow` (preset 'opencv', the same algorithm) under
   TensorFlow + XLA and under JAX, both on the CPU, at each batch size;
3. the one-call `avlad_tf.flow.tvl1_flow` on batches of 8 pairs under
   TensorFlow (it compiles itself on its first call and reuses that);
4. `PairFlow` with the default preset 'release' (OpenCV 2.4's GPU flow:
   halving pyramid, up to 300 iterations per warp) under TensorFlow, batch 8;

and prints pairs/s, the ratio to OpenCV with as many threads as the machine
has cores, the compile time, and the peak resident memory per pair of a
batch (each keras configuration runs in a fresh process: peak RSS after the
run minus RSS before compiling, divided by the batch size). No timing is
asserted anywhere; machines are noisy, so read the ratios.
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
import flow as prep_bench  # bench/flow.py, beside this script
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from avlad_tf.flow import runner  # noqa: E402
from data_prep import video_io  # noqa: E402

HEIGHT, WIDTH = 256, 340


def footage_pairs(num_pairs, tmp):
    """`num_pairs` consecutive grey pairs of bench/flow.py's footage."""
    path = os.path.join(tmp, "footage.avi")
    prep_bench.write_footage(path, num_pairs + 1)
    frames = video_io.read_video(path, height=HEIGHT, width=WIDTH)
    greys = np.stack([cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames])
    return greys[:-1], greys[1:]


def opencv_rate(firsts, seconds, threads):
    cv2.setNumThreads(threads)
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    start = time.perf_counter()
    for first, second in zip(firsts, seconds):
        tvl1.calc(first, second, None)
    return len(firsts) / (time.perf_counter() - start)


def _max_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _one_call(batch_size, preset):
    """`tvl1_flow` over pairs, `batch_size` at a time."""

    def flow(firsts, seconds):
        return np.concatenate(
            [
                runner.tvl1_flow(
                    firsts[i : i + batch_size],
                    seconds[i : i + batch_size],
                    preset=preset,
                )
                for i in range(0, len(firsts), batch_size)
            ]
        )

    return flow


def measure_keras(pairs_path, batch_size, way="pairs", preset="opencv"):
    """One configuration in this process (KERAS_BACKEND picks the backend):
    `PairFlow` ('pairs') or the one-call `tvl1_flow` ('function')."""
    firsts, seconds = np.load(pairs_path)
    count = max(batch_size, len(firsts) // batch_size * batch_size)
    firsts, seconds = (np.resize(x, (count, HEIGHT, WIDTH)) for x in (firsts, seconds))
    before = _max_rss_mb()
    if way == "function":
        flow = _one_call(batch_size, preset)
    else:
        flow = runner.PairFlow((HEIGHT, WIDTH), preset=preset, batch_size=batch_size)
    start = time.perf_counter()
    flow(firsts[:batch_size], seconds[:batch_size])
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    result = flow(firsts, seconds)
    rate = count / (time.perf_counter() - start)
    assert np.isfinite(result).all()
    return {
        "pairs_per_s": rate,
        "compile_s": compile_s,
        "mb_per_pair": (_max_rss_mb() - before) / batch_size,
    }


def keras_rate(backend, pairs_path, batch_size, way="pairs", preset="opencv"):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([REPO, env.get("PYTHONPATH", "")])
    command = [
        sys.executable,
        __file__,
        f"--measure={pairs_path}",
        f"--batch={batch_size}",
        f"--way={way}",
        f"--preset={preset}",
    ]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode:
        raise RuntimeError(
            f"{backend} batch {batch_size} failed:\n{result.stderr[-2000:]}"
        )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=32, help="pairs per keras run")
    parser.add_argument("--opencv_pairs", type=int, default=8)
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--measure", default="", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--way", default="pairs", help=argparse.SUPPRESS)
    parser.add_argument("--preset", default="opencv", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # a child process: one keras configuration
        print(
            json.dumps(measure_keras(args.measure, args.batch, args.way, args.preset))
        )
        return
    tmp = tempfile.mkdtemp()
    firsts, seconds = footage_pairs(max(args.pairs, args.opencv_pairs), tmp)
    pairs_path = os.path.join(tmp, "pairs.npy")
    np.save(pairs_path, np.stack([firsts[: args.pairs], seconds[: args.pairs]]))
    cores = os.cpu_count() or 1
    rows = [
        (
            f"OpenCV CPU, {t} thread(s)",
            {
                "pairs_per_s": opencv_rate(
                    firsts[: args.opencv_pairs], seconds[: args.opencv_pairs], t
                )
            },
        )
        for t in sorted({1, cores})
    ]
    reference = rows[-1][1]["pairs_per_s"]
    for backend, label in (("tensorflow", "TF + XLA"), ("jax", "JAX")):
        for batch in (int(b) for b in args.batches.split(",")):
            rows.append(
                (
                    f"avlad_tf.flow, {label} CPU, batch {batch}",
                    keras_rate(backend, pairs_path, batch),
                )
            )
    rows.append(
        (
            "avlad_tf.flow.tvl1_flow (one call), TF + XLA CPU, batch 8",
            keras_rate("tensorflow", pairs_path, 8, way="function"),
        )
    )
    rows.append(
        (
            "avlad_tf.flow, preset 'release', TF + XLA CPU, batch 8",
            keras_rate("tensorflow", pairs_path, 8, preset="release"),
        )
    )
    print(
        f"TV-L1 at {HEIGHT}x{WIDTH}, {cores} cores; ratio against OpenCV with "
        f"{cores} thread(s)"
    )
    print("| implementation | pairs/s | ratio | compile s | MB per pair |")
    print("|---|---|---|---|---|")
    for name, row in rows:
        compile_s = f"{row['compile_s']:.1f}" if "compile_s" in row else "-"
        memory = f"{row['mb_per_pair']:.0f}" if "mb_per_pair" in row else "-"
        print(
            f"| {name} | {row['pairs_per_s']:.2f} | "
            f"{row['pairs_per_s'] / reference:.2f}x | {compile_s} | {memory} |"
        )


if __name__ == "__main__":
    main()
