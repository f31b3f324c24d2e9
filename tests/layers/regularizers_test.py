"""Tests for avlad_tf.layers.regularizers: slim's weight decay in Keras."""

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np

from avlad_tf.layers import regularizers


class WeightDecayTest(parameterized.TestCase):
    @parameterized.parameters(0, 0.0, None)
    def test_no_decay_no_regularizer(self, decay):
        self.assertIsNone(regularizers.weight_decay(decay))

    @parameterized.parameters(5e-4, 4e-5, 1.0)
    def test_penalty_is_slims_half_sum_of_squares(self, decay):
        weights = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
        regularizer = regularizers.weight_decay(decay)
        self.assertIsInstance(regularizer, keras.regularizers.L2)
        # slim's l2_regularizer(decay): decay * sum(w^2) / 2 (tf.nn.l2_loss).
        expected = decay * np.sum(weights.astype(np.float64) ** 2) / 2.0
        penalty = keras.ops.convert_to_numpy(regularizer(weights))
        np.testing.assert_allclose(penalty, expected, rtol=1e-5)

    def test_config_round_trip_keeps_the_halved_factor(self):
        regularizer = regularizers.weight_decay(5e-4)
        self.assertAlmostEqual(regularizer.get_config()["l2"], 2.5e-4)
        revived = keras.regularizers.deserialize(
            keras.regularizers.serialize(regularizer)
        )
        weights = np.ones((2, 2), np.float32)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(revived(weights)), 5e-4 * 4 / 2, rtol=1e-6
        )

    def test_a_layer_adds_the_penalty_as_a_loss(self):
        layer = keras.layers.Dense(
            2, kernel_regularizer=regularizers.weight_decay(0.1), use_bias=False
        )
        layer.build((None, 3))
        kernel = np.full((3, 2), 2.0, np.float32)
        layer.kernel.assign(kernel)
        layer(np.zeros((1, 3), np.float32))
        (loss,) = layer.losses
        # 0.1 * (6 weights * 4) / 2 = 1.2
        np.testing.assert_allclose(keras.ops.convert_to_numpy(loss), 1.2, rtol=1e-6)


if __name__ == "__main__":
    absltest.main()
