"""Whole videos at bounded memory: pooling a video chunk by chunk.

ActionVLAD, average and max pooling all reduce over frames with an order-free,
associative operation (a sum, a max), so a video of any length can be pooled a
chunk of frames at a time. Each pooling layer keeps a small running state whose
size does not depend on the video's length:

    state = layer.initial_state(batch_size)
    for chunk, mask in chunks_of(video, chunk_frames=50):
        state = layer.update(state, chunk, mask)
    descriptor = layer.finalize(state)  # == layer(video), to float32 rounding

`chunk` is `(B, t, H, W, D)` for any t >= 1; `mask` is an optional `(B, t)`
with 1 for a real frame and 0 for padding, which contributes nothing. The state
is a dict of float32 tensors; convert it with `ops.convert_to_numpy` to save a
video half-way and resume it later.
"""

from keras import ops
import numpy as np


def check_built(layer, method):
    """Raises ValueError unless `layer` is built (its depth is known)."""
    if not layer.built:
        raise ValueError(
            f"{type(layer).__name__}.{method} needs a built layer: call "
            "layer.build((None, None, None, None, channels)) or call the layer "
            "on inputs first."
        )


def _mismatch(received, expected):
    """True where two shapes differ in rank or in a dimension both know."""
    if len(received) != len(expected):
        return True
    return any(
        r is not None and e is not None and r != e for r, e in zip(received, expected)
    )


def check_chunk(layer_name, chunk, depth, mask=None):
    """Raises ValueError unless `chunk` is `(B, t, H, W, depth)`, mask `(B, t)`."""
    shape = tuple(chunk.shape)
    if len(shape) != 5:
        raise ValueError(
            f"{layer_name}.update expects chunks of rank 5 "
            "[batch, time, height, width, channels]. "
            f"Received: chunk.shape={shape}"
        )
    if _mismatch(shape[-1:], (depth,)):
        raise ValueError(
            f"{layer_name}.update expects chunks with {depth} channels, the "
            f"layer's depth. Received: chunk.shape={shape}"
        )
    if mask is not None and _mismatch(tuple(mask.shape), shape[:2]):
        raise ValueError(
            f"mask must have shape {shape[:2]} (batch, time) to match the "
            f"chunk. Received: mask.shape={tuple(mask.shape)}"
        )


def check_state(layer_name, state, expected):
    """Raises ValueError unless `state` has `expected`'s keys and shapes.

    Args:
        layer_name: the layer, for the message.
        state: a dict of tensors or arrays, as `initial_state` returns.
        expected: dict of key -> shape, `None` for a dimension not checked.
    """
    keys = sorted(state) if hasattr(state, "keys") else type(state).__name__
    if keys != sorted(expected):
        raise ValueError(
            f"{layer_name} state must be a dict with keys {sorted(expected)}, "
            f"as initial_state returns. Received: keys {keys}"
        )
    for key, shape in expected.items():
        received = tuple(state[key].shape)
        if _mismatch(received, shape):
            raise ValueError(
                f"{layer_name} state[{key!r}] must have shape {shape} "
                "(batch first; a state from a layer of another size or for "
                f"another batch does not fit). Received: shape {received}"
            )


def frame_flags(mask, chunk):
    """Per-frame keep flags `(B, t, 1, 1, 1)`, broadcastable over a chunk."""
    batch, time = ops.shape(chunk)[0], ops.shape(chunk)[1]
    return ops.reshape(ops.not_equal(mask, 0), (batch, time, 1, 1, 1))


def chunks_of(video, chunk_frames):
    """Yields `(chunk, mask)` pairs that cover `video` in order of time.

    Every chunk has the same number of frames, min(chunk_frames, T): the last
    is padded with masked zero frames, so a jit-compiled `update` is traced
    once. Slices are taken lazily, so `video` may be any array-like with
    `.shape` and `video[:, a:b]` (NumPy, a memmap, a lazy reader).

    Args:
        video: `(B, T, H, W, D)` array-like.
        chunk_frames: the most frames a chunk holds (a positive int).

    Raises:
        ValueError: if `chunk_frames` is not a positive int.
    """
    if not isinstance(chunk_frames, int) or chunk_frames < 1:
        raise ValueError(
            "chunk_frames must be a positive int. "
            f"Received: chunk_frames={chunk_frames!r}"
        )
    batch, video_length = video.shape[:2]
    size = min(chunk_frames, video_length)
    for start in range(0, video_length, size):
        chunk = np.asarray(video[:, start : start + size])
        real = chunk.shape[1]
        mask = np.zeros((batch, size), np.float32)
        mask[:, :real] = 1.0
        if real < size:
            padding = np.zeros((batch, size - real) + chunk.shape[2:], chunk.dtype)
            chunk = np.concatenate([chunk, padding], axis=1)
        yield chunk, mask


def pool_in_chunks(layer, video, *, chunk_frames, update=None):
    """Pools `video` with `layer`, holding one chunk of it at a time.

    Args:
        layer: a built `NetVLAD`, `SpatioTemporalAveragePooling` or
            `SpatioTemporalMaxPooling`.
        video: `(B, T, H, W, D)` array-like (see `chunks_of`).
        chunk_frames: the most frames per chunk.
        update: `layer.update` or a compiled version of it (`jax.jit`,
            `tf.function`) taking `(state, chunk, mask)`.

    Returns:
        The layer's output for `video`, as `layer.finalize` gives it.
    """
    update = update or layer.update
    state = layer.initial_state(video.shape[0])
    # A Python loop over chunks, not frames: it is what bounds the memory.
    for chunk, mask in chunks_of(video, chunk_frames):
        state = update(state, chunk, mask)
    return layer.finalize(state)
