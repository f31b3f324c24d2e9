"""Tiny prepared datasets for tests: SequenceExample TFRecords + metadata.

Written through `avlad_tf.data.schema`, so every test reads exactly the
on-disk format `data_prep` produces (docs/CONTRACTS.md, "Data on disk").

Frame content is chosen so that tests can check *which* frame was read:

* ``content='index'`` (default): every RGB frame ``i`` is a flat colour with
  R = ``rgb_value(i)``, G = 128, B = 255 - R, and flow frame ``j`` is flat
  with x = ``flow_x_value(j)``, y = ``flow_y_value(j)``. Flat JPEGs decode
  to within 1-2 grey levels of these values, so `frame_index_of` recovers
  the index (up to ``MAX_INDEXED_FRAMES`` frames).
* ``content='pattern'``: every frame (RGB and both flow planes) is the same
  smooth, asymmetric texture, so a crop position or flip can be recognised
  and augmentation consistency across frames and streams checked.

Example::

    from tests import fake_data
    data_dir = fake_data.write_fake_dataset(self.create_tempdir().full_path)
    ds = video_input.make_dataset(data_dir=data_dir, split='train', ...)
"""

import numpy as np
import tensorflow as tf

from avlad_tf import storage
from avlad_tf.data import schema

# Index coding uses steps of 4 grey levels (JPEG error is ~1-2 levels).
INDEX_STEP = 4
MAX_INDEXED_FRAMES = 60


def rgb_value(index):
    """The R value of RGB frame `index` under ``content='index'``."""
    return 8 + INDEX_STEP * index


def flow_x_value(index):
    """The value of flow-x frame `index` under ``content='index'``."""
    return 10 + INDEX_STEP * index


def flow_y_value(index):
    """The value of flow-y frame `index` under ``content='index'``."""
    return 250 - INDEX_STEP * index


def frame_index_of(value, *, kind="rgb"):
    """Inverts `rgb_value` / `flow_x_value` / `flow_y_value` (rounding)."""
    value = np.asarray(value, np.float64)
    if kind == "rgb":
        index = (value - 8) / INDEX_STEP
    elif kind == "flow_x":
        index = (value - 10) / INDEX_STEP
    elif kind == "flow_y":
        index = (250 - value) / INDEX_STEP
    else:
        raise ValueError(f"kind must be rgb, flow_x or flow_y. Received: {kind}")
    return np.round(index).astype(np.int64)


def pattern_image(height, width):
    """The texture used by ``content='pattern'``: uint8 `[H, W]`.

    Smooth (JPEG keeps it within a few levels) and asymmetric in both axes,
    so a shifted or mirrored crop is clearly different.
    """
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    image = 40 + 150 * (y / max(height - 1, 1)) ** 1.5 + 60 * x / max(width - 1, 1)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _jpeg(array):
    return tf.io.encode_jpeg(tf.constant(array), quality=95).numpy()


def _video_jpegs(num_frames, height, width, content):
    if content == "index":
        if num_frames > MAX_INDEXED_FRAMES:
            raise ValueError(
                f"content='index' codes at most {MAX_INDEXED_FRAMES} frames. "
                f"Received: num_frames={num_frames}"
            )
        ones = np.ones((height, width), np.uint8)
        rgb = [
            _jpeg(
                np.stack(
                    [ones * rgb_value(i), ones * 128, ones * (255 - rgb_value(i))],
                    axis=-1,
                )
            )
            for i in range(num_frames)
        ]
        flow_x = [
            _jpeg(ones[..., None] * flow_x_value(j)) for j in range(num_frames - 1)
        ]
        flow_y = [
            _jpeg(ones[..., None] * flow_y_value(j)) for j in range(num_frames - 1)
        ]
    elif content == "pattern":
        plane = pattern_image(height, width)
        rgb_jpeg = _jpeg(np.repeat(plane[..., None], 3, axis=-1))
        flow_jpeg = _jpeg(plane[..., None])
        rgb = [rgb_jpeg] * num_frames
        flow_x = flow_y = [flow_jpeg] * (num_frames - 1)
    else:
        raise ValueError(f"content must be 'index' or 'pattern'. Received: {content!r}")
    return rgb, flow_x, flow_y


def write_fake_dataset(
    data_dir,
    *,
    num_videos=3,
    num_frames=12,
    num_classes=3,
    height=32,
    width=40,
    splits=("train", "test"),
    num_shards=1,
    multi_label=False,
    content="index",
    seed=0,
):
    """Writes a tiny prepared dataset to `data_dir` (a local path or a URL)
    and returns `data_dir`.

    Args:
        data_dir: directory to write into (created if missing).
        num_videos: videos per split.
        num_frames: RGB frames per video, an int or one int per video
            (flow has one frame fewer per direction).
        num_classes: number of classes; labels are named ``class_00`` ...
        height, width: stored frame size in pixels.
        splits: split names, e.g. ``('train', 'test')``.
        num_shards: shards per split (videos are dealt round-robin).
        multi_label: if True, video v has labels {v % C, (v + 1) % C} and
            metadata says ``multi_label: true`` (Charades-like).
        content: ``'index'`` or ``'pattern'`` (see the module docstring).
        seed: offsets the labels: video v's (first) label is
            ``(v + seed) % num_classes``.

    Returns:
        `data_dir`. Video ids are ``'<split>/video<v>'``; video v of every
        split has label ``(v + seed) % num_classes``.
    """
    storage.makedirs(data_dir)
    if isinstance(num_frames, int):
        num_frames = [num_frames] * num_videos
    if len(num_frames) != num_videos:
        raise ValueError(
            f"num_frames needs one entry per video ({num_videos}). "
            f"Received: {num_frames}"
        )
    labels = [f"class_{c:02d}" for c in range(num_classes)]
    split_info = {}
    for split in splits:
        shards = [[] for _ in range(num_shards)]
        for v in range(num_videos):
            first = (v + seed) % num_classes
            video_labels = [first]
            if multi_label and num_classes > 1:
                video_labels.append((first + 1) % num_classes)
            rgb, flow_x, flow_y = _video_jpegs(num_frames[v], height, width, content)
            shards[v % num_shards].append(
                schema.make_sequence_example(
                    video_id=f"{split}/video{v}",
                    labels=video_labels,
                    rgb_jpegs=rgb,
                    flow_x_jpegs=flow_x,
                    flow_y_jpegs=flow_y,
                    source=f"fake://{split}/video{v}",
                )
            )
        entries = []
        for i, records in enumerate(shards):
            name = f"{split}-{i:05d}-of-{num_shards:05d}.tfrecord"
            with tf.io.TFRecordWriter(storage.join(data_dir, name)) as writer:
                for record in records:
                    writer.write(record)
            entries.append({"file": name, "num_records": len(records)})
        split_info[split] = {"num_records": num_videos, "shards": entries}
    schema.write_metadata(
        data_dir,
        {
            "dataset": "fake",
            "labels": labels,
            "num_classes": num_classes,
            "multi_label": bool(multi_label),
            "frame_height": height,
            "frame_width": width,
            "splits": split_info,
        },
    )
    return data_dir
