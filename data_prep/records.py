"""One video (or Charades clip) → one serialised `tf.train.SequenceExample`.

An `Item` names what to read; `encode_item` reads it (a video file, or the
release's frame + flow JPEG folder), checks it and serialises it with
`schema.make_sequence_example`. Anything wrong raises
`video_io.SourceError` with the reason for the report.
"""

import collections
import dataclasses

import cv2
import numpy as np

from avlad_tf import storage
from avlad_tf.data import schema
from avlad_tf.flow import parameters as flow_parameters
from data_prep import flow as flow_lib
from data_prep import video_io


@dataclasses.dataclass(frozen=True)
class Item:
    """One record to write.

    Attributes:
        video_id: the id stored in the record, e.g. `brush_hair/1`.
        labels: label indices (several for Charades test videos).
        path: a video file, or a folder of `image_%05d.jpg` frames; local
            or a URL (`avlad_tf.storage`).
        flow_path: folder of `flow_{x,y}_%05d.jpg` for a frame folder whose
            flow lives elsewhere ('' means `path`).
        start_frame: 0-based first frame (Charades training clips).
        clip_length: frames to take from `start_frame` (0: to the end).
        list_frames: the frame count the split list gives for the whole
            video; when set, clip boundaries are rescaled from the list's
            frame rate to the decoded video's (Charades).
    """

    video_id: str
    labels: tuple
    path: str
    flow_path: str = ""
    start_frame: int = 0
    clip_length: int = 0
    list_frames: int = 0


@dataclasses.dataclass(frozen=True)
class Options:
    """How records are made (one value per prepared dataset)."""

    height: int = schema.FRAME_HEIGHT
    width: int = schema.FRAME_WIDTH
    jpeg_quality: int = 95
    min_frames: int = 11
    # Non-default TV-L1 parameters as (name, value) pairs in OpenCV's
    # keyword names; () keeps the preset's.
    flow_params: tuple = ()
    # TV-L1 family and the code that computes it (data_prep/flow.py); the
    # release's family by default, which only the keras backend computes.
    flow_preset: str = flow_parameters.DEFAULT_PRESET
    flow_backend: str = "keras"
    # The frames a video's flow is computed on (`FLOW_FRAME_SIZES`).
    flow_frame_size: str = "stored"
    # Keep the frames that decode from a video whose container promises
    # more (reported as a note); otherwise the video is left out.
    keep_truncated: bool = False


# 'stored': frames at the stored size, as TSN's script made the release's
# HMDB51 flow (resized to 340 x 256 first); 'native': the video's own frames,
# as dense_flow made its UCF101 flow (docs/DATA_PREP.md, Flow frame size).
FLOW_FRAME_SIZES = ("stored", "native")


def release_flow_frame_size(dataset):
    """The frame size the release computed `dataset`'s flow at."""
    return "native" if dataset == "ucf101" else "stored"


def output_settings(options):
    """The options that decide the records: all but the flow backend, since
    both backends compute one flow family per preset, so a rerun may switch
    backends (`schema.flow_family`)."""
    settings = dataclasses.asdict(options)
    del settings["flow_backend"]
    return settings


def flow_metadata(options, shard_backends=None):
    """How the flow was computed, for `metadata.json`.

    `backend` is what computed every shard, from the shards' own notes
    (`shard_backends`, `{shard: backend}`), not this run's option: a rerun
    that switches backends keeps the shards it finished. Where shards
    differ, `backend` is 'mixed' and `shard_backends` names each one's
    ('unrecorded' for shards of a version that did not note it).
    """
    backends = {
        shard: backend or "unrecorded"
        for shard, backend in (shard_backends or {}).items()
    }
    used = set(backends.values()) or {options.flow_backend}
    flow = {
        "preset": options.flow_preset,
        "parameters": dict(options.flow_params),
        "backend": used.pop() if len(used) == 1 else "mixed",
        "frame_size": options.flow_frame_size,
    }
    if flow["backend"] == "mixed":
        flow["shard_backends"] = dict(sorted(backends.items()))
    return flow


def prepare_worker(options):
    """Builds, once per worker process, what `encode_item` reuses: OpenCV on
    one thread (workers parallelise over videos) and the flow function (a
    compiled `avlad_tf.flow` model for the keras backend)."""
    flow_lib.single_threaded()
    flow_lib.pair_flow(
        (options.height, options.width),
        params=options.flow_params,
        preset=options.flow_preset,
        backend=options.flow_backend,
    )


# What `encode_item` returns; `note` says what was kept despite a problem.
Encoded = collections.namedtuple("Encoded", ["serialized", "num_frames", "note"])


def _clip_range(item, total):
    """Maps the item's clip onto [0, total) decoded frames."""
    start, count = item.start_frame, item.clip_length
    if item.list_frames > 0 and total != item.list_frames:
        scale = total / item.list_frames
        start, count = round(start * scale), round(count * scale)
    start = min(max(start, 0), total)
    end = total if count <= 0 else min(start + count, total)
    return start, end - start


def _read_frames(item, options, *, native):
    """`(start, frames, note)` of a video item; a video at a URL is copied
    here once (`video_io.local_copy`), even when it is decoded twice."""
    start, count = item.start_frame, item.clip_length
    with video_io.local_copy(item.path) as local:
        if item.list_frames > 0:
            start, count = _clip_range(item, video_io.count_frames(local))
        try:
            frames = video_io.read_video(
                local,
                height=None if native else options.height,
                width=None if native else options.width,
                start=start,
                count=count,
            )
        except video_io.TruncatedVideo as truncated:
            if not options.keep_truncated:
                raise
            note = (
                f"truncated: the container promises {truncated.promised} "
                f"frames; kept the {truncated.decoded} that decode"
            )
            return start, truncated.frames, note
    return start, frames, ""


def _video_record(item, options):
    native = options.flow_frame_size == "native"
    start, frames, note = _read_frames(item, options, native=native)
    _check_length(len(frames), options)
    rgb = [
        video_io.encode_jpeg(
            video_io.resize(frame, height=options.height, width=options.width),
            quality=options.jpeg_quality,
        )
        for frame in frames
    ]
    flows = flow_lib.compute_flow(
        frames,
        params=options.flow_params,
        preset=options.flow_preset,
        backend=options.flow_backend,
    )
    flow_x, flow_y = flow_lib.encode_flows(flows, quality=options.jpeg_quality)
    if native:
        # Flow images at the video's size, stored as a release flow folder
        # of that size is: resized, values unchanged (docs/DATA_PREP.md).
        flow_x, flow_y = (
            [
                _converted(data, grey=True, options=options, what=f"flow {j}")
                for j, data in enumerate(jpegs)
            ]
            for jpegs in (flow_x, flow_y)
        )
    return start, rgb, flow_x, flow_y, note


def _converted(data, *, grey, options, what):
    """The JPEG as stored: kept byte for byte when it already fits."""
    raw = None
    if data:
        raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise video_io.SourceError(f"corrupt JPEG: {what} cannot be decoded")
    if raw.ndim == 3 and raw.shape[2] == 4:
        raw = cv2.cvtColor(raw, cv2.COLOR_BGRA2BGR)
    is_grey = raw.ndim == 2
    if raw.shape[:2] == (options.height, options.width) and is_grey == grey:
        return data
    if grey and not is_grey:
        raw = cv2.cvtColor(raw, cv2.COLOR_BGR2GRAY)
    elif not grey and is_grey:
        raw = cv2.cvtColor(raw, cv2.COLOR_GRAY2BGR)
    image = video_io.resize(raw, height=options.height, width=options.width)
    return video_io.encode_jpeg(image, quality=options.jpeg_quality)


def _folder_record(item, options):
    total = video_io.list_frame_folder(item.path)
    start, count = _clip_range(item, total)
    _check_length(count, options)
    flow_dir = item.flow_path or item.path
    rgb, flow_x, flow_y = [], [], []
    for k in range(start, start + count):
        index = k + video_io.FIRST_INDEX
        name = video_io.RGB_PATTERN.format(index)
        data = video_io.read_file(storage.join(item.path, name), what="frame")
        rgb.append(_converted(data, grey=False, options=options, what=name))
        if k == start + count - 1:
            break  # n frames have n - 1 flows
        for pattern, out in (
            (video_io.FLOW_X_PATTERN, flow_x),
            (video_io.FLOW_Y_PATTERN, flow_y),
        ):
            name = pattern.format(index)
            data = video_io.read_file(storage.join(flow_dir, name), what="flow")
            out.append(_converted(data, grey=True, options=options, what=name))
    return start, rgb, flow_x, flow_y, ""


def _check_length(n, options):
    if n < options.min_frames:
        raise video_io.SourceError(
            f"too short: {n} frames, fewer than min_frames={options.min_frames}"
        )


def _validate(jpegs, *, grey, item):
    """Decodes every stored JPEG once, so no bad frame reaches training."""
    for j, data in enumerate(jpegs):
        video_io.decode_jpeg(data, grey=grey, what=f"{item.video_id} stored frame {j}")


def encode_item(item, options):
    """Reads, checks and serialises one item.

    Returns:
        `Encoded(serialized SequenceExample bytes, number of RGB frames
        stored, note)`; the note is '' unless something was kept despite a
        problem (`Options.keep_truncated`).

    Raises:
        video_io.SourceError: with the reason the item cannot be written.
    """
    if storage.isdir(item.path):
        start, rgb, flow_x, flow_y, note = _folder_record(item, options)
    else:
        start, rgb, flow_x, flow_y, note = _video_record(item, options)
    _validate(rgb, grey=False, item=item)
    _validate(flow_x + flow_y, grey=True, item=item)
    serialized = schema.make_sequence_example(
        video_id=item.video_id,
        labels=item.labels,
        rgb_jpegs=rgb,
        flow_x_jpegs=flow_x,
        flow_y_jpegs=flow_y,
        source=item.path,
        start_frame=start,
    )
    return Encoded(serialized, len(rgb), note)
