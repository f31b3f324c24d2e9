"""Tests of the NeXtVLAD layer against a loop-based NumPy transcription."""

import functools

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np
import pytest

from avlad_tf.layers import netvlad
from avlad_tf.layers import nextvlad
from tests import testing
from tests.layers import vlad_checks
from tests.layers.vlad_checks import TOLERANCE
from tests.layers.vlad_checks import numpy_of

NUM_FRAMES = 13
DEPTH = 4
# (B, T, 2, 3, D) features; frames 2 and 9 are all zero (black frames).
make_video = functools.partial(vlad_checks.make_video, num_frames=NUM_FRAMES)


def numpy_nextvlad(x, weights, groups):
    """The module docstring's equation, then intra- and global L2 norms.

    x: (B, T, H, W, D); weights: `{name: array}` as `weights_of` gives.
    One loop per term; group g owns slice g of x~ and logits g·K..(g+1)·K.
    """

    def l2n(v):
        return v / np.sqrt(max(np.sum(v * v), 1e-12))

    batch, time, height, width, _ = x.shape
    centers = weights["centers"]
    num_clusters, group_width = centers.shape
    out = np.zeros((batch, num_clusters * group_width))
    for b in range(batch):
        vlad = np.zeros((num_clusters, group_width))
        for t in range(time):
            for i in range(height):
                for j in range(width):
                    desc = l2n(x[b, t, i, j].astype(np.float64))
                    expanded = desc @ weights["expansion_kernel"]
                    expanded += weights["expansion_bias"]
                    gate = expanded @ weights["attention_kernel"]
                    gate = 1.0 / (1.0 + np.exp(-gate - weights["attention_bias"]))
                    logits = expanded @ weights["assignment_kernel"]
                    logits += weights["assignment_bias"]
                    for g in range(groups):
                        group = expanded[g * group_width : (g + 1) * group_width]
                        z = logits[g * num_clusters : (g + 1) * num_clusters]
                        assign = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
                        for k in range(num_clusters):
                            vlad[k] += gate[g] * assign[k] * (group - centers[k])
        for k in range(num_clusters):
            vlad[k] = l2n(vlad[k])
        out[b] = l2n(vlad.reshape(-1))
    return out


def weights_of(layer):
    return {w.path.split("/")[-1]: numpy_of(w) for w in layer.weights}


def random_layer(depth=DEPTH, num_clusters=3, expansion=2, groups=2, seed=0):
    """A built layer with every weight random (centres too), as if trained."""
    layer = nextvlad.NeXtVLAD(
        num_clusters=num_clusters, expansion=expansion, groups=groups
    )
    layer.build((None, None, None, None, depth))
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign(rng.normal(scale=0.5, size=weight.shape))
    return layer


class NeXtVLADTest(testing.TestCase):
    @parameterized.parameters((2, 2, 3), (1, 4, 2), (3, 1, 4), (2, 8, 1))
    def test_matches_numpy_reference(self, expansion, groups, num_clusters):
        layer = random_layer(
            num_clusters=num_clusters, expansion=expansion, groups=groups
        )
        x = np.random.default_rng(1).normal(size=(2, 3, 2, 2, DEPTH))
        expected = numpy_nextvlad(x, weights_of(layer), groups)
        np.testing.assert_allclose(
            numpy_of(layer(x.astype(np.float32))), expected, atol=1e-5
        )

    def test_unit_norms(self):
        layer = random_layer()
        out = numpy_of(layer(make_video()))
        np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, atol=1e-5)
        # Each cluster block had unit norm before the global norm.
        blocks = out.reshape(2, 3, 4)
        np.testing.assert_allclose(
            np.linalg.norm(blocks, axis=-1), 1.0 / np.sqrt(3.0), atol=1e-5
        )

    def test_one_cluster_one_group_zero_centre_is_gated_sum(self):
        # K = 1, G = 1: the assignment is 1, so the descriptor is the
        # normalised attention-weighted sum of the expanded descriptors.
        layer = random_layer(num_clusters=1, expansion=3, groups=1)
        layer.centers.assign(np.zeros((1, 3 * DEPTH)))
        w = weights_of(layer)
        x = make_video()
        unit = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-6)
        expanded = unit @ w["expansion_kernel"] + w["expansion_bias"]
        gate = expanded @ w["attention_kernel"] + w["attention_bias"]
        gate = 1.0 / (1.0 + np.exp(-gate))
        total = np.sum(gate * expanded, axis=(1, 2, 3))
        expected = total / np.linalg.norm(total, axis=-1, keepdims=True)
        np.testing.assert_allclose(numpy_of(layer(x)), expected, atol=1e-5)

    def test_output_is_expansion_over_groups_of_netvlad(self):
        features = keras.KerasTensor((None, 25, 14, 14, 512))
        pooled = nextvlad.NeXtVLAD(num_clusters=64)(features)
        baseline = netvlad.NetVLAD(num_clusters=64)(features)
        self.assertEqual(tuple(pooled.shape), (None, 8192))
        self.assertEqual(baseline.shape[-1] // pooled.shape[-1], 4)

    def test_frame_order_does_not_matter(self):
        layer, video = random_layer(), make_video()
        shuffled = video[:, np.random.default_rng(3).permutation(NUM_FRAMES)]
        np.testing.assert_allclose(
            numpy_of(layer(shuffled)), numpy_of(layer(video)), **TOLERANCE
        )

    def test_zero_input_gives_finite_output_and_gradients(self):
        import tensorflow as tf

        layer = nextvlad.NeXtVLAD(num_clusters=3, groups=2)
        x = tf.zeros((1, 2, 2, 2, DEPTH))
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = layer(x)
            loss = tf.reduce_sum(out * tf.range(12, dtype=tf.float32))
        grads = tape.gradient(loss, [x] + layer.trainable_weights)
        self.assertTrue(np.all(np.isfinite(out.numpy())))
        for grad in grads:
            self.assertIsNotNone(grad)
            self.assertTrue(np.all(np.isfinite(grad.numpy())))

    def test_build_creates_seven_trainable_weights(self):
        layer = nextvlad.NeXtVLAD(num_clusters=5, expansion=2, groups=4)
        layer.build((None, None, None, None, 6))
        shapes = {
            w.path.split("/")[-1]: tuple(w.shape) for w in layer.trainable_weights
        }
        self.assertEqual(
            shapes,
            {
                "expansion_kernel": (6, 12),
                "expansion_bias": (12,),
                "attention_kernel": (12, 4),
                "attention_bias": (4,),
                "assignment_kernel": (12, 20),
                "assignment_bias": (20,),
                "centers": (5, 3),
            },
        )

    def test_weight_decay_is_slims_on_the_three_kernels(self):
        layer = nextvlad.NeXtVLAD(num_clusters=3, groups=2, weight_decay=5e-4)
        layer.build((None, None, None, None, DEPTH))
        kernels = [w for w in layer.weights if w.path.endswith("_kernel")]
        self.assertLen(kernels, 3)
        expected = sum(5e-4 * np.sum(numpy_of(k) ** 2) / 2 for k in kernels)
        self.assertAlmostEqual(float(sum(layer.losses)), expected, places=6)
        undecayed = nextvlad.NeXtVLAD(num_clusters=3, groups=2)
        undecayed.build((None, None, None, None, DEPTH))
        self.assertEqual(undecayed.losses, [])

    def test_symbolic_and_eager_calls(self):
        self.assert_symbolic_call(
            nextvlad.NeXtVLAD(num_clusters=4, expansion=2, groups=4),
            (None, 25, 7, 7, 8),
            (None, 16),
        )
        out = nextvlad.NeXtVLAD(num_clusters=4, groups=4)(np.ones((3, 2, 1, 1, 8)))
        self.assertEqual(tuple(out.shape), (3, 16))

    def test_serialization_round_trip(self):
        layer = nextvlad.NeXtVLAD(
            num_clusters=7,
            expansion=3,
            groups=6,
            centers_initializer="random_normal",
            weight_decay=1e-4,
            name="nextvlad",
            trainable=False,
        )
        self.assert_serialization_round_trip(layer)
        config = layer.get_config()
        self.assertEqual(
            [config[key] for key in ("num_clusters", "expansion", "groups")],
            [7, 3, 6],
        )
        self.assertEqual((config["weight_decay"], config["trainable"]), (1e-4, False))

    def test_keras_file_round_trip(self):
        x = keras.Input((2, 3, 3, DEPTH))
        pooled = nextvlad.NeXtVLAD(num_clusters=3, groups=2, weight_decay=1e-4)(x)
        model = keras.Model(x, pooled)
        model.layers[1].set_weights(random_layer().get_weights())
        inputs = np.random.default_rng(6).normal(size=(2, 2, 3, 3, DEPTH))
        self.assert_keras_file_round_trip(model, inputs)

    @parameterized.parameters(True, False)
    def test_fit_step(self, jit_compile):
        model = vlad_checks.fit_step(
            self, lambda: nextvlad.NeXtVLAD(num_clusters=3, groups=2), jit_compile
        )
        self.assertLen(model.layers[1].trainable_weights, 7)

    def test_computes_in_float32_under_mixed_precision(self):
        vlad_checks.assert_computes_in_float32(
            self, lambda: nextvlad.NeXtVLAD(num_clusters=3, groups=2)
        )


class NeXtVLADStreamingTest(testing.TestCase):
    @parameterized.parameters(1, 5, NUM_FRAMES)
    def test_streamed_equals_one_shot(self, chunk_frames):
        vlad_checks.assert_streamed_equals_one_shot(
            random_layer(), make_video(), chunk_frames
        )

    @parameterized.parameters(1, 5, NUM_FRAMES)
    def test_masked_padding_contributes_nothing(self, chunk_frames):
        # A zero padding frame would still count through the expansion's bias.
        vlad_checks.assert_masked_padding_contributes_nothing(
            random_layer(), make_video(), chunk_frames, num_real=9, zero_padding=True
        )

    def test_masked_frames_may_sit_anywhere(self):
        vlad_checks.assert_masked_frames_may_sit_anywhere(
            random_layer(), make_video(batch=1)
        )

    def test_all_masked_video_pools_to_zeros(self):
        vlad_checks.assert_all_masked_video_pools_to_zeros(random_layer(), make_video())

    def test_state_is_small_float32_and_not_modified(self):
        layer = random_layer(num_clusters=3, expansion=2, groups=2)
        state = layer.initial_state(5)
        self.assertEqual(
            {key: tuple(value.shape) for key, value in state.items()},
            {"s1": (5, 3, 4), "s0": (5, 3)},
        )
        layer.update(state, make_video(batch=5))
        for value in state.values():
            self.assertEqual(keras.backend.standardize_dtype(value.dtype), "float32")
            np.testing.assert_array_equal(numpy_of(value), 0.0)

    def test_state_saved_mid_video_resumes(self):
        vlad_checks.assert_state_saved_mid_video_resumes(
            self, random_layer, make_video(), split=6
        )

    def test_half_precision_chunks_accumulate_in_float32(self):
        layer, video = random_layer(), make_video().astype(np.float16)
        state = layer.update(layer.initial_state(2), video)
        self.assertEqual(keras.backend.standardize_dtype(state["s1"].dtype), "float32")
        np.testing.assert_allclose(
            numpy_of(layer.finalize(state)), numpy_of(layer(video)), **TOLERANCE
        )


class NeXtVLADErrorTest(testing.TestCase):
    @parameterized.product(
        argument=("num_clusters", "expansion", "groups"), value=(0, -3, 2.5, True)
    )
    def test_bad_positive_int(self, argument, value):
        with self.assertRaisesRegex(
            ValueError, rf"{argument} must be a positive int.*{argument}={value}"
        ):
            nextvlad.NeXtVLAD(**{argument: value})

    def test_negative_weight_decay(self):
        with self.assertRaisesRegex(ValueError, "weight_decay must be >= 0"):
            nextvlad.NeXtVLAD(weight_decay=-1e-4)

    def test_wrong_rank(self):
        with self.assertRaisesRegex(ValueError, r"rank 5.*\(2, 7, 7, 512\)"):
            nextvlad.NeXtVLAD().build((2, 7, 7, 512))

    def test_unknown_channels(self):
        with self.assertRaisesRegex(ValueError, "known channel dimension.*None"):
            nextvlad.NeXtVLAD().build((2, 25, 7, 7, None))

    def test_groups_do_not_divide_expanded_width(self):
        with self.assertRaisesRegex(
            ValueError,
            r"divisible by groups.*expansion=3, channels=5, groups=2",
        ):
            nextvlad.NeXtVLAD(expansion=3, groups=2).build((None, 2, 1, 1, 5))

    def test_unbuilt_layer(self):
        with self.assertRaisesRegex(ValueError, "initial_state needs a built layer"):
            nextvlad.NeXtVLAD().initial_state(1)

    def test_chunk_of_wrong_depth(self):
        layer = random_layer()
        with self.assertRaisesRegex(ValueError, r"4 channels.*\(2, 1, 1, 1, 5\)"):
            layer.update(layer.initial_state(2), np.zeros((2, 1, 1, 1, 5)))

    def test_mask_shape_mismatch(self):
        layer = random_layer()
        with self.assertRaisesRegex(
            ValueError, r"mask must have shape \(2, 3\).*mask.shape=\(2, 4\)"
        ):
            layer.update(
                layer.initial_state(2), make_video(num_frames=3), np.ones((2, 4))
            )

    def test_state_for_another_batch(self):
        layer = random_layer()
        with self.assertRaisesRegex(ValueError, r"state\['s1'\].*shape \(2, 3, 4\)"):
            layer.update(layer.initial_state(3), make_video(batch=2))

    def test_state_of_another_layer_size(self):
        state = random_layer(groups=2).initial_state(2)
        with self.assertRaisesRegex(ValueError, r"state\['s1'\].*\(None, 3, 8\)"):
            random_layer(groups=1).finalize(state)

    def test_state_with_wrong_keys(self):
        with self.assertRaisesRegex(ValueError, "state must be a dict with keys"):
            random_layer().finalize({"total": np.zeros((2, DEPTH))})


# Runs under KERAS_BACKEND=jax (TensorFlow unimportable) and tensorflow: the
# same weights give the same descriptor, a jit-compiled update / finalize
# streams it, and a jit-compiled fit step trains.
_BACKEND_SCRIPT = r"""
import json
import keras
import numpy as np
from avlad_tf.layers import nextvlad
from avlad_tf.layers import streaming
from tests.layers import nextvlad_test as nt

layer, video = nt.random_layer(), nt.make_video()
one_shot = np.asarray(keras.ops.convert_to_numpy(layer(video)))
result = {"backend": keras.backend.backend(), "one_shot": one_shot.tolist()}
if result["backend"] == "jax":
    import jax

    update, finalize = jax.jit(layer.update), jax.jit(layer.finalize)
    state = layer.initial_state(2)
    for chunk, mask in streaming.chunks_of(video, 4):
        state = update(state, chunk, mask)
    result["stream_error"] = float(np.max(np.abs(finalize(state) - one_shot)))
keras.utils.set_random_seed(0)
x = keras.Input(video.shape[1:])
pooled = nextvlad.NeXtVLAD(num_clusters=3, groups=2)(x)
model = keras.Model(x, keras.layers.Dense(5)(pooled))
model.compile(optimizer="adam", loss="mse", jit_compile=True)
loss = model.train_on_batch(video, np.zeros((2, 5), np.float32))
result["loss"] = float(np.asarray(loss).ravel()[0])
print(json.dumps(result))
"""


class NeXtVLADBackendTest(absltest.TestCase):
    @pytest.mark.slow
    def test_jax_matches_tensorflow_and_streams_under_jit(self):
        jax_out = testing.run_on_backend(_BACKEND_SCRIPT, "jax")
        tf_out = testing.run_on_backend(_BACKEND_SCRIPT, "tensorflow")
        self.assertEqual((jax_out["backend"], tf_out["backend"]), ("jax", "tensorflow"))
        np.testing.assert_allclose(jax_out["one_shot"], tf_out["one_shot"], atol=1e-5)
        self.assertLess(jax_out["stream_error"], 1e-5)
        self.assertTrue(np.isfinite(jax_out["loss"]))
        self.assertTrue(np.isfinite(tf_out["loss"]))


if __name__ == "__main__":
    absltest.main()
