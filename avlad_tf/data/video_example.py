"""One video: a parsed record, sampled, decoded and preprocessed.

`decode` parses a serialized `SequenceExample` (`schema`);
`sample_and_augment` samples its frames (`sampling`), decodes only the
sampled JPEGs (`frame_sources`) and crops, flips and normalises them
(`preprocessing`), as the release's reader does (docs/RELEASE.md Sec. 2-3).
`video_input.make_dataset` maps these over the records of a split.
"""

import tensorflow as tf

from avlad_tf.data import crop_geometry
from avlad_tf.data import frame_sources
from avlad_tf.data import manifest
from avlad_tf.data import preprocessing
from avlad_tf.data import sampling
from avlad_tf.data import schema
from avlad_tf.data.pixel_rules import UINT8_DATA_FORMATS


def decode(serialized):
    """Parses one record (no JPEG decoding) and checks its frame counts.

    Returns:
        The dict of `schema.parse_sequence_example`.
    """
    example = schema.parse_sequence_example(serialized)
    n = example[schema.LENGTH_KEY]
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
    clip_stride=1,
    num_clips=1,
    joint_sampling="shared",
    pixel_dtype="float32",
    partial_decode=True,
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
        sampling_mode: 'release', 'tsn' or 'clips' (`sampling` module).
        clip_stride, num_clips: the frame stride in a clip and the clips
            read in evaluation (`sampling_mode='clips'`).
        joint_sampling: with both streams, 'shared' (the release's rgb+flow
            rule: RGB frames at the flow stride) or 'independent' (each stream
            its own single-stream rule).
        pixel_dtype, partial_decode: see `make_dataset`.
        **pixel_options: `scale_ratios` (training) and the parity switches
            `bgr_means`, `release_crop_offsets` (evaluation),
            `convert_before_resize`, `half_pixel_centers`.

    Returns:
        `(features, label)`: `features[m]` `[T · crops, S, S, C]` (T·N with N clips).
    """
    seed = tf.cast(seed, tf.int64)
    sample_seed, crop_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=2)
    )
    n = _checked_length(example, modalities, flow_stack)
    indices = sampling.sample_indices(
        n,
        modalities=modalities,
        num_samples=num_frames,
        flow_stack=flow_stack,
        joint_sampling=joint_sampling,
        training=training,
        seed=sample_seed,
        sampling=sampling_mode,
        clip_stride=clip_stride,
        num_clips=num_clips,
    )
    # Evaluation clips are N·T samples, clip-major.
    num_frames = sampling.num_steps(
        num_frames, sampling=sampling_mode, training=training, num_clips=num_clips
    )
    scale_ratios = pixel_options.pop("scale_ratios", crop_geometry.SCALE_RATIOS)
    release_crop_offsets = pixel_options.pop("release_crop_offsets", True)
    params = None  # one crop and flip for every frame and both streams
    if training:
        params = crop_geometry.random_crop_params(
            crop_seed,
            resize_to=resize_to,
            image_size=image_size,
            scale_ratios=scale_ratios,
        )
    features = {}
    for modality in modalities:
        features[modality] = _preprocess(
            example,
            indices[modality],
            modality,
            params=params,
            training=training,
            uint8=pixel_dtype == "uint8",
            partial_decode=partial_decode,
            num_frames=num_frames,
            flow_stack=flow_stack,
            num_crops=num_crops,
            image_size=image_size,
            resize_to=resize_to,
            release_crop_offsets=release_crop_offsets,
            **pixel_options,
        )
    return features, label_vector(example, num_classes, multi_label)


def _checked_length(example, modalities, flow_stack):
    """The video's frame count, failing on a video too short for the flow
    stack before any index is gathered."""
    n = example[schema.LENGTH_KEY]
    video_id = example[schema.VIDEO_ID_KEY]
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
        return tf.identity(n)


def _preprocess(
    example,
    indices,
    modality,
    *,
    params,
    training,
    uint8,
    num_frames,
    flow_stack,
    num_crops,
    image_size,
    resize_to,
    release_crop_offsets,
    partial_decode,
    **pixel_options,
):
    """One modality's frames at `indices`, decoded and preprocessed (see
    `sample_and_augment`): `[T · crops, S, S, C]`, uint8 flow
    `[T · crops, C, S, S]`. `params`: the training crop and flip.

    With `partial_decode`, frames stored at `resize_to` are decoded only
    where the crops read them (`crop_geometry.decode_window`): the same
    pixels, bit for bit, for less decoding."""
    if training:
        boxes = [crop_geometry.train_box(params)]
    else:
        boxes = crop_geometry.eval_boxes(
            resize_to=resize_to,
            image_size=image_size,
            num_crops=num_crops,
            release_crop_offsets=release_crop_offsets,
        )

    def decode_and_crop(window):
        part = dict(window=window, frame_size=resize_to)
        if modality == "rgb":
            frames, assemble = frame_sources.rgb_source(example, indices, **part)
        else:  # uint8 flow ships channels-first (`layers.pixels`)
            frames, assemble = frame_sources.flow_source(
                example, indices, channels_first=uint8, **part
            )
        where = dict(
            modality=modality,
            image_size=image_size,
            resize_to=resize_to,
            assemble=assemble,
            origin=None if window is None else window[:2],
        )
        if training:
            return preprocessing.preprocess_for_train(
                frames, params, **where, **pixel_options
            )
        crops = dict(
            where, num_crops=num_crops, release_crop_offsets=release_crop_offsets
        )
        if uint8:  # the crops before any arithmetic (`layers.ReleasePixels`)
            video_id = example[schema.VIDEO_ID_KEY]
            return preprocessing.eval_crops_uint8(frames, **crops, video_id=video_id)
        return preprocessing.preprocess_for_eval(frames, **crops, **pixel_options)

    if partial_decode:
        window = crop_geometry.decode_window(
            boxes, resize_to=resize_to, channels=3 if modality == "rgb" else 1
        )
        video = tf.cond(
            frame_sources.stored_at(example, modality, indices, resize_to),
            lambda: decode_and_crop(window),
            lambda: decode_and_crop(None),  # resized first: decode it all
        )
    else:
        video = decode_and_crop(None)
    channels = 3 if modality == "rgb" else 2 * flow_stack
    crop = [image_size, image_size, channels]
    if uint8 and UINT8_DATA_FORMATS[modality] == "channels_first":
        crop = [channels, image_size, image_size]
    video.set_shape([num_frames * (1 if training else num_crops), *crop])
    return video
