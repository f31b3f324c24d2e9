"""tf.data pipeline: prepared TFRecords → batches for `model.fit` / evaluation.

Follows the release's reader (docs/RELEASE.md Sec. 2-3): T = 25 frames
sampled by `sampling`, L = 10 stacked flow frames interleaved x1, y1, ...,
one crop/flip per video shared by all frames and both streams, RGB as BGR
minus [104, 117, 123], flow minus 128, 1 or 5 evaluation crops folded
frame-major into the bag: `[B, T · crops, S, S, C]`.

Pipeline (why each step is where it is):

    shard list (sorted; training: seeded shuffle, repeat)
    → per-shard reader that counts records against the manifest
    → (training) shuffle serialized records          # cheap: still JPEG bytes
    → enumerate                                       # per-video stateless seed
    → (multi-worker training) skip, shard             # before any decoding
    → map(decode, sample, decode only sampled JPEGs, augment), parallel, ordered
    → batch (training: drop_remainder) → prefetch

`manifest.record_stream` runs the steps up to the sharding; it checks record
counts against the manifest while reading (`manifest.read_shard`), so a
corrupt or truncated shard fails naming it.
"""

import tensorflow as tf

from avlad_tf import settings
from avlad_tf.data import crop_geometry
from avlad_tf.data import frame_sources
from avlad_tf.data import manifest
from avlad_tf.data import preprocessing
from avlad_tf.data import schema
from avlad_tf.data import video_example

AUTOTUNE = tf.data.AUTOTUNE

# Part of the reader's public API (docs/CONTRACTS.md).
dataset_info = manifest.dataset_info
decode_distinct_frames = frame_sources.decode_distinct_frames


# The dataset's one home is `train.data_dir`; the other call arguments are
# each call's business, and a run records the settings as its input settings
# (`run_record`); the seed is `train_stream.seed`'s.
@settings.configurable(
    setting=(
        "num_frames",
        "flow_stack",
        "image_size",
        "resize_to",
        "sampling_mode",
        "clip_stride",
        "num_clips",
        "joint_sampling",
        "shuffle_buffer",
        "cycle_length",
        "scale_ratios",
        "bgr_means",
        "release_crop_offsets",
        "convert_before_resize",
        "half_pixel_centers",
    ),
    execution=("partial_decode",),
    call=(
        "data_dir",
        "split",
        "training",
        "modalities",
        "batch_size",
        "num_crops",
        "seed",
        "with_ids",
        "pixel_dtype",
        "info",
        "num_shards",
        "shard_index",
        "skip",
    ),
)
def make_dataset(
    *,
    data_dir,
    split,
    training,
    modalities=("rgb",),
    batch_size,
    num_frames=25,
    flow_stack=10,
    num_crops=1,
    image_size=224,
    resize_to=(256, 340),
    seed=0,
    with_ids=False,
    sampling_mode="release",
    clip_stride=1,
    num_clips=1,
    joint_sampling="shared",
    shuffle_buffer=64,
    cycle_length=4,
    scale_ratios=crop_geometry.SCALE_RATIOS,
    bgr_means=preprocessing.RELEASE_BGR_MEANS,
    release_crop_offsets=True,
    convert_before_resize=True,
    half_pixel_centers=False,
    pixel_dtype="float32",
    partial_decode=True,
    info=None,
    num_shards=1,
    shard_index=0,
    skip=0,
):
    """Batches of preprocessed videos from a prepared dataset.

    Args:
        data_dir: the prepared dataset (`metadata.json` and shards).
        split: e.g. 'train_split1' (see `metadata.json`).
        training: seeded shuffling, repeat, random crop/flip, drop_remainder;
            otherwise one deterministic pass in sorted shard order.
        modalities: ('rgb',), ('flow',) or ('rgb', 'flow') from one record,
            with the same crop and flip.
        batch_size: videos per batch.
        num_frames: T; flow_stack: L; num_crops: 1 or 5 (evaluation only);
        image_size: S; resize_to: frame size before cropping.
        seed: shuffling, T = 1 / TSN sampling and crop seeds derive from it.
        with_ids: add `features['video_id']` (string `[B]`).
        sampling_mode: 'release' (deterministic strides), 'tsn' or 'clips'
            (contiguous clips, `sampling`); clip_stride, num_clips: a
            clip's frame stride and evaluation's clips (features `[B, N·T,
            ...]`, clip-major; training reads one).
        joint_sampling: see `sample_and_augment`.
        shuffle_buffer: records (still JPEG bytes) in the shuffle buffer.
        cycle_length: shards read concurrently during training.
        scale_ratios: training crop side ratios of `image_size`.
        bgr_means, release_crop_offsets, convert_before_resize,
        half_pixel_centers: parity switches; defaults are the release's.
        pixel_dtype: 'float32' (the network input) or, for evaluation of
            frames stored at `resize_to`, 'uint8': the crops before any
            arithmetic, RGB order, flow channels-first, for
            `layers.ReleasePixels` on the device
            (`evaluate.normalize_on_device` passes it; do not bind it).
        partial_decode: decode only the part of each frame that the crops
            read (`crop_geometry.decode_window`), for frames stored at
            `resize_to`: bit-identical output, less decoding
            (docs/PERFORMANCE.md). False decodes whole frames.
        info: the dataset's checked metadata (`dataset_info`) when the caller
            has it; else it is read and checked here.
        num_shards, shard_index: keep only videos `shard_index`,
            `shard_index + num_shards`, ... of the stream (one worker of a
            multi-worker job): the batches of `batch_size` of all shards
            together hold the videos of the single-process batch of
            `num_shards * batch_size`, with the same crops.
        skip: videos of the stream to pass over first, read but not
            decoded (a multi-worker run resuming at its checkpoint's update).

    Returns:
        `tf.data.Dataset` of `(features, labels)`: `features['rgb']`
        `[B, T·crops, S, S, 3]`, `features['flow']` `[B, T·crops, S, S, 2L]`
        (float32; uint8 `[B, T·crops, 2L, S, S]`), labels float32 `[B, C]`.

    Raises:
        ValueError, FileNotFoundError: on bad arguments or metadata. While
        iterating, `InvalidArgumentError` names a shard whose record count
        differs from the manifest (including corruption) or a bad video.
    """
    modalities = tuple(modalities)
    _check_arguments(
        modalities=modalities,
        training=training,
        num_crops=num_crops,
        pixel_dtype=pixel_dtype,
        num_shards=num_shards,
        shard_index=shard_index,
        skip=skip,
        resize_to=resize_to,
        image_size=image_size,
    )
    metadata = info or manifest.dataset_info(data_dir)
    files, counts = manifest.split_shards(metadata, data_dir, split)
    records = manifest.record_stream(
        files,
        counts,
        training=training,
        seed=seed,
        cycle_length=cycle_length,
        shuffle_buffer=shuffle_buffer,
        skip=skip,
        num_shards=num_shards,
        shard_index=shard_index,
    )
    return _parse_and_batch(
        records,
        metadata,
        batch_size=batch_size,
        training=training,
        seed=seed,
        with_ids=with_ids,
        modalities=modalities,
        num_frames=num_frames,
        flow_stack=flow_stack,
        num_crops=num_crops,
        image_size=image_size,
        resize_to=resize_to,
        sampling_mode=sampling_mode,
        clip_stride=clip_stride,
        num_clips=num_clips,
        joint_sampling=joint_sampling,
        pixel_dtype=pixel_dtype,
        partial_decode=partial_decode,
        scale_ratios=scale_ratios,
        bgr_means=bgr_means,
        release_crop_offsets=release_crop_offsets,
        convert_before_resize=convert_before_resize,
        half_pixel_centers=half_pixel_centers,
    )


def _check_arguments(
    *,
    modalities,
    training,
    num_crops,
    pixel_dtype,
    num_shards,
    shard_index,
    skip,
    resize_to,
    image_size,
):
    """Raises ValueError on `make_dataset` arguments that do not go together."""
    if (
        not modalities
        or len(set(modalities)) != len(modalities)
        or not set(modalities) <= set(preprocessing.MODALITIES)
    ):
        raise ValueError(
            "modalities must be distinct values of "
            f"{preprocessing.MODALITIES}. Received: {modalities}"
        )
    if training and num_crops != 1:
        raise ValueError(
            f"training uses one random crop. Received: num_crops={num_crops}"
        )
    if pixel_dtype not in ("float32", "uint8") or (
        training and pixel_dtype != "float32"
    ):
        raise ValueError(
            "pixel_dtype must be 'float32', or 'uint8' for "
            "evaluation (training crops are resized). Received: "
            f"{pixel_dtype!r} with training={training}"
        )
    if not (0 <= shard_index < num_shards and skip >= 0):
        raise ValueError(
            "make_dataset needs 0 <= shard_index < num_shards and skip >= 0. "
            f"Received: num_shards={num_shards}, shard_index={shard_index}, "
            f"skip={skip}"
        )
    crop_geometry.eval_crop_offsets(
        resize_to=resize_to, image_size=image_size, num_crops=num_crops
    )  # validates early


def _parse_and_batch(
    records,
    metadata,
    *,
    batch_size,
    training,
    seed,
    with_ids,
    resize_to,
    scale_ratios,
    bgr_means,
    **sample_settings,
):
    """Decodes, samples and preprocesses the `manifest.record_stream` records
    (`sample_and_augment` with the settings given) and batches them."""

    def parse(index, serialized):
        # A stateless per-video seed: results do not depend on thread timing.
        video_seed = tf.stack([tf.constant(seed, tf.int64), index])
        example = video_example.decode(serialized)
        features, labels = video_example.sample_and_augment(
            example,
            seed=video_seed,
            training=training,
            num_classes=metadata["num_classes"],
            multi_label=bool(metadata.get("multi_label", False)),
            resize_to=tuple(resize_to),
            scale_ratios=tuple(scale_ratios),
            bgr_means=tuple(bgr_means),
            **sample_settings,
        )
        if with_ids:
            features["video_id"] = example[schema.VIDEO_ID_KEY]
        return features, labels

    dataset = records.map(parse, num_parallel_calls=AUTOTUNE, deterministic=True)
    dataset = dataset.batch(batch_size, drop_remainder=training)
    options = tf.data.Options()
    options.deterministic = True
    return dataset.with_options(options).prefetch(AUTOTUNE)
