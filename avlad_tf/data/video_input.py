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

Record counts are checked against the manifest while reading
(`manifest.read_shard`), so a corrupt or truncated shard fails naming it.
"""

import tensorflow as tf

from avlad_tf import settings
from avlad_tf.data import frame_sources
from avlad_tf.data import manifest
from avlad_tf.data import preprocessing
from avlad_tf.data import sampling
from avlad_tf.data import schema
from avlad_tf.data.pixel_rules import UINT8_DATA_FORMATS

AUTOTUNE = tf.data.AUTOTUNE

# Part of the reader's public API (docs/CONTRACTS.md).
dataset_info = manifest.dataset_info
decode_distinct_frames = frame_sources.decode_distinct_frames


def decode(serialized):
    """Parses one record (no JPEG decoding) and checks its frame counts.

    Returns:
        The dict of `schema.parse_sequence_example`.
    """
    example = schema.parse_sequence_example(serialized)
    n = example[schema.NUM_FRAMES_KEY]
    video_id = example[schema.VIDEO_ID_KEY]
    num_rgb = tf.size(example[schema.RGB_KEY], tf.int64)
    num_x = tf.size(example[schema.FLOW_X_KEY], tf.int64)
    num_y = tf.size(example[schema.FLOW_Y_KEY], tf.int64)
    checks = [
        manifest.require(
            tf.equal(num_rgb, n),
            "video/num_frames differs from the number of RGB frames in video",
            video_id,
            n,
            num_rgb,
        ),
        manifest.require(
            tf.equal(num_x, tf.maximum(n - 1, 0)) & tf.equal(num_y, num_x),
            "n RGB frames need n - 1 flow frames per direction; video",
            video_id,
            n,
            num_x,
            num_y,
        ),
    ]
    with tf.control_dependencies(checks):
        return {key: tf.identity(value) for key, value in example.items()}


def label_vector(example, num_classes, multi_label):
    """One-hot (or multi-hot) float32 `[C]`; fails on out-of-range labels."""
    indices = example[schema.LABEL_INDEX_KEY]
    video_id = example[schema.VIDEO_ID_KEY]
    in_range = tf.reduce_all((indices >= 0) & (indices < num_classes))
    checks = [
        manifest.require(
            in_range,
            f"label index outside [0, {num_classes}) in video",
            video_id,
            indices,
        )
    ]
    if not multi_label:
        checks.append(
            manifest.require(
                tf.equal(tf.size(indices), 1),
                "single-label data needs exactly one label per video; video",
                video_id,
                indices,
            )
        )
    with tf.control_dependencies(checks):
        hot = tf.one_hot(indices, num_classes, dtype=tf.float32)
    return tf.minimum(tf.reduce_sum(hot, axis=0), 1.0)


def sample_and_augment(
    example,
    *,
    seed,
    modalities=("rgb",),
    training,
    num_classes,
    multi_label=False,
    num_frames=25,
    flow_stack=10,
    num_crops=1,
    image_size=224,
    resize_to=(256, 340),
    sampling_mode="release",
    joint_sampling="shared",
    pixel_dtype="float32",
    **pixel_options,
):
    """Samples, decodes and preprocesses one parsed video (see `decode`).

    Args:
        example: the dict from `decode`.
        seed: int `[2]`, this video's stateless seed.
        modalities: subset of ('rgb', 'flow').
        training: random crop + flip (else `num_crops` fixed crops).
        num_classes, multi_label: label encoding.
        num_frames, flow_stack: T and L.
        num_crops, image_size, resize_to: see `preprocessing`.
        sampling_mode: 'release' or 'tsn' (`sampling` module).
        joint_sampling: with both streams, 'shared' (the release's rgb+flow
            rule: RGB frames at the flow stride) or 'independent' (each stream
            its own single-stream rule).
        pixel_dtype: see `make_dataset`.
        **pixel_options: `scale_ratios` (training) and the parity switches
            `bgr_means`, `release_crop_offsets` (evaluation),
            `convert_before_resize`, `half_pixel_centers`.

    Returns:
        `(features, label)`: `features[m]` `[T · crops, S, S, C]`.
    """
    seed = tf.cast(seed, tf.int64)
    sample_seed, crop_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=2)
    )
    n = example[schema.NUM_FRAMES_KEY]
    video_id = example[schema.VIDEO_ID_KEY]
    # Fail on a video too short for the stack before any index is gathered.
    least = sampling.min_frames(modalities, flow_stack)
    why = (
        f"fewer than {least} frames (a flow stack of {flow_stack} needs "
        f"{least} frames) in"
        if "flow" in modalities
        else "no frames"
    )
    with tf.control_dependencies(
        [manifest.require(n >= least, f"{why} video", video_id, n)]
    ):
        n = tf.identity(n)
    indices = sampling.sample_indices(
        n,
        modalities=modalities,
        num_samples=num_frames,
        flow_stack=flow_stack,
        joint_sampling=joint_sampling,
        training=training,
        seed=sample_seed,
        sampling=sampling_mode,
    )
    scale_ratios = pixel_options.pop("scale_ratios", preprocessing.SCALE_RATIOS)
    release_crop_offsets = pixel_options.pop("release_crop_offsets", True)
    if training:
        params = preprocessing.random_crop_params(
            crop_seed,
            resize_to=resize_to,
            image_size=image_size,
            scale_ratios=scale_ratios,
        )
    features = {}
    uint8 = pixel_dtype == "uint8"
    for modality in modalities:
        if modality == "rgb":
            frames, assemble = frame_sources.rgb_source(example, indices[modality])
        else:  # uint8 flow ships channels-first (`layers.pixels`)
            frames, assemble = frame_sources.flow_source(
                example, indices[modality], channels_first=uint8
            )
        if training:
            video = preprocessing.preprocess_for_train(
                frames,
                params,
                modality=modality,
                image_size=image_size,
                resize_to=resize_to,
                assemble=assemble,
                **pixel_options,
            )
        elif uint8:
            video = preprocessing.eval_crops_uint8(
                frames,
                modality=modality,
                num_crops=num_crops,
                image_size=image_size,
                resize_to=resize_to,
                assemble=assemble,
                release_crop_offsets=release_crop_offsets,
                video_id=video_id,
            )
        else:
            video = preprocessing.preprocess_for_eval(
                frames,
                modality=modality,
                num_crops=num_crops,
                image_size=image_size,
                resize_to=resize_to,
                assemble=assemble,
                release_crop_offsets=release_crop_offsets,
                **pixel_options,
            )
        channels = 3 if modality == "rgb" else 2 * flow_stack
        crop = [image_size, image_size, channels]
        if uint8 and UINT8_DATA_FORMATS[modality] == "channels_first":
            crop = [channels, image_size, image_size]
        video.set_shape([num_frames * (1 if training else num_crops), *crop])
        features[modality] = video
    return features, label_vector(example, num_classes, multi_label)


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
        "joint_sampling",
        "shuffle_buffer",
        "cycle_length",
        "scale_ratios",
        "bgr_means",
        "release_crop_offsets",
        "convert_before_resize",
        "half_pixel_centers",
    ),
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
    joint_sampling="shared",
    shuffle_buffer=64,
    cycle_length=4,
    scale_ratios=preprocessing.SCALE_RATIOS,
    bgr_means=preprocessing.RELEASE_BGR_MEANS,
    release_crop_offsets=True,
    convert_before_resize=True,
    half_pixel_centers=False,
    pixel_dtype="float32",
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
        sampling_mode: 'release' (deterministic strides) or 'tsn'.
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
    preprocessing.eval_crop_offsets(
        resize_to=resize_to, image_size=image_size, num_crops=num_crops
    )  # validates early
    metadata = info or manifest.dataset_info(data_dir)
    files, counts = manifest.split_shards(metadata, data_dir, split)

    shards = tf.data.Dataset.from_tensor_slices(
        (tf.constant(files), tf.constant(counts, tf.int64))
    )
    if training:
        # New shard order each epoch, but the same sequence for the same seed.
        # data_prep writes training splits in a shuffled record order, so
        # each shard already mixes classes (docs/DATA.md, Record order).
        shards = shards.shuffle(
            len(files), seed=seed, reshuffle_each_iteration=True
        ).repeat()
        records = shards.interleave(
            manifest.read_shard,
            cycle_length=min(cycle_length, len(files)),
            num_parallel_calls=AUTOTUNE,
            deterministic=True,
        )
        # Shuffle serialized records: cheap, before any JPEG is decoded.
        records = records.shuffle(
            shuffle_buffer, seed=seed, reshuffle_each_iteration=True
        )
    else:
        records = shards.flat_map(manifest.read_shard)  # sorted shards, file order

    def parse(index, serialized):
        # A stateless per-video seed: results do not depend on thread timing.
        video_seed = tf.stack([tf.constant(seed, tf.int64), index])
        example = decode(serialized)
        features, labels = sample_and_augment(
            example,
            seed=video_seed,
            modalities=modalities,
            training=training,
            num_classes=metadata["num_classes"],
            multi_label=bool(metadata.get("multi_label", False)),
            num_frames=num_frames,
            flow_stack=flow_stack,
            num_crops=num_crops,
            image_size=image_size,
            resize_to=tuple(resize_to),
            sampling_mode=sampling_mode,
            joint_sampling=joint_sampling,
            pixel_dtype=pixel_dtype,
            scale_ratios=tuple(scale_ratios),
            bgr_means=tuple(bgr_means),
            release_crop_offsets=release_crop_offsets,
            convert_before_resize=convert_before_resize,
            half_pixel_centers=half_pixel_centers,
        )
        if with_ids:
            features["video_id"] = example[schema.VIDEO_ID_KEY]
        return features, labels

    records = records.enumerate()
    # Skipping and sharding come after the enumeration, so every video keeps
    # its index (its seed) in the whole stream, and before the map, so a
    # worker decodes only its own videos. Only when asked: a single-process
    # pipeline keeps the graph its checkpointed iterators were saved from.
    if skip:
        records = records.skip(skip)
    if num_shards > 1:
        records = records.shard(num_shards, shard_index)
    dataset = records.map(parse, num_parallel_calls=AUTOTUNE, deterministic=True)
    dataset = dataset.batch(batch_size, drop_remainder=training)
    options = tf.data.Options()
    options.deterministic = True
    return dataset.with_options(options).prefetch(AUTOTUNE)
