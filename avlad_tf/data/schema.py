"""The one on-disk schema: written by `data_prep`, read by `avlad_tf.data`.

One `tf.train.SequenceExample` per video (or per Charades training clip):

context
    video/id            bytes   the video id, e.g. `brush_hair/1`
    clip/label/index    int64[] one label (single-label datasets) or several
                                (Charades test videos); may be empty
    video/num_frames    int64   n, the number of RGB frames stored
    video/source        bytes   where the frames came from (path)
    clip/start_frame    int64   0-based index of the first stored frame in the
                                source video (Charades clips), else 0
feature lists
    rgb/encoded         n JPEGs (RGB order), FRAME_HEIGHT x FRAME_WIDTH
    flow/x/encoded      n - 1 greyscale JPEGs; flow j is frames j -> j + 1
    flow/y/encoded      n - 1 greyscale JPEGs

Next to the shards, `metadata.json` records the dataset, its sorted label map,
the flow settings below and, per split, every shard with its record count.
The reader refuses data whose flow settings or counts do not match.
"""

import numpy as np
import tensorflow as tf

from avlad_tf import settings
from avlad_tf import storage

SCHEMA_VERSION = 1

VIDEO_ID_KEY = "video/id"
LABEL_INDEX_KEY = "clip/label/index"
# n, a video's stored length in frames (its on-disk name predates the
# project's names: `num_frames` is T, the frames sampled from it).
LENGTH_KEY = "video/num_frames"
SOURCE_KEY = "video/source"
START_FRAME_KEY = "clip/start_frame"
RGB_KEY = "rgb/encoded"
FLOW_X_KEY = "flow/x/encoded"
FLOW_Y_KEY = "flow/y/encoded"

# Frames are stored at the size the release's reader resizes to (Sec. 1.1).
FRAME_HEIGHT = 256
FRAME_WIDTH = 340

# Flow convention (TSN / dense_flow, docs/RELEASE.md Sec. 1.1): TV-L1 on
# consecutive greyscale frames, clipped to +-FLOW_BOUND pixels and mapped
# linearly onto 0..255, so 127.5 means no motion (the release subtracts 128).
FLOW_ALGORITHM = "opencv_dual_tvl1"
FLOW_BOUND = 20.0
FLOW_QUANTISATION = "linear_uint8"
# Flow j of a record is computed from RGB frames j and j + 1 (0-based).
FLOW_INDEX_BASE = 0

METADATA_FILE = "metadata.json"
LABELS_FILE = "labels.txt"


def flow_settings():
    """The flow convention written into, and checked against, metadata."""
    return {
        "algorithm": FLOW_ALGORITHM,
        "bound": FLOW_BOUND,
        "quantisation": FLOW_QUANTISATION,
        "index_base": FLOW_INDEX_BASE,
    }


def flow_family(flow_metadata):
    """What makes two datasets' flow the same: the TV-L1 preset, its
    non-default parameters and the frames it ran on ('stored' or 'native'
    size, docs/DATA_PREP.md). The backend that computed it is recorded but is
    not part of it: both backends compute the same family for a preset
    (docs/FLOW.md). Metadata from before presets existed is 'opencv', and
    from before frame sizes were recorded, 'stored'."""
    return {
        "preset": flow_metadata.get("preset", "opencv"),
        "parameters": dict(flow_metadata.get("parameters", {})),
        "frame_size": flow_metadata.get("frame_size", "stored"),
    }


def check_flow_family(expected, received, *, what):
    """Raises ValueError, naming `what`, unless the two flow metadata dicts
    are of one family (`flow_family`)."""
    expected, received = flow_family(expected), flow_family(received)
    if expected != received:
        raise ValueError(
            f"{what}: its flow is {received}, but {expected} is expected; "
            "flow of another TV-L1 preset or parameters is not the same input."
        )


def quantize_flow(flow):
    """Maps flow in pixels to uint8: clip to +-bound, then linear to 0..255.

    A tensor (the SavedModel graph) gives a tensor, anything else numpy;
    both round halves to even.
    """
    if tf.is_tensor(flow):
        clip, to_uint8 = tf.clip_by_value, lambda x: tf.cast(tf.round(x), tf.uint8)
    else:
        flow = np.asarray(flow, np.float32)
        clip, to_uint8 = np.clip, lambda x: np.round(x).astype(np.uint8)
    scaled = (clip(flow, -FLOW_BOUND, FLOW_BOUND) + FLOW_BOUND) * (
        255.0 / (2.0 * FLOW_BOUND)
    )
    return to_uint8(scaled)


def dequantize_flow(quantized):
    """Inverse of `quantize_flow`, exact to half a quantisation step."""
    q = np.asarray(quantized, np.float32)
    return q * (2.0 * FLOW_BOUND / 255.0) - FLOW_BOUND


def _bytes_feature(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _int_feature(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def make_sequence_example(
    *, video_id, labels, rgb_jpegs, flow_x_jpegs, flow_y_jpegs, source="", start_frame=0
):
    """Serialises one video; flow lists must hold one entry per frame pair."""
    video_length = len(rgb_jpegs)
    if len(flow_x_jpegs) != max(video_length - 1, 0) or len(flow_y_jpegs) != len(
        flow_x_jpegs
    ):
        raise ValueError(
            f"{video_id}: {video_length} RGB frames need {video_length - 1} flow "
            f"frames per direction. Received: x={len(flow_x_jpegs)}, "
            f"y={len(flow_y_jpegs)}"
        )
    context = tf.train.Features(
        feature={
            VIDEO_ID_KEY: _bytes_feature([video_id.encode()]),
            LABEL_INDEX_KEY: _int_feature(int(label) for label in labels),
            LENGTH_KEY: _int_feature([video_length]),
            SOURCE_KEY: _bytes_feature([str(source).encode()]),
            START_FRAME_KEY: _int_feature([int(start_frame)]),
        }
    )

    def feature_list(jpegs):
        return tf.train.FeatureList(feature=[_bytes_feature([jpeg]) for jpeg in jpegs])

    lists = tf.train.FeatureLists(
        feature_list={
            RGB_KEY: feature_list(rgb_jpegs),
            FLOW_X_KEY: feature_list(flow_x_jpegs),
            FLOW_Y_KEY: feature_list(flow_y_jpegs),
        }
    )
    example = tf.train.SequenceExample(context=context, feature_lists=lists)
    # Deterministic: map fields (the feature dicts) in key order, so the
    # same video always gives the same bytes (resumed runs, caching).
    return example.SerializeToString(deterministic=True)


CONTEXT_FEATURES = {
    VIDEO_ID_KEY: tf.io.FixedLenFeature([], tf.string),
    LABEL_INDEX_KEY: tf.io.VarLenFeature(tf.int64),
    LENGTH_KEY: tf.io.FixedLenFeature([], tf.int64),
    SOURCE_KEY: tf.io.FixedLenFeature([], tf.string, default_value=""),
    START_FRAME_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=0),
}
SEQUENCE_FEATURES = {
    key: tf.io.FixedLenSequenceFeature([], tf.string)
    for key in (RGB_KEY, FLOW_X_KEY, FLOW_Y_KEY)
}


def parse_sequence_example(serialized):
    """Parses one serialised record into a flat dict of tensors (no decoding).

    Returns keys of the schema: scalars for the context, a dense int64 vector
    for the labels and string vectors of encoded JPEGs for the feature lists.
    """
    context, sequences = tf.io.parse_single_sequence_example(
        serialized, CONTEXT_FEATURES, SEQUENCE_FEATURES
    )
    parsed = dict(context)
    parsed[LABEL_INDEX_KEY] = tf.sparse.to_dense(context[LABEL_INDEX_KEY])
    parsed.update(sequences)
    return parsed


def write_metadata(data_dir, metadata):
    """Atomically writes `metadata.json` and the sorted `labels.txt`.

    `metadata["flow"]` may say how the flow was computed (`preset`,
    `parameters`, `backend`); the convention fields are added here.
    """
    flow = dict(metadata.get("flow", {}), **flow_settings())
    metadata = dict(metadata, schema_version=SCHEMA_VERSION, flow=flow)
    settings.write_json(
        storage.join(data_dir, METADATA_FILE), metadata, indent=2, sort_keys=True
    )
    labels = "".join(label + "\n" for label in metadata["labels"])
    storage.write_text(storage.join(data_dir, LABELS_FILE), labels)


def read_metadata(data_dir):
    """Reads and checks `metadata.json`.

    Raises:
        FileNotFoundError: if there is no metadata in `data_dir`.
        ValueError: if the schema version or flow settings differ from this
            module's, naming the file and the mismatching field.
    """
    path = storage.join(data_dir, METADATA_FILE)
    if not storage.exists(path):
        raise FileNotFoundError(
            f"{path} does not exist: prepare the data with "
            f"`python -m data_prep.prepare` first."
        )
    metadata = settings.read_json(path)
    if metadata.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(
            f"{path}: schema_version {metadata.get('schema_version')!r} is "
            f"not the supported {SCHEMA_VERSION}."
        )
    for key, expected in flow_settings().items():
        received = metadata.get("flow", {}).get(key)
        if received != expected:
            raise ValueError(
                f"{path}: flow {key} is {received!r}, but this reader "
                f"expects {expected!r}; re-prepare the data."
            )
    return metadata
