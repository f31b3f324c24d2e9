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
(`random_crop_params`) and applied to every frame and to both streams.

When frames are already stored at `resize_to` (as `data_prep` writes them),
step 2 is the identity, so the crop is taken from the uint8 frames before
conversion; this gives the same numbers and touches far fewer pixels.
"""

import tensorflow as tf

# The on-device twin of steps 3-4 (`ReleasePixels`) owns the constants:
# Caffe/VGG means in BGR order, as integers (`vgg_ucf_preprocessing.py:19-21`),
# and the flow mean.
from avlad_tf.layers.pixels import FLOW_MEAN
from avlad_tf.layers.pixels import RELEASE_BGR_MEANS

# Keras' `imagenet_utils.preprocess_input(mode='caffe')` means, for the switch.
KERAS_BGR_MEANS = (103.939, 116.779, 123.68)
# Crop side ratios of the *output* size, drawn independently for h and w.
SCALE_RATIOS = (1.0, 0.875, 0.75, 0.66)
MODALITIES = ("rgb", "flow")


def crop_sizes(image_size, scale_ratios=SCALE_RATIOS):
    """⌊image_size · r⌋ for each ratio: (224, 196, 168, 147) at 224."""
    return tuple(int(image_size * ratio) for ratio in scale_ratios)


def eval_crop_offsets(*, resize_to, image_size, num_crops,
                      release_crop_offsets=True):
    """(top, left) of each evaluation crop, in the release's order.

    At 256×340 / 224 the release uses (16, 60) for one crop and (0, 0),
    (0, 115), (31, 0), (31, 115), (16, 60) for five (TL, TR, BL, BR, centre).
    With slack dy = H − S, dx = W − S that is: corners one pixel short of
    (dy, dx) and a "centre" at (dy // 2, dx // 2 + 2), which is how other sizes
    are generalised. `release_crop_offsets=False` gives true corners and the
    true centre (dy // 2, dx // 2) instead.

    Raises:
        ValueError: for `num_crops` other than 1 or 5, or a crop larger than
            `resize_to`.
    """
    dy, dx = resize_to[0] - image_size, resize_to[1] - image_size
    if dy < 0 or dx < 0:
        raise ValueError(
            f"image_size {image_size} does not fit in resize_to {resize_to}.")
    if release_crop_offsets:
        centre = (dy // 2, min(dx // 2 + 2, dx))
        y1, x1 = max(dy - 1, 0), max(dx - 1, 0)
    else:
        centre = (dy // 2, dx // 2)
        y1, x1 = dy, dx
    if num_crops == 1:
        return (centre,)
    if num_crops == 5:
        return ((0, 0), (0, x1), (y1, 0), (y1, x1), centre)
    raise ValueError(f"num_crops must be 1 or 5. Received: {num_crops}")


def _eval_boxes(*, image_size, **offset_options):
    """(top, left, S, S) of each evaluation crop (`eval_crop_offsets`)."""
    offsets = eval_crop_offsets(image_size=image_size, **offset_options)
    return [(top, left, image_size, image_size) for top, left in offsets]


def resize(images, size, *, half_pixel_centers=False):
    """Bilinear resize of `[N, H, W, C]` to `size`; legacy TF1 kernel by default."""
    return tf.compat.v1.image.resize_bilinear(
        images, size, align_corners=False,
        half_pixel_centers=half_pixel_centers)


def crop_and_scale(frames, boxes, *, modality, resize_to, image_size,
                   bgr_means=RELEASE_BGR_MEANS, flip=None, assemble=None,
                   convert_before_resize=True, half_pixel_centers=False):
    """The release's pixel path (module docstring) for `boxes` of a video.

    `assemble` repeats frames and interleaves flow planes where it is
    cheapest; every step works channel by channel, so the numbers do not
    depend on where. Crops that need no resize (evaluation) are finished
    first and assembled last: for flow the float work covers about 2U = 52
    planes instead of T · 2L = 500 channels. Crops that are resized
    (training) are assembled first, while still uint8: the resize kernel is
    several times faster on 20 channels than on one.

    Args:
        frames: uint8 `[T, H, W, C]`, or with `assemble` the distinct decoded
            frames `[U, H, W, c]` of a video.
        boxes: (top, left, height, width) in `resize_to` coordinates, Python
            ints or int32 scalars.
        modality, bgr_means: RGB → BGR minus `bgr_means`; flow minus 128
            (Sec. 3, "Means").
        flip: optional bool scalar; mirror every crop (training).
        assemble: optional; maps crops of the distinct frames
            `[U, N, h, w, c]` (any dtype) to the video's `[T, N, h, w, C]`.
        resize_to, image_size, convert_before_resize, half_pixel_centers:
            see `preprocess_for_eval`.

    Returns:
        float32 `[T, N, S, S, C]`, the network input: on the release's 0..255
        scale minus the means (0..65025 with `convert_before_resize=False`,
        the original model's order, Sec. 11.2).
    """
    if frames.dtype != tf.uint8:
        raise ValueError(f"frames must be uint8. Received: {frames.dtype}")
    if modality not in MODALITIES:
        raise ValueError(
            f"modality must be one of {MODALITIES}. Received: {modality!r}")

    def to_float(x):
        if convert_before_resize:
            return tf.image.convert_image_dtype(x, tf.float32)  # x · 1/255
        return tf.cast(x, tf.float32)

    height, width = boxes[0][2], boxes[0][3]
    no_resize = isinstance(height, int) and isinstance(width, int) and \
        height == width == image_size
    assemble = assemble or (lambda crops: crops)

    def crops_of(video):
        crops = _crop_stack(video, boxes)  # [U, N, h, w, c]
        if modality == "rgb":  # to BGR: exact, and cheapest while uint8
            crops = _reverse_channels(crops)
        if not no_resize:
            crops = assemble(crops)  # [T, N, h, w, C]
        if crops.dtype == tf.uint8:
            crops = to_float(crops)
        if no_resize:
            return crops
        shape = tf.shape(crops)
        crops = resize(tf.reshape(crops, [-1, shape[2], shape[3], shape[4]]),
                       [image_size, image_size],
                       half_pixel_centers=half_pixel_centers)  # [T·N, S, S, C]
        return tf.reshape(crops, [shape[0], shape[1], image_size, image_size,
                                  shape[4]])

    def from_resized():
        return crops_of(resize(to_float(frames), list(resize_to),
                               half_pixel_centers=half_pixel_centers))

    height, width = frames.shape[1], frames.shape[2]
    if height is not None and width is not None:
        same = (height, width) == tuple(resize_to)
        crops = crops_of(frames) if same else from_resized()
    else:
        # Frames stored at `resize_to` (the usual case) skip the identity
        # resize and are cropped while still uint8: same numbers, less work.
        shape = tf.shape(frames)
        same = tf.logical_and(tf.equal(shape[1], resize_to[0]),
                              tf.equal(shape[2], resize_to[1]))
        crops = tf.cond(same, lambda: crops_of(frames), from_resized)
    crops *= 255.0
    if flip is not None:
        # A horizontal flip only mirrors the planes: the release never
        # negates x.
        crops = tf.cond(flip, lambda: _mirror(crops), lambda: crops)
    crops = _subtract_means(crops, modality=modality, bgr_means=bgr_means)
    return assemble(crops) if no_resize else crops


def _crop_stack(video, boxes):
    """The crops `boxes` of every frame, `[T, N, h, w, C]`."""
    crops = [video[:, top:top + height, left:left + width, :]
             for top, left, height, width in boxes]
    return tf.stack(crops, axis=1)


# Eigen is slow on ops over a size-3 innermost axis; the two helpers below
# compute the same values on reshaped tensors (2-3x faster on 5-crop bags).
def _reverse_channels(video):
    """RGB → BGR, via a 2-D reverse `[N, 3]`."""
    shape = tf.shape(video)
    flat = tf.reshape(video, [-1, 3])  # [T·...·W, 3]
    return tf.reshape(tf.reverse(flat, axis=[1]), shape)


def _mirror(video):
    """Horizontal flip of `[..., S, S, C]`, as a 3-D reverse (faster)."""
    shape = tf.shape(video)
    rows = tf.reshape(video, [-1, shape[-2], shape[-1]])  # [...·S, S, C]
    return tf.reshape(tf.reverse(rows, axis=[1]), shape)


def _subtract_means(video, *, modality, bgr_means):
    if modality == "rgb":
        shape = tf.shape(video)
        width = shape[-2]
        rows = tf.reshape(video, [-1, width * 3])  # [T·...·H, W·3]
        rows -= tf.tile(tf.constant(bgr_means, tf.float32), [width])
        return tf.reshape(rows, shape)
    if modality == "flow":
        return video - FLOW_MEAN
    raise ValueError(f"modality must be one of {MODALITIES}. Received: {modality!r}")


def preprocess_for_eval(frames, *, modality, num_crops=1, image_size=224,
                        resize_to=(256, 340), release_crop_offsets=True,
                        bgr_means=RELEASE_BGR_MEANS, convert_before_resize=True,
                        half_pixel_centers=False, assemble=None):
    """Evaluation crops of one video, all crops of a frame together.

    Args:
        frames: uint8 `[T, H, W, C]`, RGB order for `modality='rgb'`, flow
            channels x1, y1, ..., xL, yL for `modality='flow'`.
        modality: `'rgb'` or `'flow'`.
        num_crops: 1 (the release's (16, 60) crop) or 5.
        image_size: S, the crop side.
        resize_to: (H', W') every frame is resized to first.
        release_crop_offsets, bgr_means, convert_before_resize,
        half_pixel_centers: the parity switches (module docstring).
        assemble: see `crop_and_scale` (used by the tf.data reader).

    Returns:
        float32 `[T · num_crops, S, S, C]`, frame-major (frame 0's crops, then
        frame 1's, ...).
    """
    boxes = _eval_boxes(resize_to=resize_to, image_size=image_size,
                        num_crops=num_crops,
                        release_crop_offsets=release_crop_offsets)
    crops = crop_and_scale(frames, boxes, modality=modality,
                           resize_to=resize_to, image_size=image_size,
                           bgr_means=bgr_means, assemble=assemble,
                           convert_before_resize=convert_before_resize,
                           half_pixel_centers=half_pixel_centers)
    shape = tf.shape(crops)
    return tf.reshape(crops, [-1, image_size, image_size, shape[4]])  # [T·N, S, S, C]


def eval_crops_uint8(frames, *, modality, num_crops=1, image_size=224,
                     resize_to=(256, 340), release_crop_offsets=True,
                     assemble=None, video_id=""):
    """`preprocess_for_eval`'s crops before any arithmetic: uint8, RGB order.

    `avlad_tf.layers.ReleasePixels` turns them into `preprocess_for_eval`'s
    values, bit for bit, on the accelerator. Only frames already at
    `resize_to` qualify: a resize would need floats.

    Args:
        frames: uint8 `[T, H', W', C]` at `resize_to`; the other arguments as
            in `preprocess_for_eval`.
        video_id: named by the size check's error.

    Returns:
        uint8 `[T · num_crops, ...]`, frame-major; a crop is what `assemble`
        makes of it (`[S, S, C]` without one).

    Raises:
        InvalidArgumentError: (when run) for frames of another size.
    """
    if modality not in MODALITIES:
        raise ValueError(
            f"modality must be one of {MODALITIES}. Received: {modality!r}")
    boxes = _eval_boxes(resize_to=resize_to, image_size=image_size,
                        num_crops=num_crops,
                        release_crop_offsets=release_crop_offsets)
    size = tf.shape(frames)[1:3]
    check = tf.debugging.Assert(
        tf.reduce_all(tf.equal(size, resize_to)), [
            f"uint8 evaluation crops need frames stored at {resize_to} "
            "(evaluate with normalize_on_device=False to resize them); video",
            video_id, "has (height, width)", size])
    with tf.control_dependencies([check]):
        frames = tf.identity(frames)
    crops = _crop_stack(frames, boxes)
    crops = assemble(crops) if assemble else crops
    # [T, N, ...] -> [T·N, ...]
    return tf.reshape(crops, tf.concat([[-1], tf.shape(crops)[2:]], axis=0))


def random_crop_params(seed, *, resize_to=(256, 340), image_size=224,
                       scale_ratios=SCALE_RATIOS):
    """Draws one training crop and flip for a whole video (Sec. 3.1).

    Height and width sides are drawn independently from
    ⌊image_size · r⌋, r in `scale_ratios`; the position uniformly over all
    valid offsets [0, H' − h] × [0, W' − w]; the flip with probability 0.5.

    Args:
        seed: int `[2]`, stateless seed (one per video).

    Returns:
        dict of int32 scalars `top`, `left`, `height`, `width` and bool `flip`.
    """
    sizes = crop_sizes(image_size, scale_ratios)
    if max(sizes) > min(resize_to):
        raise ValueError(
            f"crop sizes {sizes} do not fit in resize_to {resize_to}.")
    seeds = tf.random.experimental.stateless_split(
        tf.cast(seed, tf.int64), num=5)

    def uniform_int(i, maxval):
        return tf.random.stateless_uniform(
            [], seed=seeds[i], minval=0, maxval=maxval, dtype=tf.int32)

    height = tf.gather(sizes, uniform_int(0, len(sizes)))
    width = tf.gather(sizes, uniform_int(1, len(sizes)))
    return {
        "height": height,
        "width": width,
        "top": uniform_int(2, resize_to[0] - height + 1),
        "left": uniform_int(3, resize_to[1] - width + 1),
        "flip": tf.random.stateless_uniform([], seed=seeds[4]) < 0.5,
    }


def preprocess_for_train(frames, params, *, modality, image_size=224,
                         resize_to=(256, 340), bgr_means=RELEASE_BGR_MEANS,
                         convert_before_resize=True, half_pixel_centers=False,
                         assemble=None):
    """Applies one video's crop and flip (`random_crop_params`) to all frames.

    Args:
        frames: uint8 `[T, H, W, C]` (see `preprocess_for_eval`).
        params: the dict from `random_crop_params`; pass the same dict for
            both streams of a video.
        modality, image_size, resize_to, bgr_means, convert_before_resize,
        half_pixel_centers, assemble: as in `preprocess_for_eval`.

    Returns:
        float32 `[T, S, S, C]`.
    """
    box = (params["top"], params["left"], params["height"], params["width"])
    return crop_and_scale(frames, [box], modality=modality,
                          resize_to=resize_to, image_size=image_size,
                          bgr_means=bgr_means, flip=params["flip"],
                          assemble=assemble,
                          convert_before_resize=convert_before_resize,
                          half_pixel_centers=half_pixel_centers)[:, 0]
