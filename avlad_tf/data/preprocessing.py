"""Per-video pixel preprocessing of the release (docs/RELEASE.md Sec. 3).

Every function takes one video, uint8 `[T, H, W, C]` (C = 3 for RGB, 2L for
stacked flow), and works eagerly, in a `tf.function` (the SavedModel export
reuses `preprocess_for_eval`) and inside `tf.data`.

The release's pixel path, reproduced by default:

1. convert uint8 to float in [0, 1] (TF's dtype conversion, x · 1/255),
2. resize to `resize_to` (256×340) with the legacy TF1 bilinear kernel
   (`align_corners=False`, no half-pixel centres),
3. crop (training: random size and position, resized to `image_size`, random
   horizontal flip; evaluation: fixed crops), multiply by 255,
4. RGB: reverse channels to BGR and subtract [104, 117, 123]; flow: subtract
   128 (x is not negated on a flip).

One augmentation per video: a crop box and flip are drawn once
(`crop_geometry.random_crop_params`) and applied to every frame and to both streams.

When frames are already stored at `resize_to` (as `data_prep` writes them),
step 2 is the identity, so the crop is taken from the uint8 frames before
conversion; this gives the same numbers and touches far fewer pixels. The
reader goes further and decodes only the window of each stored frame that the
crops read (`crop_geometry.decode_window`); it passes the window's `origin`.

The tf.data reader decodes each distinct frame once and passes an `assemble`
(`frame_sources`) that repeats frames and interleaves flow planes into the
video's `T` frames. Every step works channel by channel, so the numbers do not
depend on where it runs (the tensor steps are `pixel_ops`); each path runs it
where it is cheapest: `preprocess_for_train` before the crop is resized,
`preprocess_for_eval` last.
"""

import inspect

import tensorflow as tf

from avlad_tf.data import crop_geometry
from avlad_tf.data import pixel_ops

# Shared with the on-device twin of steps 3-4 (`layers.ReleasePixels`) and
# re-exported as this path's rules (`KERAS_BGR_MEANS`: the `bgr_means` switch).
from avlad_tf.data.pixel_rules import FLOW_MEAN  # noqa: F401
from avlad_tf.data.pixel_rules import KERAS_BGR_MEANS  # noqa: F401
from avlad_tf.data.pixel_rules import MODALITIES  # noqa: F401
from avlad_tf.data.pixel_rules import RELEASE_BGR_MEANS
from avlad_tf.data.pixel_rules import UINT8_DATA_FORMATS


def resize(images, size, *, half_pixel_centers=False):
    """Bilinear resize of `[N, H, W, C]` to `size`; legacy TF1 kernel by default."""
    return tf.compat.v1.image.resize_bilinear(
        images, size, align_corners=False, half_pixel_centers=half_pixel_centers
    )


def eval_settings(settings):
    """The entries of `make_dataset`'s settings that `preprocess_for_eval`
    takes (the crop and pixel rules), for code that crops outside the
    pipeline: the SavedModel graph and dense evaluation."""
    accepted = inspect.signature(preprocess_for_eval).parameters
    own = ("frames", "modality", "num_crops", "assemble", "origin")
    return {k: v for k, v in settings.items() if k in accepted and k not in own}


def preprocess_for_eval(
    frames,
    *,
    modality,
    num_crops=1,
    image_size=224,
    resize_to=(256, 340),
    release_crop_offsets=True,
    bgr_means=RELEASE_BGR_MEANS,
    convert_before_resize=True,
    half_pixel_centers=False,
    assemble=None,
    origin=None,
):
    """Evaluation crops of one video, all crops of a frame together.

    These crops need no resize, so they are finished on the distinct decoded
    frames and assembled last: for flow the float work then covers about
    2U = 52 planes instead of T · 2L = 500 channels.

    Args:
        frames: uint8 `[T, H, W, C]`, RGB order for `modality='rgb'`, flow
            channels x1, y1, ..., xL, yL for `modality='flow'`; or, with
            `assemble`, the distinct decoded frames `[U, H, W, c]`.
        modality: `'rgb'` or `'flow'`.
        num_crops: 1 (the release's (16, 60) crop) or 5.
        image_size: S, the crop side.
        resize_to: (H', W') every frame is resized to first.
        release_crop_offsets, bgr_means, convert_before_resize,
        half_pixel_centers: the parity switches (module docstring).
        assemble: optional (the tf.data reader's, `frame_sources`); maps
            crops of the distinct frames `[U, N, h, w, c]` (any dtype) to
            the video's `[T, N, h, w, C]`.
        origin: optional int32 `(top, left)`: `frames` are the window at
            `origin` of frames stored at `resize_to` (the reader's partial
            decode, `crop_geometry.decode_window`).

    Returns:
        float32 `[T · num_crops, S, S, C]`, frame-major (frame 0's crops, then
        frame 1's, ...): the network input, on the release's 0..255 scale
        minus the means (0..65025 with `convert_before_resize=False`, the
        original model's order, Sec. 11.2).
    """
    boxes = crop_geometry.eval_boxes(
        resize_to=resize_to,
        image_size=image_size,
        num_crops=num_crops,
        release_crop_offsets=release_crop_offsets,
    )
    _check_frames(frames, modality)

    def float_crops(video, origin):  # [U, h', w', c] of frames at resize_to
        crops = pixel_ops.bgr_crops(
            video, crop_geometry.shifted(boxes, origin), modality
        )  # [U, N, S, S, c]
        return pixel_ops.to_float(crops, convert_before_resize)

    crops = _crops_at_resize_to(
        frames,
        float_crops,
        origin=origin,
        resize_to=resize_to,
        convert_before_resize=convert_before_resize,
        half_pixel_centers=half_pixel_centers,
    )  # float32 [U, N, S, S, c]
    crops *= 255.0
    crops = pixel_ops.subtract_means(crops, modality=modality, bgr_means=bgr_means)
    crops = assemble(crops) if assemble else crops  # [T, N, S, S, C]
    shape = tf.shape(crops)
    return tf.reshape(crops, [-1, image_size, image_size, shape[4]])  # [T·N, S, S, C]


def eval_crops_uint8(
    frames,
    *,
    modality,
    num_crops=1,
    image_size=224,
    resize_to=(256, 340),
    release_crop_offsets=True,
    assemble=None,
    origin=None,
    video_id="",
):
    """`preprocess_for_eval`'s crops before any arithmetic: uint8, RGB order.

    `avlad_tf.layers.ReleasePixels` turns them into `preprocess_for_eval`'s
    values, bit for bit, on the accelerator. Only frames already at
    `resize_to` qualify: a resize would need floats.

    Args:
        frames: uint8 `[T, H', W', C]` at `resize_to` (or their window at
            `origin`); the other arguments as in `preprocess_for_eval`.
        video_id: named by the size check's error.

    Returns:
        uint8 `[T · num_crops, ...]`, frame-major; a crop is what `assemble`
        makes of it (`[S, S, C]` without one).

    Raises:
        InvalidArgumentError: (when run) for frames of another size.
    """
    pixel_ops.check_modality(modality)
    boxes = crop_geometry.eval_boxes(
        resize_to=resize_to,
        image_size=image_size,
        num_crops=num_crops,
        release_crop_offsets=release_crop_offsets,
    )
    if origin is not None:  # a window of frames stored at resize_to
        return _ordered_crops(
            frames, crop_geometry.shifted(boxes, origin), modality, assemble
        )
    size = tf.shape(frames)[1:3]
    check = tf.debugging.Assert(
        tf.reduce_all(tf.equal(size, resize_to)),
        [
            f"uint8 evaluation crops need frames stored at {resize_to} "
            "(evaluate with normalize_on_device=False to resize them); video",
            video_id,
            "has (height, width)",
            size,
        ],
    )
    with tf.control_dependencies([check]):
        frames = tf.identity(frames)
    return _ordered_crops(frames, boxes, modality, assemble)


def _ordered_crops(frames, boxes, modality, assemble):
    """uint8 crops `[T · N, ...]`, frame-major, of distinct `frames`.

    The whole frames are put in the video's order first and cropped last:
    with 5 crops of overlapping flow stacks that moves about half the bytes
    of cropping each distinct frame and ordering the crops.
    """
    channels_first = assemble and UINT8_DATA_FORMATS[modality] == "channels_first"
    video = assemble(frames[:, None])[:, 0] if assemble else frames  # [T, ...]
    crops = pixel_ops.crop_stack(video, boxes, rows_axis=2 if channels_first else 1)
    # [T, N, ...] -> [T·N, ...]
    return tf.reshape(crops, tf.concat([[-1], tf.shape(crops)[2:]], axis=0))


def preprocess_for_train(
    frames,
    params,
    *,
    modality,
    image_size=224,
    resize_to=(256, 340),
    bgr_means=RELEASE_BGR_MEANS,
    convert_before_resize=True,
    half_pixel_centers=False,
    assemble=None,
    origin=None,
):
    """Applies one video's crop and flip (`random_crop_params`) to all frames.

    The crop is assembled into the video's frames or flow stacks before it is
    resized, while still uint8: the resize kernel is several times faster on
    20 channels than on one.

    Args:
        frames: uint8 `[T, H, W, C]` (see `preprocess_for_eval`).
        params: the dict from `crop_geometry.random_crop_params`; pass the
            same dict for both streams of a video.
        modality, image_size, resize_to, bgr_means, convert_before_resize,
        half_pixel_centers, assemble, origin: as in `preprocess_for_eval`.

    Returns:
        float32 `[T, S, S, C]`, on `preprocess_for_eval`'s scale.
    """
    _check_frames(frames, modality)
    box = crop_geometry.train_box(params)

    def assembled_crop(video, origin):  # [U, h', w', c] of frames at resize_to
        crops = pixel_ops.bgr_crops(
            video, crop_geometry.shifted([box], origin), modality
        )  # [U, 1, h, w, c]
        crops = assemble(crops) if assemble else crops  # [T, 1, h, w, C]
        return pixel_ops.to_float(crops, convert_before_resize)

    crops = _crops_at_resize_to(
        frames,
        assembled_crop,
        origin=origin,
        resize_to=resize_to,
        convert_before_resize=convert_before_resize,
        half_pixel_centers=half_pixel_centers,
    )  # float32 [T, 1, h, w, C]
    shape = tf.shape(crops)
    crops = tf.reshape(crops, [-1, shape[2], shape[3], shape[4]])  # [T, h, w, C]
    crops = resize(
        crops, [image_size, image_size], half_pixel_centers=half_pixel_centers
    )  # [T, S, S, C]
    crops *= 255.0
    # A horizontal flip only mirrors the planes: the release never negates x.
    crops = tf.cond(params["flip"], lambda: pixel_ops.mirror(crops), lambda: crops)
    return pixel_ops.subtract_means(crops, modality=modality, bgr_means=bgr_means)


def _crops_at_resize_to(
    frames, crop, *, origin, resize_to, convert_before_resize, half_pixel_centers
):
    """`crop(video, origin)`, where `video` is the window at `origin` of
    `frames` at `resize_to`.

    Frames stored at `resize_to` (the usual case) skip the identity resize
    and are cropped while still uint8: same numbers, less work; with an
    `origin` they are already a window of such frames. Others are converted
    to float and resized first (steps 1-2).
    """
    if origin is not None:
        return crop(frames, origin)

    def resized():
        floats = pixel_ops.to_float(frames, convert_before_resize)
        video = resize(floats, list(resize_to), half_pixel_centers=half_pixel_centers)
        return crop(video, (0, 0))

    height, width = frames.shape[1], frames.shape[2]
    if height is not None and width is not None:  # static: no tf.cond needed
        stored = (height, width) == tuple(resize_to)
        return crop(frames, (0, 0)) if stored else resized()
    size = tf.shape(frames)
    stored = tf.logical_and(
        tf.equal(size[1], resize_to[0]), tf.equal(size[2], resize_to[1])
    )
    return tf.cond(stored, lambda: crop(frames, (0, 0)), resized)


def _check_frames(frames, modality):
    if frames.dtype != tf.uint8:
        raise ValueError(f"frames must be uint8. Received: {frames.dtype}")
    pixel_ops.check_modality(modality)
