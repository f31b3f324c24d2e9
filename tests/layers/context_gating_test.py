"""Tests of context gating (LOUPE) against a loop-based NumPy transcription."""

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np
import pytest

from avlad_tf.layers import context_gating
from tests import testing


def numpy_context_gating(x, kernel, bias):
    """y_n = sigmoid(sum_m x_m W_mn + b_n) x_n, one loop per term."""
    batch, features = x.shape
    out = np.zeros((batch, features))
    for b in range(batch):
        for n in range(features):
            z = bias[n] + sum(x[b, m] * kernel[m, n] for m in range(features))
            out[b, n] = x[b, n] / (1.0 + np.exp(-z))
    return out


def numpy_of(x):
    return keras.ops.convert_to_numpy(x)


def random_layer(features=6, seed=0, **kwargs):
    """A built layer with a random kernel and bias, as if trained."""
    layer = context_gating.ContextGating(**kwargs)
    layer.build((None, features))
    rng = np.random.default_rng(seed)
    layer.kernel.assign(rng.normal(size=(features, features)))
    layer.bias.assign(rng.normal(size=(features,)))
    return layer


class ContextGatingTest(testing.TestCase):
    def test_matches_numpy_reference(self):
        layer = random_layer()
        x = np.random.default_rng(1).normal(size=(3, 6))
        expected = numpy_context_gating(x, numpy_of(layer.kernel), numpy_of(layer.bias))
        np.testing.assert_allclose(
            numpy_of(layer(x.astype(np.float32))), expected, atol=1e-5
        )

    def test_gates_shrink_features_and_keep_signs(self):
        x = np.random.default_rng(2).normal(size=(4, 6)).astype(np.float32)
        y = numpy_of(random_layer()(x))
        np.testing.assert_array_equal(np.sign(y), np.sign(x))
        self.assertTrue(np.all(np.abs(y) < np.abs(x)))

    def test_zero_weights_halve_the_input(self):
        layer = context_gating.ContextGating(kernel_initializer="zeros")
        x = np.random.default_rng(3).normal(size=(2, 5)).astype(np.float32)
        np.testing.assert_allclose(numpy_of(layer(x)), x / 2.0, atol=1e-7)

    def test_build_creates_kernel_and_bias(self):
        layer = random_layer(features=7)
        shapes = {
            w.path.split("/")[-1]: tuple(w.shape) for w in layer.trainable_weights
        }
        self.assertEqual(shapes, {"kernel": (7, 7), "bias": (7,)})

    def test_weight_decay_is_slims_on_the_kernel(self):
        layer = random_layer(weight_decay=5e-4)
        expected = 5e-4 * np.sum(numpy_of(layer.kernel) ** 2) / 2
        self.assertAlmostEqual(float(sum(layer.losses)), expected, places=5)
        self.assertEqual(random_layer().losses, [])

    def test_symbolic_and_eager_calls(self):
        self.assert_symbolic_call(
            context_gating.ContextGating(), (None, 16), (None, 16)
        )
        out = context_gating.ContextGating()(np.ones((3, 8)))
        self.assertEqual(tuple(out.shape), (3, 8))

    def test_serialization_round_trip(self):
        layer = context_gating.ContextGating(
            kernel_initializer="he_normal",
            weight_decay=1e-4,
            name="gating",
            trainable=False,
        )
        self.assert_serialization_round_trip(layer)
        config = layer.get_config()
        self.assertEqual((config["weight_decay"], config["trainable"]), (1e-4, False))

    def test_keras_file_round_trip(self):
        x = keras.Input((6,))
        model = keras.Model(x, context_gating.ContextGating(weight_decay=1e-4)(x))
        model.layers[1].set_weights(random_layer().get_weights())
        inputs = np.random.default_rng(4).normal(size=(2, 6))
        self.assert_keras_file_round_trip(model, inputs)

    @parameterized.parameters(True, False)
    def test_fit_step(self, jit_compile):
        inputs = np.random.default_rng(5).normal(size=(2, 6)).astype(np.float32)
        model = self.run_fit_step(context_gating.ContextGating, inputs, 3, jit_compile)
        self.assertLen(model.layers[1].trainable_weights, 2)

    def test_computes_in_float32_under_mixed_precision(self):
        keras.mixed_precision.set_global_policy("mixed_float16")
        layer = context_gating.ContextGating()
        out = layer(keras.ops.ones((2, 6), dtype="float16"))
        self.assertEqual(layer.compute_dtype, "float32")
        self.assertEqual(out.dtype, "float32")
        inputs = np.random.default_rng(6).normal(size=(2, 6)).astype(np.float32)
        self.run_fit_step(context_gating.ContextGating, inputs, 3)

    def test_explicit_dtype_policy_is_kept(self):
        layer = context_gating.ContextGating(dtype="mixed_float16")
        out = layer(keras.ops.ones((2, 6)))
        self.assertEqual(
            (layer.compute_dtype, layer.variable_dtype), ("float16", "float32")
        )
        self.assertEqual(out.dtype, "float16")
        self.assertEqual(layer.get_config()["dtype"]["config"]["name"], "mixed_float16")


class ContextGatingErrorTest(testing.TestCase):
    def test_negative_weight_decay(self):
        with self.assertRaisesRegex(ValueError, "weight_decay must be >= 0.*-0.1"):
            context_gating.ContextGating(weight_decay=-0.1)

    def test_wrong_rank(self):
        with self.assertRaisesRegex(ValueError, r"rank 2.*\(2, 3, 4\)"):
            context_gating.ContextGating().build((2, 3, 4))

    def test_unknown_features(self):
        with self.assertRaisesRegex(ValueError, r"known feature dimension.*None"):
            context_gating.ContextGating().build((2, None))


# Runs under KERAS_BACKEND=jax (TensorFlow unimportable) and tensorflow: the
# same weights give the same output, and a jit-compiled fit step trains.
_BACKEND_SCRIPT = r"""
import json
import keras
import numpy as np
from avlad_tf.layers import context_gating
from tests.layers import context_gating_test as ct

x = np.random.default_rng(1).normal(size=(3, 6)).astype("float32")
result = {
    "backend": keras.backend.backend(),
    "output": keras.ops.convert_to_numpy(ct.random_layer()(x)).tolist(),
}
keras.utils.set_random_seed(0)
inputs = keras.Input((6,))
model = keras.Model(inputs, context_gating.ContextGating()(inputs))
model.compile(optimizer="adam", loss="mse", jit_compile=True)
loss = model.train_on_batch(x, np.zeros((3, 6), np.float32))
result["loss"] = float(np.asarray(loss).ravel()[0])
print(json.dumps(result))
"""


class ContextGatingBackendTest(absltest.TestCase):
    @pytest.mark.slow
    def test_jax_matches_tensorflow(self):
        jax_out = testing.run_on_backend(_BACKEND_SCRIPT, "jax")
        tf_out = testing.run_on_backend(_BACKEND_SCRIPT, "tensorflow")
        self.assertEqual((jax_out["backend"], tf_out["backend"]), ("jax", "tensorflow"))
        np.testing.assert_allclose(jax_out["output"], tf_out["output"], atol=1e-6)
        self.assertTrue(np.isfinite(jax_out["loss"]))
        self.assertTrue(np.isfinite(tf_out["loss"]))


if __name__ == "__main__":
    absltest.main()
