"""Checks shared by the tests of the NetVLAD family and the streaming layers.

Each function takes the layer (or a factory for it) and the video, so that
each test file keeps only its parameters and what is particular to its layer.
"""

import os

import keras
import numpy as np

from avlad_tf.layers import streaming

# float32 rounding of sums taken in another order.
TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}
# Frames 0, 2, 3, 6, 7, 8, 10, 11 are real; masked frames sit anywhere.
SCATTERED_KEEP = np.array([1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 0], np.float32)


def numpy_of(x):
    return keras.ops.convert_to_numpy(x)


def numpy_vlad(x, kernel, bias, centers=None):
    """NetVLAD with the release's normalisations, one loop per term.

    x: (B, T, H, W, D); kernel (D, K + G); bias (K + G,); centers (K, D), or
    None for no residual (NetRVLAD, K = K + G). The softmax runs over all
    K + G columns, and only the first K clusters are aggregated (GhostVLAD).
    """

    def l2n(v):
        return v / np.sqrt(max(np.sum(v * v), 1e-12))

    batch, time, height, width, depth = x.shape
    num_clusters = kernel.shape[1] if centers is None else centers.shape[0]
    out = np.zeros((batch, num_clusters * depth), np.float64)
    for b in range(batch):
        vlad = np.zeros((num_clusters, depth), np.float64)
        for t in range(time):
            for i in range(height):
                for j in range(width):
                    desc = l2n(x[b, t, i, j].astype(np.float64))
                    logits = desc @ kernel + bias
                    assign = np.exp(logits - logits.max())
                    assign /= assign.sum()  # over real and ghost clusters
                    for k in range(num_clusters):
                        residual = desc if centers is None else desc - centers[k]
                        vlad[k] += assign[k] * residual
        for k in range(num_clusters):
            vlad[k] = l2n(vlad[k])
        out[b] = l2n(vlad.reshape(-1))
    return out


def make_video(batch=2, num_frames=13, seed=0, depth=4, zero_frames=(2, 9)):
    """(B, T, 2, 3, D) features; `zero_frames` are all zero (black frames)."""
    x = np.random.default_rng(seed).normal(size=(batch, num_frames, 2, 3, depth))
    x[:, [t for t in zero_frames if t < num_frames]] = 0.0
    return x.astype(np.float32)


def stream(layer, video, chunk_frames, mask=None):
    """update() over consecutive slices (the last may be shorter), unpadded."""
    state = layer.initial_state(video.shape[0])
    for start in range(0, video.shape[1], chunk_frames):
        frames = slice(start, start + chunk_frames)
        chunk_mask = None if mask is None else mask[:, frames]
        state = layer.update(state, video[:, frames], chunk_mask)
    return numpy_of(layer.finalize(state))


def assert_streamed_equals_one_shot(layer, video, chunk_frames):
    """Unpadded `update` slices and padded `pool_in_chunks` equal `layer(video)`."""
    expected = numpy_of(layer(video))
    np.testing.assert_allclose(
        stream(layer, video, chunk_frames), expected, **TOLERANCE
    )
    padded = streaming.pool_in_chunks(layer, video, chunk_frames=chunk_frames)
    np.testing.assert_allclose(numpy_of(padded), expected, **TOLERANCE)


def assert_masked_padding_contributes_nothing(
    layer, video, chunk_frames, num_real, zero_padding=False
):
    """Video 0 has `num_real` real frames, video 1 all; the padding holds
    garbage (NaN, huge values, and with `zero_padding` a zero frame, which a
    bias would still count) that must not reach the descriptor."""
    mask = np.ones(video.shape[:2], np.float32)
    mask[0, num_real:] = 0.0
    padded = video.copy()
    padded[0, num_real:] = np.nan
    padded[0, num_real + 1] = 1e30
    if zero_padding:
        padded[0, num_real + 2] = 0.0
    streamed = stream(layer, padded, chunk_frames, mask)
    np.testing.assert_allclose(
        streamed[:1], numpy_of(layer(video[:1, :num_real])), **TOLERANCE
    )
    np.testing.assert_allclose(streamed[1:], numpy_of(layer(video[1:])), **TOLERANCE)


def assert_masked_frames_may_sit_anywhere(layer, video):
    """`video` is one video of `len(SCATTERED_KEEP)` frames."""
    streamed = stream(layer, video, 5, SCATTERED_KEEP[None])
    expected = numpy_of(layer(video[:, SCATTERED_KEEP == 1]))
    np.testing.assert_allclose(streamed, expected, **TOLERANCE)


def assert_all_masked_video_pools_to_zeros(layer, video):
    mask = np.zeros(video.shape[:2], np.float32)
    mask[1] = 1.0
    streamed = stream(layer, video, 4, mask)
    np.testing.assert_array_equal(streamed[0], 0.0)
    np.testing.assert_allclose(streamed[1:], numpy_of(layer(video[1:])), **TOLERANCE)


def assert_state_saved_mid_video_resumes(test, make_layer, video, split):
    """Saves the state after `split` frames with `np.savez` and resumes it in
    a fresh layer from `make_layer` (the same weights, as in a new process)."""
    layer = make_layer()
    state = layer.update(layer.initial_state(video.shape[0]), video[:, :split])
    path = os.path.join(test.create_tempdir().full_path, "state.npz")
    np.savez(path, **{key: numpy_of(value) for key, value in state.items()})
    resumed = make_layer()
    with np.load(path) as saved:
        state = dict(saved)
    test.assertTrue(all(v.dtype == np.float32 for v in state.values()))
    state = resumed.update(state, video[:, split:])
    np.testing.assert_allclose(
        numpy_of(resumed.finalize(state)), numpy_of(layer(video)), **TOLERANCE
    )


def jit_masked_stream_error(layer, video, num_real, chunk_frames=4):
    """Max error of a `jax.jit`-compiled masked stream (video 0 has `num_real`
    real frames) against one-shot pooling; for the backend scripts."""
    import jax

    update, finalize = jax.jit(layer.update), jax.jit(layer.finalize)
    mask = np.ones(video.shape[:2], np.float32)
    mask[0, num_real:] = 0.0
    state = layer.initial_state(video.shape[0])
    for start in range(0, video.shape[1], chunk_frames):
        frames = slice(start, start + chunk_frames)
        state = update(state, video[:, frames], mask[:, frames])
    masked = np.asarray(finalize(state))
    return float(
        max(
            np.max(np.abs(masked[:1] - np.asarray(layer(video[:1, :num_real])))),
            np.max(np.abs(masked[1:] - np.asarray(layer(video[1:])))),
        )
    )


def layer_inputs(seed, depth=4):
    """`(2, 2, 3, 3, depth)` float64 inputs for the Keras-level checks."""
    return np.random.default_rng(seed).normal(size=(2, 2, 3, 3, depth))


def assert_keras_file_round_trip(test, layer, depth=4):
    x = keras.Input((2, 3, 3, depth))
    model = keras.Model(x, layer(x))
    test.assert_keras_file_round_trip(model, layer_inputs(6, depth))


def fit_step(test, make_layer, jit_compile, depth=4):
    """One fit step of `make_layer()` in a small model; returns the model."""
    inputs = layer_inputs(7, depth).astype(np.float32)
    return test.run_fit_step(make_layer, inputs, 5, jit_compile)


def assert_computes_in_float32(test, make_layer, depth=4):
    """Under mixed_float16 the layer still computes (and trains) in float32."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    layer = make_layer()
    out = layer(keras.ops.zeros((1, 2, 2, 2, depth), dtype="float16"))
    test.assertEqual(layer.compute_dtype, "float32")
    test.assertEqual(out.dtype, "float32")
    test.assertTrue(np.all(np.isfinite(numpy_of(out))))
    test.run_fit_step(make_layer, layer_inputs(8, depth).astype(np.float32), 5)


def assert_finite_at_zero_input(test, layer, depth=4):
    """An all-zero video gives a finite output and finite gradients (the norm
    clamps keep 0 / 0 out of the graph)."""
    import tensorflow as tf

    x = tf.zeros((1, 2, 2, 2, depth))
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = layer(x)
        loss = tf.reduce_sum(out * tf.range(out.shape[-1], dtype=tf.float32))
    grads = tape.gradient(loss, [x] + layer.trainable_weights)
    test.assertTrue(np.all(np.isfinite(out.numpy())))
    for grad in grads:
        test.assertTrue(np.all(np.isfinite(grad.numpy())))
