"""Tests of the average / max pooling baselines over time x space."""

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np

from avlad_tf.layers import pooling
from tests import testing

LAYERS = (
    (pooling.SpatioTemporalAveragePooling, np.mean),
    (pooling.SpatioTemporalMaxPooling, np.max),
)


class PoolingTest(testing.TestCase):
    @parameterized.parameters(*LAYERS)
    def test_matches_numpy(self, layer_cls, reduce_fn):
        x = np.random.default_rng(0).normal(size=(2, 3, 2, 2, 4))
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(layer_cls()(x)),
            reduce_fn(x, axis=(1, 2, 3)),
            atol=1e-6,
        )

    @parameterized.parameters(*LAYERS)
    def test_checklist(self, layer_cls, _):
        self.assert_serialization_round_trip(layer_cls(name="pool"))
        self.assert_symbolic_call(layer_cls(), (None, 25, 7, 7, 8), (None, 8))
        layer = layer_cls()
        layer.build((None, 2, 3, 3, 4))
        self.assertEqual(layer.count_params(), 0)
        inputs = np.random.default_rng(1).normal(size=(2, 2, 3, 3, 4))
        self.run_fit_step(layer_cls, inputs.astype(np.float32), 2)

    @parameterized.parameters(*LAYERS)
    def test_wrong_rank(self, layer_cls, _):
        with self.assertRaisesRegex(ValueError, r"rank 5.*\(2, 512\)"):
            layer_cls().build((2, 512))


if __name__ == "__main__":
    absltest.main()
