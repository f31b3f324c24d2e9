"""Decoding a video's sampled frames, once each, and stacking their crops.

The reader decodes each distinct sampled frame once (stacks overlap and short
videos repeat frames) and hands preprocessing an `assemble` that turns the
crops of those distinct frames into the video's `T` frames or flow stacks.
`assemble` only moves values, so preprocessing applies it wherever it is
cheapest: training before the resize, evaluation last.
"""

import tensorflow as tf

from avlad_tf.data import manifest
from avlad_tf.data import schema


def decode_distinct_frames(
    encoded_lists, indices, channels, *, window=None, frame_size=None, video_id=""
):
    """Decodes each distinct frame of `indices` once, from each list.

    Stacks overlap (stride < L) and short videos repeat frames, so decoding
    distinct indices only saves work without changing any pixel.

    Args:
        encoded_lists: string `[n]` JPEG lists (one per direction for flow).
        indices: int frame indices, any shape.
        channels: 3 or 1.
        window: optional int32 `(top, left, height, width)`: decode only
            this part of each frame (`crop_geometry.decode_window`), which
            must be stored at `frame_size` (a frame of another size fails,
            naming `video_id`).

    Returns:
        uint8 `[len(encoded_lists) · U, H, W, channels]` (list-major; `H, W`
        the window's with one), the int32 position in 0..U−1 of each
        flattened index, and U.
    """
    unique, position = tf.unique(tf.reshape(indices, [-1]))
    jpegs = tf.concat([tf.gather(encoded, unique) for encoded in encoded_lists], axis=0)
    if window is None:

        def decode(jpeg):
            return tf.io.decode_jpeg(jpeg, channels=channels)

    else:

        def decode(jpeg):
            # A frame of another size would be cropped silently.
            size = tf.io.extract_jpeg_shape(jpeg)[:2]
            same = manifest.require(
                tf.reduce_all(tf.equal(size, frame_size)),
                "a sampled frame is stored at another (height, width) than the "
                "video's first; video",
                video_id,
                size,
                frame_size,
            )
            with tf.control_dependencies([same]):
                return tf.io.decode_and_crop_jpeg(jpeg, window, channels=channels)

    images = tf.map_fn(
        decode,
        jpegs,
        fn_output_signature=tf.TensorSpec([None, None, channels], tf.uint8),
    )
    return images, position, tf.size(unique)


def stored_at(example, modality, indices, size):
    """Whether a stream's frames are stored at `size` `(height, width)`,
    read from the JPEG header of its first frame at `indices` without
    decoding it (`decode_distinct_frames` checks the others)."""
    key = schema.RGB_KEY if modality == "rgb" else schema.FLOW_X_KEY
    first = tf.reshape(indices, [-1])[0]
    stored = tf.io.extract_jpeg_shape(example[key][first])[:2]
    return tf.reduce_all(tf.equal(stored, tf.constant(size, tf.int32)))


def rgb_source(example, indices, *, window=None, frame_size=None):
    """Distinct RGB frames and the `assemble` that orders their crops
    (`window`, `frame_size`: see `decode_distinct_frames`)."""
    frames, position, _ = decode_distinct_frames(
        [example[schema.RGB_KEY]],
        indices,
        3,
        window=window,
        frame_size=frame_size,
        video_id=example.get(schema.VIDEO_ID_KEY, ""),
    )
    return frames, lambda crops: tf.gather(crops, position)  # [T, N, h, w, 3]


def flow_source(
    example, indices, *, channels_first=False, window=None, frame_size=None
):
    """Distinct flow planes and the `assemble` that stacks their crops.

    Channels come out interleaved x1, y1, ..., xL, yL (Sec. 2.2), last or,
    with `channels_first`, before the crop's rows (the uint8 layout,
    `pixel_rules.UINT8_DATA_FORMATS`). `window`, `frame_size`: see
    `decode_distinct_frames`.
    """
    planes, position, num_unique = decode_distinct_frames(
        [example[schema.FLOW_X_KEY], example[schema.FLOW_Y_KEY]],
        indices,
        1,
        window=window,
        frame_size=frame_size,
        video_id=example.get(schema.VIDEO_ID_KEY, ""),
    )
    return planes, flow_assembler(
        position, num_unique, indices.shape, channels_first=channels_first
    )


def flow_assembler(position, num_unique, stacks_shape, *, channels_first=False):
    """The `assemble` of flow: crops of distinct planes → interleaved stacks.

    The one home of the release's channel order x1, y1, ..., xL, yL
    (Sec. 2.2): the pipeline, the SavedModel graph and `predict` stack flow
    with it.

    Args:
        position: int `[T·L]`, the distinct frame of each stack slot.
        num_unique: U, the number of distinct frames.
        stacks_shape: `(T, L)`.
        channels_first: the uint8 layout (`pixel_rules.UINT8_DATA_FORMATS`).

    Returns:
        A function from crops `[2U, N, h, w, 1]` (the U x planes, then the U
        y planes) to `[T, N, h, w, 2L]` (or `[T, N, 2L, h, w]`).
    """
    num_samples, flow_stack = stacks_shape
    # Sample t, stack slot l, direction d is plane d·U + position[t·L + l].
    order = tf.reshape(
        tf.stack([position, position + num_unique], axis=-1), [-1]
    )  # [T·L·2]

    def assemble(crops):  # [2U, N, h, w, 1]
        picked = tf.gather(crops[..., 0], order)  # [T·L·2, N, h, w]
        shape = tf.shape(picked)
        if channels_first:  # moves whole h·w planes: cheap
            picked = tf.reshape(
                picked, [num_samples, 2 * flow_stack, shape[1], shape[2], shape[3]]
            )
            return tf.transpose(picked, [0, 2, 1, 3, 4])  # [T, N, 2L, h, w]
        # (L, 2) and (N, h, w) are contiguous, so one batched 2-D transpose
        # interleaves the channels (much faster than a 6-D transpose).
        # [T, 2L, N·h·w]
        picked = tf.reshape(picked, [num_samples, 2 * flow_stack, -1])
        picked = tf.transpose(picked, [0, 2, 1])  # [T, N·h·w, 2L]
        return tf.reshape(
            picked, [num_samples, shape[1], shape[2], shape[3], 2 * flow_stack]
        )  # [T, N, h, w, 2L]

    return assemble
