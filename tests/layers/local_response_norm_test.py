"""Local response normalisation against a loop-based NumPy transcription of
Krizhevsky et al.'s formula."""

from absl.testing import absltest
import keras
import numpy as np

from avlad_tf.layers import local_response_norm
from tests import testing


def numpy_lrn(x, *, depth=5, bias=2.0, alpha=1e-4, beta=0.5):
    """b_c = a_c / (k + α Σ_{|j - c| <= n/2} a_j²)^β, one loop per channel."""
    out = np.zeros_like(x, dtype=np.float64)
    channels = x.shape[-1]
    for c in range(channels):
        low, high = max(0, c - depth // 2), min(channels, c + depth // 2 + 1)
        energy = np.sum(np.square(x[..., low:high]), axis=-1)
        out[..., c] = x[..., c] / (bias + alpha * energy) ** beta
    return out


class LocalResponseNormalizationTest(testing.TestCase):
    def test_matches_numpy_reference(self):
        x = np.random.default_rng(0).normal(0, 30, (2, 3, 4, 9)).astype("float32")
        for settings in ({}, {"depth": 3, "bias": 1.0, "alpha": 1e-3, "beta": 0.75}):
            layer = local_response_norm.LocalResponseNormalization(**settings)
            np.testing.assert_allclose(
                keras.ops.convert_to_numpy(layer(x)),
                numpy_lrn(x, **settings),
                rtol=1e-5,
                err_msg=str(settings),
            )

    def test_checklist(self):
        layer = local_response_norm.LocalResponseNormalization(depth=3)
        self.assert_serialization_round_trip(layer)
        self.assert_symbolic_call(layer, (None, 2, 5, 5, 6), (None, 2, 5, 5, 6))
        self.assertEmpty(layer.weights)
        x = np.random.default_rng(1).normal(size=(2, 4, 4, 6)).astype("float32")
        self.run_fit_step(
            lambda: keras.Sequential(
                [
                    local_response_norm.LocalResponseNormalization(),
                    keras.layers.Flatten(),
                ]
            ),
            x,
            3,
        )
        keras.mixed_precision.set_global_policy("mixed_float16")
        half = local_response_norm.LocalResponseNormalization()(x)
        self.assertEqual(half.dtype, "float16")

    def test_bad_arguments_are_refused(self):
        with self.assertRaisesRegex(ValueError, "positive odd int"):
            local_response_norm.LocalResponseNormalization(depth=4)
        with self.assertRaisesRegex(ValueError, "bias must be > 0"):
            local_response_norm.LocalResponseNormalization(bias=0.0)


if __name__ == "__main__":
    absltest.main()
