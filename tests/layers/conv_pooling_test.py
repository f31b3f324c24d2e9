"""Tests of conv pooling (Ng et al. 2015) against a loop-based NumPy version."""

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np
import pytest

from avlad_tf.layers import conv_pooling
from tests import testing


def numpy_conv_pooling(x, dense_weights, pool_size):
    """Max over frames, ReLU, 'same' max pool, row-major flatten, ReLU FCs.

    x: (B, T, H, W, D); dense_weights: [(kernel, bias), ...].
    """
    batch, time, height, width, depth = x.shape
    out = []
    for b in range(batch):
        pooled = x[b, 0].astype(np.float64)
        for t in range(1, time):
            pooled = np.maximum(pooled, x[b, t])
        pooled = np.maximum(pooled, 0.0)
        rows = -(-height // pool_size)
        cols = -(-width // pool_size)
        spatial = np.zeros((rows, cols, depth))
        for i in range(rows):
            for j in range(cols):
                window = pooled[
                    i * pool_size : (i + 1) * pool_size,
                    j * pool_size : (j + 1) * pool_size,
                ]
                spatial[i, j] = window.max(axis=(0, 1))
        v = spatial.reshape(-1)
        for kernel, bias in dense_weights:
            v = np.maximum(v @ kernel + bias, 0.0)
        out.append(v)
    return np.stack(out)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


class ConvPoolingTest(testing.TestCase):
    @parameterized.parameters(1, 2)
    def test_matches_numpy_reference(self, pool_size):
        # 4x4 (even) and 3x3 ('same' padding keeps the last row) maps.
        for height in (4, 3):
            x = np.random.default_rng(0).normal(size=(2, 3, height, height, 4))
            layer = conv_pooling.ConvPooling(
                units=(6, 5), dropout_rate=0.0, spatial_pool_size=pool_size
            )
            out = numpy(layer(x.astype(np.float32)))
            weights = [(numpy(d.kernel), numpy(d.bias)) for d in layer.fully_connected]
            np.testing.assert_allclose(
                out, numpy_conv_pooling(x, weights, pool_size), atol=1e-5
            )

    def test_frame_order_does_not_matter(self):
        x = np.random.default_rng(1).normal(size=(2, 5, 2, 2, 4)).astype("float32")
        layer = conv_pooling.ConvPooling(units=(8,))
        np.testing.assert_allclose(numpy(layer(x)), numpy(layer(x[:, ::-1])), atol=1e-6)

    def test_fc7_map_passes_the_spatial_pool(self):
        layer = conv_pooling.ConvPooling(units=(3,))
        layer.build((None, None, 1, 1, 10))
        self.assertEqual(tuple(layer.fully_connected[0].kernel.shape), (10, 3))

    def test_vgg16_conv5_3_feeds_an_fc6_shaped_layer(self):
        # 14x14x512 -> pool5 7x7x512 = 25088 inputs, fc6's shape.
        layer = conv_pooling.ConvPooling()
        layer.build((None, None, 14, 14, 512))
        shapes = [tuple(w.shape) for w in layer.trainable_weights]
        self.assertEqual(shapes, [(25088, 4096), (4096,), (4096, 4096), (4096,)])

    def test_dropout_only_in_training(self):
        x = np.random.default_rng(2).normal(size=(4, 2, 2, 2, 4)).astype("float32")
        layer = conv_pooling.ConvPooling(units=(64,), dropout_rate=0.5)
        evaluated = numpy(layer(x, training=False))
        np.testing.assert_array_equal(evaluated, numpy(layer(x)))
        self.assertFalse(np.allclose(numpy(layer(x, training=True)), evaluated))

    def test_symbolic_and_eager_calls(self):
        self.assert_symbolic_call(
            conv_pooling.ConvPooling(units=(8, 6)), (None, None, 7, 7, 4), (None, 6)
        )
        out = conv_pooling.ConvPooling(units=(8, 6))(np.ones((3, 2, 2, 2, 4)))
        self.assertEqual(tuple(out.shape), (3, 6))

    def test_serialization_round_trip(self):
        layer = conv_pooling.ConvPooling(
            units=(16, 8),
            dropout_rate=0.25,
            spatial_pool_size=3,
            name="conv_pool",
            trainable=False,
        )
        self.assert_serialization_round_trip(layer)
        config = layer.get_config()
        self.assertEqual(
            (config["units"], config["dropout_rate"], config["spatial_pool_size"]),
            ([16, 8], 0.25, 3),
        )

    def test_weight_decay_is_slims_on_each_fc_kernel(self):
        layer = conv_pooling.ConvPooling(units=(8, 4), weight_decay=5e-4)
        layer.build((None, 2, 3, 3, 4))
        self.assertEqual(layer.get_config()["weight_decay"], 5e-4)
        kernels = [d.kernel for d in layer.fully_connected]
        # slim: decay · Σw² / 2 per kernel; the biases are not decayed.
        expected = sum(5e-4 * np.sum(numpy(k) ** 2) / 2 for k in kernels)
        self.assertAlmostEqual(float(sum(layer.losses)), expected, places=6)
        undecayed = conv_pooling.ConvPooling(units=(8, 4))
        undecayed.build((None, 2, 3, 3, 4))
        self.assertEqual(undecayed.losses, [])

    def test_keras_file_round_trip(self):
        x = keras.Input((2, 3, 3, 4))
        model = keras.Model(x, conv_pooling.ConvPooling(units=(8, 4))(x))
        inputs = np.random.default_rng(3).normal(size=(2, 2, 3, 3, 4))
        self.assert_keras_file_round_trip(model, inputs)

    @parameterized.parameters(True, False)
    def test_fit_step(self, jit_compile):
        inputs = np.random.default_rng(4).normal(size=(2, 3, 4, 4, 4))
        model = self.run_fit_step(
            lambda: conv_pooling.ConvPooling(units=(8, 8)),
            inputs.astype(np.float32),
            5,
            jit_compile,
        )
        self.assertLen(model.layers[1].trainable_weights, 4)

    @pytest.mark.slow
    def test_mixed_precision(self):
        keras.mixed_precision.set_global_policy("mixed_float16")
        layer = conv_pooling.ConvPooling(units=(8,))
        out = layer(keras.ops.ones((1, 2, 2, 2, 4), dtype="float16"))
        self.assertEqual(layer.compute_dtype, "float16")
        self.assertEqual(layer.fully_connected[0].kernel.dtype, "float32")
        self.assertTrue(np.all(np.isfinite(numpy(out))))
        inputs = np.random.default_rng(5).normal(size=(2, 2, 3, 3, 4))
        self.run_fit_step(
            lambda: conv_pooling.ConvPooling(units=(8,)), inputs.astype(np.float32), 5
        )


class ConvPoolingErrorTest(testing.TestCase):
    @parameterized.parameters(
        *(dict(units=u) for u in ((), [], (0,), (8, -1), (True,), 4096, (2.5,)))
    )
    def test_bad_units(self, units):
        with self.assertRaisesRegex(ValueError, "units must be a non-empty sequence"):
            conv_pooling.ConvPooling(units=units)

    @parameterized.parameters(1.0, -0.1)
    def test_bad_dropout_rate(self, rate):
        with self.assertRaisesRegex(ValueError, r"dropout_rate must be in \[0, 1\)"):
            conv_pooling.ConvPooling(dropout_rate=rate)

    @parameterized.parameters(0, 1.5, True)
    def test_bad_spatial_pool_size(self, size):
        with self.assertRaisesRegex(ValueError, "spatial_pool_size must be a positive"):
            conv_pooling.ConvPooling(spatial_pool_size=size)

    def test_negative_weight_decay(self):
        with self.assertRaisesRegex(ValueError, "weight_decay must be >= 0"):
            conv_pooling.ConvPooling(weight_decay=-1e-4)

    def test_wrong_rank(self):
        with self.assertRaisesRegex(ValueError, r"rank 5.*\(2, 7, 7, 512\)"):
            conv_pooling.ConvPooling().build((2, 7, 7, 512))

    def test_unknown_channels(self):
        with self.assertRaisesRegex(ValueError, "known channel dimension"):
            conv_pooling.ConvPooling().build((2, 25, 7, 7, None))

    def test_set_fully_connected_weights_sets_each_layer(self):
        layer = conv_pooling.ConvPooling(units=(6, 5), dropout_rate=0.0)
        features = np.random.default_rng(0).normal(size=(2, 3, 4, 4, 2))
        layer(features)
        rng = np.random.default_rng(1)
        weights = [
            [rng.normal(size=(2 * 2 * 2, 6)), rng.normal(size=6)],
            [rng.normal(size=(6, 5)), rng.normal(size=5)],
        ]
        layer.set_fully_connected_weights(weights)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(layer(features.astype("float32"))),
            numpy_conv_pooling(features, weights, 2),
            rtol=1e-4,
            atol=1e-4,
        )

    def test_set_fully_connected_weights_refuses_other_shapes(self):
        layer = conv_pooling.ConvPooling(units=(6, 5))
        with self.assertRaisesRegex(ValueError, "build the layer before"):
            layer.set_fully_connected_weights([])
        layer.build((None, 3, 4, 4, 2))
        with self.assertRaisesRegex(ValueError, "2 fully connected layers; .* for 1"):
            layer.set_fully_connected_weights([[np.zeros((8, 6)), np.zeros(6)]])
        with self.assertRaisesRegex(
            ValueError, r"fc1 has a \(8, 6\) kernel; .*\(9, 6\)"
        ):
            layer.set_fully_connected_weights(
                [[np.zeros((9, 6)), np.zeros(6)], [np.zeros((6, 5)), np.zeros(5)]]
            )

    def test_unknown_spatial_size(self):
        with self.assertRaisesRegex(ValueError, "known height and width"):
            conv_pooling.ConvPooling().build((2, 25, None, None, 8))


if __name__ == "__main__":
    absltest.main()
