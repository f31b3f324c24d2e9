"""Streaming pooling (initial_state / update / finalize) equals one-shot pooling."""

import functools

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np
import pytest

from avlad_tf.layers import netvlad
from avlad_tf.layers import pooling
from avlad_tf.layers import streaming
from tests import testing
from tests.layers import vlad_checks
from tests.layers.vlad_checks import TOLERANCE
from tests.layers.vlad_checks import numpy_of
from tests.layers.vlad_checks import stream

NUM_FRAMES = 13
DEPTH = 4
LAYER_NAMES = ("netvlad", "avg", "max")
# (B, T, 2, 3, D) features; frames 2 and 9 are all zero (black frames).
make_video = functools.partial(vlad_checks.make_video, num_frames=NUM_FRAMES)


def make_layer(name):
    """A built layer; NetVLAD with soft, decoupled assignment as after training."""
    if name == "avg":
        layer = pooling.SpatioTemporalAveragePooling()
    elif name == "max":
        layer = pooling.SpatioTemporalMaxPooling()
    else:
        layer = netvlad.NetVLAD(num_clusters=3, alpha=2.0)
    layer.build((None, None, None, None, DEPTH))
    if name == "netvlad":
        rng = np.random.default_rng(10)
        layer.set_centers(rng.normal(size=(3, DEPTH)).astype(np.float32))
        layer.assignment_kernel.assign(rng.normal(size=(DEPTH, 3)))
        layer.assignment_bias.assign(rng.normal(size=(3,)))
    return layer


class StreamingTest(testing.TestCase):
    @parameterized.product(name=LAYER_NAMES, chunk_frames=(1, 7, NUM_FRAMES))
    def test_streamed_equals_one_shot(self, name, chunk_frames):
        vlad_checks.assert_streamed_equals_one_shot(
            make_layer(name), make_video(), chunk_frames
        )

    @parameterized.product(name=LAYER_NAMES, chunk_frames=(1, 7, NUM_FRAMES))
    def test_masked_padding_contributes_nothing(self, name, chunk_frames):
        vlad_checks.assert_masked_padding_contributes_nothing(
            make_layer(name), make_video(), chunk_frames, num_real=9
        )

    @parameterized.parameters(*LAYER_NAMES)
    def test_masked_frames_may_sit_anywhere(self, name):
        vlad_checks.assert_masked_frames_may_sit_anywhere(
            make_layer(name), make_video(batch=1)
        )

    @parameterized.parameters(*LAYER_NAMES)
    def test_all_masked_video_pools_to_zeros(self, name):
        vlad_checks.assert_all_masked_video_pools_to_zeros(
            make_layer(name), make_video()
        )

    @parameterized.parameters(*LAYER_NAMES)
    def test_frame_order_does_not_matter(self, name):
        layer, video = make_layer(name), make_video()
        shuffled = video[:, np.random.default_rng(3).permutation(NUM_FRAMES)]
        expected = numpy_of(layer(video))
        np.testing.assert_allclose(numpy_of(layer(shuffled)), expected, **TOLERANCE)
        np.testing.assert_allclose(stream(layer, shuffled, 3), expected, **TOLERANCE)

    @parameterized.parameters(*LAYER_NAMES)
    def test_state_saved_mid_video_resumes(self, name):
        vlad_checks.assert_state_saved_mid_video_resumes(
            self, functools.partial(make_layer, name), make_video(), split=6
        )

    @parameterized.parameters(*LAYER_NAMES)
    def test_state_is_small_float32_and_not_modified(self, name):
        layer = make_layer(name)
        state = layer.initial_state(2)
        before = {key: numpy_of(value) for key, value in state.items()}
        layer.update(state, make_video())
        for key, value in state.items():
            self.assertEqual(keras.backend.standardize_dtype(value.dtype), "float32")
            self.assertEqual(value.shape[0], 2)
            np.testing.assert_array_equal(numpy_of(value), before[key])

    def test_netvlad_state_shapes(self):
        state = make_layer("netvlad").initial_state(5)
        self.assertEqual(
            {key: tuple(value.shape) for key, value in state.items()},
            {"s1": (5, 3, DEPTH), "s0": (5, 3)},
        )

    def test_half_precision_chunks_accumulate_in_float32(self):
        layer = make_layer("netvlad")
        video = make_video()
        state = layer.update(layer.initial_state(2), video.astype(np.float16))
        self.assertEqual(keras.backend.standardize_dtype(state["s1"].dtype), "float32")
        np.testing.assert_allclose(
            numpy_of(layer.finalize(state)),
            numpy_of(layer(video.astype(np.float16))),
            **TOLERANCE,
        )

    def test_chunks_of_pads_the_last_chunk_with_masked_frames(self):
        video = make_video(num_frames=5)
        chunks = list(streaming.chunks_of(video, 2))
        self.assertEqual([chunk.shape[1] for chunk, _ in chunks], [2, 2, 2])
        np.testing.assert_array_equal(chunks[-1][1], [[1, 0], [1, 0]])
        np.testing.assert_array_equal(chunks[-1][0][:, 1], 0.0)
        self.assertEqual(next(streaming.chunks_of(video, 9))[0].shape[1], 5)


class StreamingErrorTest(testing.TestCase):
    @parameterized.parameters(*LAYER_NAMES)
    def test_chunk_of_wrong_rank(self, name):
        layer = make_layer(name)
        with self.assertRaisesRegex(ValueError, r"rank 5.*chunk.shape=\(2, 3, 4\)"):
            layer.update(layer.initial_state(2), np.zeros((2, 3, 4)))

    @parameterized.parameters(*LAYER_NAMES)
    def test_chunk_of_wrong_depth(self, name):
        layer = make_layer(name)
        with self.assertRaisesRegex(ValueError, r"4 channels.*\(2, 1, 1, 1, 5\)"):
            layer.update(layer.initial_state(2), np.zeros((2, 1, 1, 1, 5)))

    @parameterized.parameters(*LAYER_NAMES)
    def test_mask_shape_mismatch(self, name):
        layer = make_layer(name)
        with self.assertRaisesRegex(
            ValueError, r"mask must have shape \(2, 3\).*mask.shape=\(2, 4\)"
        ):
            layer.update(
                layer.initial_state(2), make_video(num_frames=3), np.ones((2, 4))
            )

    @parameterized.parameters(*LAYER_NAMES)
    def test_state_for_another_batch(self, name):
        layer = make_layer(name)
        with self.assertRaisesRegex(ValueError, r"state\[.*must have shape \(2,"):
            layer.update(layer.initial_state(3), make_video(batch=2))

    @parameterized.parameters(*LAYER_NAMES)
    def test_state_with_wrong_keys(self, name):
        layer = make_layer(name)
        with self.assertRaisesRegex(ValueError, r"state must be a dict with keys"):
            layer.finalize({"total": np.zeros((2, DEPTH))})

    def test_netvlad_state_of_another_size(self):
        state = make_layer("netvlad").initial_state(2)
        bigger = netvlad.NetVLAD(num_clusters=4)
        bigger.build((None, None, None, None, DEPTH))
        with self.assertRaisesRegex(ValueError, r"state\['s1'\].*\(None, 4, 4\)"):
            bigger.finalize(state)

    @parameterized.parameters(
        netvlad.NetVLAD,
        pooling.SpatioTemporalAveragePooling,
        pooling.SpatioTemporalMaxPooling,
    )
    def test_unbuilt_layer(self, layer_cls):
        with self.assertRaisesRegex(ValueError, r"initial_state needs a built layer"):
            layer_cls().initial_state(1)

    @parameterized.parameters(0, 2.5, None)
    def test_bad_chunk_frames(self, chunk_frames):
        with self.assertRaisesRegex(ValueError, "chunk_frames must be a positive"):
            next(streaming.chunks_of(make_video(), chunk_frames))


# Runs under KERAS_BACKEND=jax with TensorFlow unimportable; update and
# finalize are compiled with jax.jit and must be traced once per shape.
_JAX_SCRIPT = r"""
import json
import jax
import keras
import numpy as np
from avlad_tf.layers import streaming
from tests.layers import streaming_test as st

video = st.make_video()
mask = np.ones((2, st.NUM_FRAMES), np.float32)
mask[0, 9:] = 0.0
result = {"backend": keras.backend.backend()}
for name in st.LAYER_NAMES:
    layer = st.make_layer(name)
    traces = []

    def update(state, chunk, mask, layer=layer, traces=traces):
        traces.append(chunk.shape)
        return layer.update(state, chunk, mask)

    update = jax.jit(update)
    finalize = jax.jit(layer.finalize)
    state = layer.initial_state(2)
    for chunk, chunk_mask in streaming.chunks_of(video, 4):
        state = update(state, chunk, chunk_mask)
    full = np.asarray(finalize(state))
    state = layer.initial_state(2)
    for start in range(0, st.NUM_FRAMES, 4):
        frames = slice(start, start + 4)
        state = update(state, video[:, frames], mask[:, frames])
    masked = np.asarray(finalize(state))
    result[name] = {
        "traces": len(traces),
        "full_error": float(np.max(np.abs(full - np.asarray(layer(video))))),
        "masked_error": float(max(
            np.max(np.abs(masked[:1] - np.asarray(layer(video[:1, :9])))),
            np.max(np.abs(masked[1:] - np.asarray(layer(video[1:])))),
        )),
    }
print(json.dumps(result))
"""


class JaxStreamingTest(absltest.TestCase):
    @pytest.mark.slow
    def test_jit_compiled_streaming_on_jax_without_tensorflow(self):
        # TensorFlow unimportable; `tests.layers.streaming_test` importable.
        result = testing.run_on_backend(_JAX_SCRIPT, "jax")
        self.assertEqual(result["backend"], "jax")
        for name in LAYER_NAMES:
            # Equal-shaped chunks (the last one padded): one trace. The second
            # pass has a 1-frame last chunk, hence one more.
            self.assertEqual(result[name]["traces"], 2, name)
            self.assertLess(result[name]["full_error"], 1e-5, name)
            self.assertLess(result[name]["masked_error"], 1e-5, name)


if __name__ == "__main__":
    absltest.main()
