"""InceptionV3 (Table 5, Charades): weights load, and they get their input rule.

Uses an InceptionV3 weights file the test writes (no download): a Keras
InceptionV3 with random weights, saved as keras.applications would load it.
"""

import os

from absl.testing import absltest
import keras
import numpy as np
import pytest

from avlad_tf.layers import pixels
from avlad_tf.models import action_vlad
from avlad_tf.models import backbones
from avlad_tf.models import inspection
from tests import testing

SIZE = 75  # InceptionV3's smallest input


@pytest.mark.slow
class InceptionV3Test(testing.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        keras.utils.set_random_seed(1)
        cls.source = keras.applications.InceptionV3(
            include_top=False, weights=None, input_shape=(SIZE, SIZE, 3)
        )
        cls.weights = os.path.join(
            testing.class_tempdir(cls), "inception_v3.weights.h5"
        )
        cls.source.save_weights(cls.weights)

    def _convs(self, model):
        return [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]

    def test_rgb_weights_load_unchanged(self):
        model = backbones.build_inception_v3(
            input_channels=3, image_size=SIZE, endpoint="mixed2", weights=self.weights
        )
        for target, source in zip(self._convs(model), self._convs(self.source)):
            np.testing.assert_array_equal(target.kernel.numpy(), source.kernel.numpy())

    def test_flow_converts_only_the_first_conv(self):
        # Before the fix every conv whose input depth differed from the
        # model's channels was converted: conv 2's [3,3,32,32] became
        # [3,3,20,32] and building failed.
        model = backbones.build_inception_v3(
            input_channels=20, image_size=SIZE, endpoint="mixed2", weights=self.weights
        )
        first, *rest = self._convs(model)
        source_first, *source_rest = self._convs(self.source)
        np.testing.assert_allclose(
            first.kernel.numpy(),
            backbones.flow_kernel_from_rgb(source_first.kernel.numpy(), 20),
        )
        for target, source in zip(rest, source_rest):
            np.testing.assert_array_equal(target.kernel.numpy(), source.kernel.numpy())

    def test_pipeline_input_reaches_the_weights_as_keras_preprocesses_it(self):
        # The pipeline feeds BGR minus the release's means; InceptionV3's
        # weights were trained on RGB / 127.5 - 1.
        rng = np.random.default_rng(0)
        rgb = rng.integers(0, 256, (1, 2, SIZE, SIZE, 3)).astype(np.float32)
        pipeline = rgb[..., ::-1] - np.float32(pixels.RELEASE_BGR_MEANS)
        model = action_vlad.build_model(
            num_classes=3,
            backbone="inception_v3",
            endpoint="mixed2",
            pooling="avg",
            image_size=SIZE,
            weights=self.weights,
        )
        descriptor = inspection.endpoints_model(model)({"rgb": pipeline})["descriptor"]
        cut = keras.Model(self.source.input, self.source.get_layer("mixed2").output)
        frames = keras.applications.inception_v3.preprocess_input(
            rgb.reshape((2, SIZE, SIZE, 3))
        )
        expected = np.asarray(cut(frames)).mean(axis=(0, 1, 2))
        np.testing.assert_allclose(
            np.asarray(descriptor)[0], expected, rtol=1e-4, atol=1e-4
        )
        self.assertEqual(pixels.input_rule_of(model), "inception")

    def test_vgg_backbones_keep_the_release_rule(self):
        model = action_vlad.build_model(num_classes=3, backbone="tiny", image_size=32)
        self.assertEqual(pixels.input_rule_of(model), "release_vgg")

    def test_inception_input_layer(self):
        layer = pixels.InceptionInput("flow")
        flow = np.array([[-128.0, 0.0, 127.0]], np.float32)
        np.testing.assert_allclose(
            np.asarray(layer(flow)), [[-1.0, 128 / 127.5 - 1, 1.0]], atol=1e-6
        )
        self.assert_serialization_round_trip(layer)
        with self.assertRaisesRegex(ValueError, "modality"):
            pixels.InceptionInput("depth")
        with self.assertRaisesRegex(ValueError, "bgr_means"):
            pixels.InceptionInput("rgb", bgr_means=(1.0,))


if __name__ == "__main__":
    absltest.main()
