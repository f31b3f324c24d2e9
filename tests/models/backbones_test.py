"""Tests of the per-frame backbones: layout, pre-ReLU endpoints, weights."""

import warnings

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np

from avlad_tf.models import backbones
from tests import testing


def _frames(channels, size=32, count=2):
    return (
        np.random.default_rng(0)
        .normal(size=(count, size, size, channels))
        .astype("float32")
    )


def _keras_like_tiny_source(image_size=32):
    """A keras.applications-style tiny net: Dense fc1 / fc2 on the flattened
    pool5 map, with the tiny backbone's conv names."""
    x = inputs = keras.Input((image_size, image_size, 3))
    for name, filters in (
        ("block1_conv1", 8),
        ("block4_conv3", 16),
        ("block5_conv3", 16),
    ):
        x = keras.layers.Conv2D(
            filters, 3, padding="same", activation="relu", name=name
        )(x)
        x = keras.layers.MaxPooling2D(2, 2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(16, activation="relu", name="fc1")(x)
    return keras.Model(inputs, keras.layers.Dense(16, name="fc2")(x))


class BackbonesTest(testing.TestCase):
    @parameterized.parameters(
        ("conv5_3", (2, 2, 512), "block5_conv3"),
        ("conv4_3", (4, 4, 512), "block4_conv3"),
    )
    def test_vgg16_endpoints_are_pre_relu(self, endpoint, shape, last):
        model = backbones.build_vgg16(image_size=32, endpoint=endpoint)
        self.assertEqual(model.layers[-1].name, last)
        self.assertEqual(tuple(model.output.shape[1:]), shape)
        features = keras.ops.convert_to_numpy(model(_frames(3)))
        self.assertLess(features.min(), 0.0)  # post-ReLU would be >= 0

    def test_vgg16_layer_names_and_shapes_match_keras_applications(self):
        ours = backbones.build_vgg16(image_size=32)
        reference = keras.applications.VGG16(
            weights=None, include_top=False, input_shape=(32, 32, 3)
        )
        expected = {
            l.name: [tuple(w.shape) for w in l.weights]
            for l in reference.layers
            if l.weights
        }
        got = {
            l.name: [tuple(w.shape) for w in l.weights]
            for l in ours.layers
            if l.weights
        }
        self.assertEqual(got, expected)

    def test_fc7_needs_a_7x7_pool5_map(self):
        with self.assertRaisesRegex(ValueError, "fc7 endpoint needs"):
            backbones.build_vgg16(image_size=64, endpoint="fc7")

    @parameterized.parameters(
        ("conv5_3", (8, 8, 16)), ("conv4_3", (16, 16, 16)), ("fc7", (1, 1, 16))
    )
    def test_tiny_endpoints(self, endpoint, shape):
        model = backbones.build_tiny(input_channels=4, image_size=32, endpoint=endpoint)
        self.assertEqual(tuple(model.output.shape[1:]), shape)
        self.assertLess(model.count_params(), 10000)
        features = keras.ops.convert_to_numpy(model(_frames(4)))
        self.assertLess(features.min(), 0.0)

    def test_flow_kernel_from_rgb_matches_numpy(self):
        kernel = np.random.default_rng(1).normal(size=(3, 3, 3, 5))
        converted = backbones.flow_kernel_from_rgb(kernel, 20)
        self.assertEqual(converted.shape, (3, 3, 20, 5))
        for c in range(20):
            np.testing.assert_allclose(
                converted[:, :, c, :],
                (kernel[:, :, 0] + kernel[:, :, 1] + kernel[:, :, 2]) / 3,
                rtol=1e-6,
            )

    def test_weights_file_loads_by_name_and_converts_flow_conv1(self):
        source = keras.applications.VGG16(
            weights=None, include_top=False, input_shape=(32, 32, 3)
        )
        path = self.create_tempfile("vgg.weights.h5").full_path
        source.save_weights(path)
        flow = backbones.build_vgg16(input_channels=20, image_size=32, weights=path)
        conv1 = source.get_layer("block1_conv1").get_weights()
        got = flow.get_layer("block1_conv1").get_weights()
        np.testing.assert_allclose(
            got[0], np.repeat(conv1[0].mean(axis=2, keepdims=True), 20, 2)
        )
        np.testing.assert_array_equal(got[1], conv1[1])
        for name in ("block2_conv1", "block5_conv3"):
            for a, b in zip(
                flow.get_layer(name).get_weights(), source.get_layer(name).get_weights()
            ):
                np.testing.assert_array_equal(a, b)

    def test_flow_weights_file_loads_without_conversion(self):
        with warnings.catch_warnings():  # "expects 1 or 3 input channels"
            warnings.simplefilter("ignore", UserWarning)
            source = keras.applications.VGG16(
                weights=None, include_top=False, input_shape=(32, 32, 4)
            )
        path = self.create_tempfile("flow.weights.h5").full_path
        source.save_weights(path)
        flow = backbones.build_vgg16(input_channels=4, image_size=32, weights=path)
        np.testing.assert_array_equal(
            flow.get_layer("block1_conv1").get_weights()[0],
            source.get_layer("block1_conv1").get_weights()[0],
        )
        with self.assertRaisesRegex(ValueError, "only RGB"):
            backbones.build_vgg16(input_channels=6, image_size=32, weights=path)

    def test_foreign_weights_file_is_refused(self):
        path = self.create_tempfile("other.weights.h5").full_path
        keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save_weights(path)
        with self.assertRaisesRegex(ValueError, "does not look like"):
            backbones.build_vgg16(image_size=32, weights=path)

    def test_missing_weights_file_is_named(self):
        with self.assertRaisesRegex(ValueError, "no file at '/nonexistent"):
            backbones.build_vgg16(image_size=32, weights="/nonexistent.h5")

    def test_dense_fc_weights_map_to_conv_fc6_fc7(self):
        # fc1 on the flattened (h, w, c) map equals the 4x4 VALID fc6 conv with
        # the reshaped kernel; fc7 (pre-ReLU) equals the linear fc2.
        source = _keras_like_tiny_source()
        target = backbones.build_tiny(image_size=32, endpoint="fc7")
        backbones.copy_vgg16_weights(
            {l.name: l.get_weights() for l in source.layers}, target
        )
        frames = _frames(3)
        expected = keras.ops.convert_to_numpy(source(frames))
        got = keras.ops.convert_to_numpy(target(frames, training=False))
        np.testing.assert_allclose(got[:, 0, 0, :], expected, rtol=1e-4, atol=1e-4)

    def test_missing_source_layer_is_named(self):
        target = backbones.build_tiny(image_size=32)
        with self.assertRaisesRegex(ValueError, "'block4_conv3'"):
            backbones.copy_vgg16_weights(
                {"block1_conv1": target.layers[1].get_weights()}, target
            )

    @parameterized.parameters(
        ("conv5_3", ["block5_conv1", "block5_conv2", "block5_conv3"]),
        ("conv4_3", ["block4_conv1", "block4_conv2", "block4_conv3"]),
    )
    def test_pooled_block_layers_vgg16(self, endpoint, expected):
        model = backbones.build_vgg16(image_size=32, endpoint=endpoint)
        self.assertEqual(
            [l.name for l in backbones.pooled_block_layers(model)], expected
        )

    def test_pooled_block_layers_fc7(self):
        model = backbones.build_tiny(image_size=32, endpoint="fc7")
        self.assertEqual(
            [l.name for l in backbones.pooled_block_layers(model)], ["fc7"]
        )

    def test_inception_v3_flow_endpoint_and_frozen_batch_norm(self):
        model = backbones.build_backbone(
            "inception_v3", input_channels=4, image_size=75, name="flow"
        )
        self.assertEqual(model.output.shape[-1], 768)  # mixed7
        self.assertFalse(
            any(
                l.trainable
                for l in model.layers
                if isinstance(l, keras.layers.BatchNormalization)
            )
        )
        block = backbones.pooled_block_layers(model)
        self.assertLen(block, 10)  # the ten convs of mixed7
        self.assertTrue(all(isinstance(l, keras.layers.Conv2D) for l in block))
        self.assertIsNotNone(block[0].kernel.regularizer)

    @parameterized.parameters(
        ("resnet", None, "Unknown backbone"),
        ("vgg16", "conv3_3", "Unknown endpoint"),
        ("inception_v3", "conv5_3", "mixed0"),
    )
    def test_errors(self, backbone, endpoint, message):
        with self.assertRaisesRegex(ValueError, message):
            backbones.build_backbone(
                backbone, input_channels=3, image_size=75, endpoint=endpoint, name="b"
            )

    def test_tiny_image_size_must_divide_by_8(self):
        with self.assertRaisesRegex(ValueError, "divisible by 8"):
            backbones.build_tiny(image_size=30)


if __name__ == "__main__":
    absltest.main()
