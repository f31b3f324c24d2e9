"""Where the crops of a video lie (docs/RELEASE.md Sec. 3): the release's
training crop sizes and evaluation offsets, and the part of each stored
frame that the crops read, which is all the reader decodes.

Boxes are `(top, left, height, width)` in the frame stored at `resize_to`.
"""

import tensorflow as tf

# Crop side ratios of the *output* size, drawn independently for h and w.
SCALE_RATIOS = (1.0, 0.875, 0.75, 0.66)


def crop_sizes(image_size, scale_ratios=SCALE_RATIOS):
    """⌊image_size · r⌋ for each ratio: (224, 196, 168, 147) at 224."""
    return tuple(int(image_size * ratio) for ratio in scale_ratios)


def eval_crop_offsets(*, resize_to, image_size, num_crops, release_crop_offsets=True):
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
            f"image_size {image_size} does not fit in resize_to {resize_to}."
        )
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


def random_crop_params(
    seed, *, resize_to=(256, 340), image_size=224, scale_ratios=SCALE_RATIOS
):
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
        raise ValueError(f"crop sizes {sizes} do not fit in resize_to {resize_to}.")
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=5)

    def uniform_int(i, maxval):
        return tf.random.stateless_uniform(
            [], seed=seeds[i], minval=0, maxval=maxval, dtype=tf.int32
        )

    height = tf.gather(sizes, uniform_int(0, len(sizes)))
    width = tf.gather(sizes, uniform_int(1, len(sizes)))
    return {
        "height": height,
        "width": width,
        "top": uniform_int(2, resize_to[0] - height + 1),
        "left": uniform_int(3, resize_to[1] - width + 1),
        "flip": tf.random.stateless_uniform([], seed=seeds[4]) < 0.5,
    }


def eval_boxes(*, resize_to, image_size, num_crops, release_crop_offsets=True):
    """The `(top, left, S, S)` box of each evaluation crop (`eval_crop_offsets`)."""
    offsets = eval_crop_offsets(
        resize_to=resize_to,
        image_size=image_size,
        num_crops=num_crops,
        release_crop_offsets=release_crop_offsets,
    )
    return [(top, left, image_size, image_size) for top, left in offsets]


def train_box(params):
    """The box of a training crop drawn by `random_crop_params`."""
    return (params["top"], params["left"], params["height"], params["width"])


# A colour JPEG stores chroma at a lower resolution (4:2:0 halves it both
# ways), and libjpeg's smooth upsampling fills the pixels next to the edge of
# a partly decoded area from that area alone, so they differ from a whole
# decode by a few levels. Widening the area to whole blocks of this many
# pixels, plus one more block on each side, keeps every pixel a crop reads
# bit-identical (tests/data/crop_geometry_test.py: 4:4:4 to 4:1:1,
# progressive, real frames). One-channel (flow) JPEGs have no chroma.
CHROMA_BLOCK = 16


def decode_window(boxes, *, resize_to, channels):
    """The part of a frame stored at `resize_to` to decode for `boxes`.

    Args:
        boxes: `(top, left, height, width)` of each crop (ints or int32
            scalars).
        resize_to: (H', W'), the stored frame size.
        channels: 3 (colour JPEGs: widened, see `CHROMA_BLOCK`) or 1.

    Returns:
        int32 `[4]`: `(top, left, height, width)` of the window inside the
        frame, covering every box.
    """
    boxes = tf.cast(tf.stack([tf.stack(box) for box in boxes]), tf.int32)
    top, left = tf.reduce_min(boxes[:, 0]), tf.reduce_min(boxes[:, 1])
    bottom = tf.reduce_max(boxes[:, 0] + boxes[:, 2])
    right = tf.reduce_max(boxes[:, 1] + boxes[:, 3])
    if channels == 3:
        block = CHROMA_BLOCK
        top = tf.maximum((top // block - 1) * block, 0)
        left = tf.maximum((left // block - 1) * block, 0)
        bottom = tf.minimum((-(-bottom // block) + 1) * block, resize_to[0])
        right = tf.minimum((-(-right // block) + 1) * block, resize_to[1])
    return tf.stack([top, left, bottom - top, right - left])


def shifted(boxes, origin):
    """`boxes` in the coordinates of a window at `origin` (`decode_window`'s
    `(top, left)`)."""
    return [(top - origin[0], left - origin[1], h, w) for top, left, h, w in boxes]
