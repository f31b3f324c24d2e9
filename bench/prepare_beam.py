r"""Preparation throughput: the local process pool against Beam's DirectRunner.

    python bench/prepare_beam.py [--videos=DIR] [--frame_size=64,85] [--per_class=6]

Runs `python -m data_prep.prepare` three times over the same videos, each
into a new directory, and times each whole command (start-up included, as a
user waits for it):

1. the process pool, `--workers=2` (the reference);
2. `--runner=DirectRunner` with one worker (in-process bundles);
3. `--runner=DirectRunner --direct_num_workers=2
   --direct_running_mode=multi_processing`.

It prints videos per minute and the ratio to the reference, and checks that
the three datasets are the same byte for byte. Default videos: 6 per class
of the embedded toy dataset's (data_prep/toy.py: 48 videos of 32 frames),
stored at its 64 x 85, with the default TV-L1 parameters (the toy dataset
itself uses cheaper ones). No timing is asserted anywhere; machines are
noisy, so read the ratios.
"""

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from data_prep import toy  # pylint: disable=wrong-import-position

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEAM_2 = [
    "--runner=DirectRunner",
    "--direct_num_workers=2",
    "--direct_running_mode=multi_processing",
]
CONFIGS = (
    ("process pool, 2 workers", ["--workers=2"]),
    ("DirectRunner, 1 worker", ["--runner=DirectRunner"]),
    ("DirectRunner, 2 workers", BEAM_2),
)


def prepare(video_dir, output_dir, frame_size, extra):
    """Seconds the preparation command took."""
    command = [
        sys.executable,
        "-m",
        "data_prep.prepare",
        "--dataset=folders",
        f"--input_dir={video_dir}",
        f"--output_dir={output_dir}",
        f"--frame_size={frame_size}",
        "--default_sdk_harness_log_level=WARNING" if "--runner" in extra[0] else "",
        *extra,
    ]
    start = time.perf_counter()
    subprocess.run(
        [arg for arg in command if arg],
        cwd=REPO,
        check=True,
        capture_output=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    return time.perf_counter() - start


def same_dataset(a, b):
    names = sorted(n for n in os.listdir(a) if not n.startswith("."))
    _, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    return not mismatch and not errors


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", help="<dir>/<class>/<video> (default: toy)")
    parser.add_argument("--frame_size", default=",".join(map(str, toy.FRAME_SIZE)))
    parser.add_argument(
        "--per_class", type=int, default=6, help="toy videos kept per class"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        video_dir = args.videos
        if not video_dir:
            video_dir = os.path.join(tmp, "videos")
            for path in toy.write_videos(video_dir):
                if int(os.path.basename(path)[:3]) >= args.per_class:
                    os.remove(path)
        count = sum(len(files) for _, _, files in os.walk(video_dir))
        print(f"{count} videos, stored at {args.frame_size}", flush=True)
        reference, first = None, None
        for name, extra in CONFIGS:
            out = os.path.join(tmp, name.replace(" ", "_").replace(",", ""))
            seconds = prepare(video_dir, out, args.frame_size, extra)
            rate = count / seconds * 60
            reference = reference or rate
            first = first or out
            same = "same" if same_dataset(first, out) else "DIFFERENT"
            print(
                f"{name:26s} {seconds:6.1f} s {rate:7.1f} videos/min "
                f"{rate / reference:5.2f}x  output {same} as the process pool",
                flush=True,
            )


if __name__ == "__main__":
    main()
