"""Conv pooling's fc6 / fc7 start from the image network's, as Ng et al.'s
(`conv_pooling_fc.init`), with a real keras.applications VGG16 whose
weights file (with its top) the test writes."""

import os
import warnings

from absl.testing import absltest
import keras
import numpy as np
import pytest

from avlad_tf.models import action_vlad
from avlad_tf.models import inspection
from tests import testing
from tests.models import action_vlad_test


def _vgg16_model(path, *, image_size=224, options=None):
    with testing.gin_bindings(options or {}):
        return action_vlad.build_model(
            num_classes=5,
            backbone="vgg16",
            image_size=image_size,
            weights=path,
            pooling="conv_pooling",
        )


class SettingTest(testing.TestCase):
    def test_unknown_init_names_the_binding(self):
        with self.assertRaisesRegex(
            ValueError, r"conv_pooling_fc.init must be one of .*Received: 'vgg'"
        ):
            action_vlad_test.tiny_model(
                pooling="conv_pooling", options={"conv_pooling_fc.init": "vgg"}
            )

    def test_a_backbone_without_a_top_starts_them_random(self):
        # The tiny backbone has no fc6 / fc7 of 8·D units: nothing to copy,
        # and a weights file of its own loads as before.
        path = self.create_tempfile("tiny.weights.h5").full_path
        action_vlad_test.tiny_model(pooling="avg").get_layer(
            "rgb_backbone"
        ).save_weights(path)
        model = action_vlad_test.tiny_model(pooling="conv_pooling", weights=path)
        self.assertEqual(inspection.pooling_layer(model).units, (128, 128))

    def test_weights_without_the_top_name_the_binding(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            source = keras.applications.VGG16(
                weights=None, include_top=False, input_shape=(32, 32, 3)
            )
        path = self.create_tempfile("notop.weights.h5").full_path
        source.save_weights(path)
        with self.assertRaisesRegex(
            ValueError,
            r"conv_pooling_fc.init='image_network' needs VGG16 weights with "
            r"the top .*notop",
        ):
            _vgg16_model(path, image_size=32)
        random = _vgg16_model(
            path, image_size=32, options={"conv_pooling_fc.init": "random"}
        )
        self.assertEqual(inspection.pooling_layer(random).units, (4096, 4096))


@pytest.mark.slow
class ImageNetworkTest(testing.TestCase):
    """keras.applications VGG16 with its top (random weights, 528 MB)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.source = keras.applications.VGG16(weights=None, include_top=True)
        cls.path = os.path.join(testing.class_tempdir(cls), "vgg16_top.weights.h5")
        cls.source.save_weights(cls.path)

    def test_fc6_fc7_are_the_image_networks_and_compute_its_fc7(self):
        model = _vgg16_model(self.path)
        layer = inspection.pooling_layer(model)
        for own, name in zip(layer.fully_connected, ("fc1", "fc2")):
            for got, expected in zip(
                own.get_weights(), self.source.get_layer(name).get_weights()
            ):
                np.testing.assert_array_equal(got, expected)
        # A video of one frame repeated: the max over time is that frame's
        # conv5_3 map, so conv pooling is VGG16's own fc7 (post-ReLU) of it.
        frame = np.random.default_rng(0).uniform(-100, 100, (1, 224, 224, 3))
        frame = frame.astype("float32")
        video = np.repeat(frame[:, None], 2, axis=1)  # (1, 2, 224, 224, 3)
        pooled = keras.Model(model.input, layer.output)({"rgb": video})
        fc7 = keras.Model(self.source.input, self.source.get_layer("fc2").output)
        expected = keras.ops.convert_to_numpy(fc7(frame))
        self.assertGreater(np.count_nonzero(expected), 100)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(pooled), expected, rtol=1e-3, atol=1e-4
        )

    def test_random_init_keeps_keras_initialisation(self):
        model = _vgg16_model(self.path, options={"conv_pooling_fc.init": "random"})
        kernel = inspection.pooling_layer(model).fully_connected[1].get_weights()[0]
        self.assertFalse(
            np.array_equal(kernel, self.source.get_layer("fc2").get_weights()[0])
        )

    def test_another_map_size_says_what_to_do(self):
        with self.assertRaisesRegex(
            ValueError,
            r"conv_pooling_fc.init='image_network': .*fc1 has a \(512, 4096\) "
            r"kernel; received \(25088, 4096\).*image_size 224.*'random'",
        ):
            _vgg16_model(self.path, image_size=32)


if __name__ == "__main__":
    absltest.main()
