"""Tests of STFN's temporal res-inception module against a NumPy version."""

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np
import pytest

from avlad_tf.layers import res_inception
from tests import testing

BN_EPSILON = 1e-3  # Keras' BatchNormalization default


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def conv1d_same(x, kernel):
    """'same' 1D convolution of (T, c) with (k, c, o), by loops over time;
    Keras pads (k - 1) // 2 steps before and k // 2 after."""
    k = kernel.shape[0]
    padded = np.pad(x, (((k - 1) // 2, k // 2), (0, 0)))
    return np.stack(
        [np.einsum("kc,kco->o", padded[t : t + k], kernel) for t in range(len(x))]
    )


def numpy_module(x, w, shortcut=None):
    """The module on one sequence (T, D); `w` from `module_weights`."""
    branches = [conv1d_same(x, kernel) for kernel in w["kernels"]]
    y = np.concatenate(branches, axis=-1)  # (T, n·F)
    y = (y - w["mean"]) / np.sqrt(w["variance"] + BN_EPSILON) * w["gamma"] + w["beta"]
    y = np.maximum(y, 0.0) @ w["projection"] + w["bias"]
    return np.maximum((x if shortcut is None else shortcut) + y, 0.0)


def module_weights(module):
    """A built module's weights by role, as NumPy arrays."""
    bn = module.batch_norm
    return {
        "kernels": [numpy(b.kernel) for b in module.branches],
        "gamma": numpy(bn.gamma),
        "beta": numpy(bn.beta),
        "mean": numpy(bn.moving_mean),
        "variance": numpy(bn.moving_variance),
        "projection": numpy(module.projection.kernel),
        "bias": numpy(module.projection.bias),
    }


def randomize(layer, seed=0):
    """Non-trivial weights everywhere: biases, BN statistics (variances > 0)."""
    rng = np.random.default_rng(seed)
    for w in layer.weights:
        value = rng.normal(0.0, 0.5, w.shape)
        if "variance" in w.path:
            value = rng.uniform(0.5, 2.0, w.shape)
        w.assign(value.astype("float32"))
    return layer


def built_module(depth=8, **kwargs):
    module = res_inception.TemporalResInception(**kwargs)
    module.build((None, None, depth))
    return randomize(module)


class TemporalResInceptionTest(testing.TestCase):
    @parameterized.parameters(None, 3)
    def test_matches_numpy_reference(self, filters):
        module = built_module(filters=filters)
        x = np.random.default_rng(1).normal(size=(2, 6, 8)).astype("float32")
        got = numpy(module(x, training=False))
        w = module_weights(module)
        expected = np.stack([numpy_module(s, w) for s in x])
        np.testing.assert_allclose(got, expected, atol=1e-5)

    def test_shortcut_replaces_the_inputs_on_the_residual(self):
        module = built_module()
        rng = np.random.default_rng(2)
        x, s = (rng.normal(size=(2, 5, 8)).astype("float32") for _ in "xs")
        got = numpy(module(x, shortcut=s, training=False))
        w = module_weights(module)
        expected = np.stack([numpy_module(a, w, b) for a, b in zip(x, s)])
        np.testing.assert_allclose(got, expected, atol=1e-5)

    def test_even_kernels_pad_one_more_step_after(self):
        # An impulse at t = 3 reaches the outputs whose window covers it:
        # t..t+1 for k = 2, t-1..t+2 for k = 4, t-2..t+2 for k = 5.
        module = res_inception.TemporalResInception(filters=1)
        module.build((None, None, 1))
        impulse = np.zeros((1, 7, 1), "float32")
        impulse[0, 3, 0] = 1.0
        reached = {}
        for k, branch in zip(module.kernel_sizes, module.branches):
            branch.kernel.assign(np.ones((k, 1, 1), "float32"))
            reached[k] = np.flatnonzero(numpy(branch(impulse))[0, :, 0]).tolist()
        self.assertEqual(
            reached, {2: [2, 3], 3: [2, 3, 4], 4: [1, 2, 3, 4], 5: [1, 2, 3, 4, 5]}
        )

    def test_width_rule(self):
        # F = D // 4 per branch: the concatenation is as wide as the input.
        for depth, filters, width in ((512, None, 128), (16, None, 4), (3, None, 1)):
            module = built_module(depth, filters=filters)
            self.assertEqual(
                [tuple(b.kernel.shape) for b in module.branches],
                [(k, depth, width) for k in (2, 3, 4, 5)],
            )
            self.assertEqual(tuple(module.projection.kernel.shape), (4 * width, depth))

    def test_build_creates_the_weights(self):
        module = built_module(filters=3)
        # 4 branch kernels (no bias), BN gamma / beta, projection kernel / bias.
        self.assertLen(module.trainable_weights, 8)
        self.assertLen(module.non_trainable_weights, 2)  # BN statistics
        self.assertTrue(all(b.bias is None for b in module.branches))

    def test_batch_statistics_only_in_training(self):
        module = built_module()
        x = np.random.default_rng(3).normal(size=(4, 5, 8)).astype("float32")
        evaluated = numpy(module(x, training=False))
        np.testing.assert_array_equal(evaluated, numpy(module(x)))
        mean = numpy(module.batch_norm.moving_mean)
        self.assertFalse(np.allclose(numpy(module(x, training=True)), evaluated))
        self.assertFalse(np.allclose(numpy(module.batch_norm.moving_mean), mean))

    def test_weight_decay_is_slims_on_each_kernel(self):
        module = built_module(weight_decay=5e-4)
        module(np.ones((1, 3, 8), "float32"))
        kernels = [numpy(b.kernel) for b in module.branches]
        kernels.append(numpy(module.projection.kernel))
        expected = sum(5e-4 * np.sum(k**2) / 2 for k in kernels)
        self.assertAlmostEqual(float(sum(module.losses)), expected, places=5)
        self.assertEqual(built_module().losses, [])

    def test_symbolic_and_eager_calls(self):
        self.assert_symbolic_call(
            res_inception.TemporalResInception(), (None, None, 8), (None, None, 8)
        )
        out = res_inception.TemporalResInception()(np.ones((3, 1, 8), "float32"))
        self.assertEqual(tuple(out.shape), (3, 1, 8))

    def test_serialization_round_trip(self):
        layer = res_inception.TemporalResInception(
            kernel_sizes=(1, 3), filters=5, weight_decay=1e-4, name="m", trainable=False
        )
        self.assert_serialization_round_trip(layer)
        self.assertEqual(layer.get_config()["kernel_sizes"], [1, 3])

    def test_keras_file_round_trip(self):
        x = keras.Input((5, 8))
        model = keras.Model(x, res_inception.TemporalResInception()(x))
        randomize(model)
        inputs = np.random.default_rng(4).normal(size=(2, 5, 8))
        self.assert_keras_file_round_trip(model, inputs)

    @parameterized.parameters(True, False)
    @pytest.mark.slow
    def test_fit_step(self, jit_compile):
        inputs = np.random.default_rng(5).normal(size=(2, 5, 8)).astype("float32")
        x = keras.Input((None, 8))
        module = res_inception.TemporalResInception()
        model = keras.Model(x, keras.layers.Dense(3)(keras.ops.mean(module(x), 1)))
        model.compile(optimizer="adam", loss="mse", jit_compile=jit_compile)
        before = [numpy(w) for w in module.trainable_weights]
        history = model.fit(inputs, np.ones((2, 3)), batch_size=2, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]))
        moved = [
            not np.array_equal(numpy(w), b)
            for w, b in zip(module.trainable_weights, before)
        ]
        self.assertTrue(all(moved))

    def test_mixed_precision(self):
        keras.mixed_precision.set_global_policy("mixed_float16")
        module = res_inception.TemporalResInception()
        out = module(np.random.default_rng(6).normal(size=(2, 5, 8)))
        self.assertEqual((module.compute_dtype, out.dtype), ("float16", "float16"))
        self.assertEqual(module.branches[0].kernel.dtype, "float32")
        self.assertTrue(np.all(np.isfinite(numpy(out))))


class ResInceptionPoolingTest(testing.TestCase):
    def test_matches_numpy_reference(self):
        layer = res_inception.ResInceptionPooling()
        layer.build((None, None, 3, 2, 8))
        randomize(layer)
        x = np.random.default_rng(7).normal(size=(2, 5, 3, 2, 8)).astype("float32")
        w = module_weights(layer.module)
        # Rectified spatial means per frame, the module, the mean over time.
        segments = np.maximum(x, 0.0).mean(axis=(2, 3))  # (B, T, D)
        expected = np.stack([numpy_module(s, w).mean(0) for s in segments])
        np.testing.assert_allclose(numpy(layer(x)), expected, atol=1e-5)

    def test_symbolic_and_eager_calls(self):
        self.assert_symbolic_call(
            res_inception.ResInceptionPooling(), (None, None, 7, 7, 16), (None, 16)
        )
        out = res_inception.ResInceptionPooling()(np.ones((2, 7, 1, 1, 16)))
        self.assertEqual(tuple(out.shape), (2, 16))

    def test_serialization_round_trip(self):
        layer = res_inception.ResInceptionPooling(
            kernel_sizes=(3, 5), filters=2, weight_decay=1e-4, name="p"
        )
        self.assert_serialization_round_trip(layer)
        config = layer.get_config()
        self.assertEqual(
            (config["kernel_sizes"], config["filters"], config["weight_decay"]),
            ([3, 5], 2, 1e-4),
        )

    def test_keras_file_round_trip(self):
        x = keras.Input((4, 3, 3, 8))
        model = keras.Model(x, res_inception.ResInceptionPooling()(x))
        randomize(model)
        inputs = np.random.default_rng(8).normal(size=(2, 4, 3, 3, 8))
        self.assert_keras_file_round_trip(model, inputs)

    @parameterized.parameters(True, False)
    @pytest.mark.slow
    def test_fit_step(self, jit_compile):
        inputs = np.random.default_rng(9).normal(size=(2, 4, 3, 3, 8))
        model = self.run_fit_step(
            res_inception.ResInceptionPooling, inputs.astype("float32"), 5, jit_compile
        )
        self.assertLen(model.layers[1].trainable_weights, 8)

    @pytest.mark.slow
    def test_mixed_precision(self):
        keras.mixed_precision.set_global_policy("mixed_float16")
        layer = res_inception.ResInceptionPooling()
        # float16's max is 65504: a float16 sum of this over the 8 x 8
        # positions of a frame overflows.
        x = keras.ops.full((1, 6, 8, 8, 8), 1100.0, dtype="float16")
        out = layer(x)
        self.assertEqual(out.dtype, "float16")
        self.assertTrue(np.all(np.isfinite(numpy(out))))
        inputs = np.random.default_rng(10).normal(size=(2, 3, 3, 3, 8))
        self.run_fit_step(
            res_inception.ResInceptionPooling, inputs.astype("float32"), 5
        )


class ResInceptionErrorTest(testing.TestCase):
    @parameterized.parameters(
        {"sizes": ()},
        {"sizes": (2, 0)},
        {"sizes": (3.0,)},
        {"sizes": 3},
        {"sizes": (True,)},
    )
    def test_bad_kernel_sizes(self, sizes):
        with self.assertRaisesRegex(ValueError, "kernel_sizes must be a non-empty"):
            res_inception.TemporalResInception(kernel_sizes=sizes)

    @parameterized.parameters(0, 2.5, True)
    def test_bad_filters(self, filters):
        with self.assertRaisesRegex(ValueError, "filters must be a positive int"):
            res_inception.ResInceptionPooling(filters=filters)

    def test_negative_weight_decay(self):
        with self.assertRaisesRegex(ValueError, "weight_decay must be >= 0"):
            res_inception.TemporalResInception(weight_decay=-1.0)

    def test_module_needs_a_sequence_with_known_channels(self):
        for shape in ((2, 5), (2, 5, 3, 8), (2, 5, None)):
            with self.assertRaisesRegex(ValueError, "expects per-segment features"):
                res_inception.TemporalResInception().build(shape)

    def test_shortcut_of_other_channels(self):
        with self.assertRaisesRegex(ValueError, "shortcut must have the inputs'"):
            res_inception.TemporalResInception().build((2, 5, 8), (2, 5, 4))

    def test_pooling_wrong_rank(self):
        with self.assertRaisesRegex(ValueError, r"rank 5.*\(2, 7, 7, 512\)"):
            res_inception.ResInceptionPooling().build((2, 7, 7, 512))

    def test_pooling_unknown_channels(self):
        with self.assertRaisesRegex(ValueError, "known channel dimension"):
            res_inception.ResInceptionPooling().build((2, 7, 7, 7, None))


if __name__ == "__main__":
    absltest.main()
