"""The embedded toy dataset: synthetic action videos, prepared for real.

`ensure_toy_dataset(data_dir)` writes, deterministically from a seed, small
MJPG `.avi` videos into `data_dir/videos/<class>/<NNN>.avi`, then prepares
them through the same path as real data (video decoding, OpenCV Dual TV-L1
flow, quantisation, JPEG, sharded TFRecords, metadata) into `data_dir`, with
splits `train` (12 videos per class) and `test` (6 per class). Frames are
stored at 64 x 85 (H x W); the reader resizes them. The flow is the 'opencv'
preset on the OpenCV backend, not data_prep's default 'release' preset: the
toy is not the release's data, and OpenCV needs no compile in each worker,
which keeps the Quick start short (docs/TOY.md). TV-L1 runs with 3 pyramid levels, 3
warps and stopping threshold 0.02 instead of OpenCV's 5, 5 and 0.01
(`FLOW_PARAMS`, in the metadata as `flow.parameters`): enough for 64 x 85
frames (mean difference 0.08 px on moving pixels, half a quantisation step)
at a sixth of the time.

Design: what each class differs in
----------------------------------
Every video shows a textured static background, a large grey striped bar
drifting in a random direction (shared by all classes: a distractor) and two
small square objects, each doing one *sub-action* in its own place and time:

- sub-action 1, on the left, in the first ~60% of the frames: a square of
  colour `a1` (red or blue) moving horizontally, direction `m1` (right or
  left), along the same path either way;
- sub-action 2, on the right, in the last ~60% of the frames: either a
  green square moving up or a yellow square moving down (`s2`).

The 8 classes are all combinations `<a1>_<m1>_then_<s2>`, e.g.
`red_right_then_green_up`. The red and blue of `a1` have the same grey
level (BT.601 luma, as `cv2.COLOR_BGR2GRAY` and the flow see it), so:

- RGB sees `a1` and `s2` but not `m1` (left and right movers pass through
  the same positions, so single frames look alike): at best 4 of 8 classes
  apart for a model that pools frames without their order, pairs differing
  only in motion are confused (a model that reads the frames in order can
  follow `a1` from frame to frame and see `m1` in RGB too);
- flow sees `m1` and `s2` but not `a1` (same grey-level video, same flow):
  pairs differing only in appearance are confused;
- fusing the streams separates all 8 classes.

The evidence is two small objects that occupy ~3% of the frame each, in
different places and mostly in different frames, next to a large distractor
and background: a class is the co-occurrence of two sub-actions, so a pooled
representation that keeps the distribution of local features (ActionVLAD)
has more to work with than one average over all positions and frames.
Nuisances drawn per video: positions, speeds, timing, background texture,
distractor direction, brightness.

Where the objects are: inside the evaluation crop
-------------------------------------------------
The pipeline crops as the release does (docs/RELEASE.md Sec. 3.1): one
centre crop of 56 of the 85 stored columns at test time (columns 16-71,
0.19-0.85 of the width), random crops of 36-56 columns in training. Both
sub-actions therefore stay in the middle of the frame: `a1`'s centre starts
at 0.36-0.38 of the width and travels 0.22-0.26 of it (so it spans
0.23-0.51), `s2` sits at 0.66-0.72. Version 1 of this generator put `a1`
at 0.22-0.30 (spanning 0.07-0.45) and `s2` at 0.70-0.78: the test crop cut
`a1` off for much of its path and training crops often lost one object, so
each stream stayed far below its 50 % ceiling (docs/TOY.md has
the measurements). `TOY_VERSION` is recorded in the metadata; a directory
made by another version is refused, not silently reused.
"""

import contextlib
import fcntl
import os
import sys
import time

import cv2
import numpy as np

from avlad_tf import storage
from avlad_tf.data import schema
from data_prep import records
from data_prep import sources
from data_prep import writer

NUM_TRAIN, NUM_TEST = 12, 6
NUM_FRAMES = 32
VIDEO_SIZE = (128, 170)  # (H, W) written; MJPG needs an even width
FRAME_SIZE = (64, 85)  # (H, W) stored in the records
FPS = 25
# Horizontal placement, as fractions of the width (see the module docstring):
# a1's starting centre and path length, s2's centre.
A1_X, A1_PATH, S2_X = (0.36, 0.38), (0.22, 0.26), (0.66, 0.72)
TOY_VERSION = 2
LUMA = 110.0
# A 64 x 85 frame needs fewer pyramid levels, warps and iterations than
# OpenCV's defaults (tuned for full-size video); this makes the toy's flow 5x
# faster. Real datasets keep the defaults.
FLOW_PARAMS = (("nscales", 3), ("warps", 3), ("epsilon", 0.02))


def _equal_luma(red, blue):
    """An RGB colour with the given R and B whose grey level is LUMA."""
    green = (LUMA - 0.299 * red - 0.114 * blue) / 0.587
    return (red, int(round(green)), blue)


A1_COLOURS = {"red": _equal_luma(230, 50), "blue": _equal_luma(40, 250)}
M1_DIRECTIONS = {"right": 1.0, "left": -1.0}
S2_KINDS = {"green_up": ((40, 190, 60), -1.0), "yellow_down": ((235, 210, 40), 1.0)}
CLASSES = sorted(
    f"{a1}_{m1}_then_{s2}"
    for a1 in A1_COLOURS
    for m1 in M1_DIRECTIONS
    for s2 in S2_KINDS
)


def _parse_class(name):
    a1, rest = name.split("_", 1)
    m1, s2 = rest.split("_then_")
    return A1_COLOURS[a1], M1_DIRECTIONS[m1], S2_KINDS[s2]


def _background(rng, height, width):
    coarse = rng.uniform(70, 150, size=(6, 8)).astype(np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    fine = rng.normal(0, 6, size=(height, width)).astype(np.float32)
    grey = np.clip(smooth + cv2.GaussianBlur(fine, (0, 0), 1.0), 0, 255)
    return np.repeat(grey[..., None], 3, axis=2)  # (H, W, 3)


def _draw_square(frame, centre, side, rgb):
    """A square with a darker inner cross, so flow has texture inside."""
    h, w = frame.shape[:2]
    y0, x0 = int(round(centre[0] - side / 2)), int(round(centre[1] - side / 2))
    y1, x1 = min(y0 + side, h), min(x0 + side, w)
    y0, x0 = max(y0, 0), max(x0, 0)
    if y1 <= y0 or x1 <= x0:
        return
    bgr = np.array(rgb[::-1], np.float32)
    frame[y0:y1, x0:x1] = bgr
    cy, cx, t = (y0 + y1) // 2, (x0 + x1) // 2, max(side // 8, 1)
    frame[cy - t : cy + t, x0:x1] = bgr * 0.55
    frame[y0:y1, cx - t : cx + t] = bgr * 0.55


def _active(t, start, length):
    """Progress 0..1 of a sub-action at frame t, or None when inactive."""
    if t < start or t >= start + length:
        return None
    return (t - start) / max(length - 1, 1)


def render_video(class_name, rng):
    """Renders one video of `class_name`: uint8 BGR (T, H, W, 3)."""
    height, width = VIDEO_SIZE
    colour1, direction1, (colour2, direction2) = _parse_class(class_name)
    background = _background(rng, height, width)
    side = int(height * rng.uniform(0.15, 0.19))
    length = int(NUM_FRAMES * 0.6)
    start1 = int(rng.integers(0, NUM_FRAMES - length - 3))
    start2 = NUM_FRAMES - length - int(rng.integers(0, 4))
    path1 = width * rng.uniform(*A1_PATH)
    path2 = height * rng.uniform(0.4, 0.5)
    centre1 = (height * rng.uniform(0.35, 0.65), width * rng.uniform(*A1_X))
    centre2 = (height * 0.5 + rng.uniform(-4, 4), width * rng.uniform(*S2_X))
    bar_pos = np.array([rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width])
    angle = rng.uniform(0, 2 * np.pi)
    bar_velocity = 1.5 * np.array([np.sin(angle), np.cos(angle)])
    gain = rng.uniform(0.85, 1.15)
    frames = []
    for t in range(NUM_FRAMES):
        frame = background.copy()
        # Distractor: a large striped grey bar drifting across the scene.
        cy, cx = bar_pos + t * bar_velocity
        y0, x0 = int(cy) - 12, int(cx) - 25
        stripes = np.where((np.arange(50) // 5) % 2 == 0, 170.0, 60.0)
        ys = slice(max(y0, 0), max(min(y0 + 24, height), 0))
        xs = np.arange(x0, x0 + 50)
        keep = (xs >= 0) & (xs < width)
        frame[ys, xs[keep]] = stripes[keep][None, :, None]
        p1 = _active(t, start1, length)
        if p1 is not None:
            offset = direction1 * path1 * (p1 - 0.5)
            _draw_square(frame, (centre1[0], centre1[1] + offset), side, colour1)
        p2 = _active(t, start2, length)
        if p2 is not None:
            offset = direction2 * path2 * (p2 - 0.5)
            _draw_square(frame, (centre2[0] + offset, centre2[1]), side, colour2)
        frames.append(np.clip(frame * gain, 0, 255).astype(np.uint8))
    return np.stack(frames)  # (T, H, W, 3)


def write_videos(video_dir, *, seed=0):
    """Writes all toy videos as MJPG .avi files; returns their paths.

    `video_dir` may be a URL: OpenCV writes each video to a local temporary
    file, copied there and removed (`storage.local_output`).
    """
    paths = []
    for class_index, name in enumerate(CLASSES):
        storage.makedirs(storage.join(video_dir, name))
        for i in range(NUM_TRAIN + NUM_TEST):
            rng = np.random.default_rng([seed, class_index, i])
            path = storage.join(video_dir, name, f"{i:03d}.avi")
            frames = render_video(name, rng)
            with storage.local_output(path) as local:
                out = cv2.VideoWriter(
                    local,
                    cv2.VideoWriter_fourcc(*"MJPG"),
                    FPS,
                    (VIDEO_SIZE[1], VIDEO_SIZE[0]),
                )
                if not out.isOpened():
                    raise RuntimeError(f"{path}: OpenCV cannot write MJPG video")
                for frame in frames:
                    out.write(frame)
                out.release()
            paths.append(path)
    return paths


@contextlib.contextmanager
def _locked(data_dir):
    """Parallel test workers may ask for the same local directory at once:
    one builds it, the others wait and then find it ready. A URL has no
    lock; builders there write the same bytes, each file whole."""
    if not storage.is_local(data_dir):
        yield
        return
    with open(os.path.join(data_dir, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_toy_dataset(data_dir, *, seed=0, workers=None):
    """Makes and prepares the toy dataset unless `data_dir` already has it.

    Args:
        data_dir: the prepared dataset's directory (videos go to `videos/`),
            local or a URL (`ram://` too: nothing is left on local disk).
        seed: generator seed; the same seed gives the same videos.
        workers: processes for preparation (default: up to 2 CPUs).

    Returns:
        `data_dir`.
    """
    metadata = storage.join(data_dir, schema.METADATA_FILE)
    if storage.exists(metadata):
        return _checked(data_dir)
    storage.makedirs(data_dir)
    with _locked(data_dir):
        if not storage.exists(metadata):
            _build(data_dir, seed=seed, workers=workers)
    return _checked(data_dir)


def _checked(data_dir):
    """`data_dir`, after checking it was made by this generator version.

    Raises:
        ValueError: another version's data (a one-line error in programs).
    """
    version = schema.read_metadata(data_dir).get("toy_version", 1)
    if version != TOY_VERSION:
        raise ValueError(
            f"{data_dir} holds toy data of generator version {version}; this "
            f"code makes version {TOY_VERSION} (data_prep/toy.py says what "
            f"changed). Remove {data_dir} and run again to remake it."
        )
    return data_dir


def _build(data_dir, *, seed, workers):
    start = time.monotonic()
    print(f"Making the toy dataset in {data_dir} (seed {seed}).", file=sys.stderr)
    video_dir = storage.join(data_dir, "videos")
    write_videos(video_dir, seed=seed)
    labels, splits = sources.class_folder_items(
        video_dir,
        test_fraction=NUM_TEST / (NUM_TRAIN + NUM_TEST),
        split_names=("train", "test"),
    )
    options = records.Options(
        height=FRAME_SIZE[0],
        width=FRAME_SIZE[1],
        min_frames=NUM_FRAMES,
        flow_params=FLOW_PARAMS,
        flow_preset="opencv",
        flow_backend="opencv",
    )
    workers = workers or min(2, os.cpu_count() or 1)
    summary = writer.write_dataset(
        output_dir=data_dir,
        splits=splits,
        options=options,
        workers=workers,
        records_per_shard=48,
        fingerprint={"dataset": "toy", "seed": seed},
    )
    if summary.left_out:
        raise RuntimeError(
            f"toy dataset: {len(summary.left_out)} videos failed, see "
            f"{storage.join(data_dir, writer.REPORT_FILE)}"
        )
    writer.finish(
        output_dir=data_dir,
        summary=summary,
        dataset="toy",
        labels=labels,
        multi_label=False,
        options=options,
        extra={"seed": seed, "toy_version": TOY_VERSION},
    )
    print(f"Toy dataset ready in {time.monotonic() - start:.0f} s.", file=sys.stderr)
