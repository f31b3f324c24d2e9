"""training.trainable: which layers each stage of the release's two-stage
schedule trains (docs/RELEASE.md Sec. 7.3)."""

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np
import pytest

from avlad_tf.models import action_vlad
from avlad_tf.training import trainable
from tests import testing
from tests.models import action_vlad_test


class SetStageTest(testing.TestCase):
    def test_stage_trainable_weights(self):
        model = action_vlad_test.tiny_model()
        self.assertEqual(trainable.set_stage(model, 1), ["action_vlad_rgb/logits"])
        self.assertEqual(
            sorted(w.path for w in model.trainable_weights),
            ["logits/bias", "logits/kernel"],
        )
        trainable.set_stage(model, 2)
        self.assertEqual(
            sorted(w.path for w in model.trainable_weights),
            [
                "block5_conv3/bias",
                "block5_conv3/kernel",
                "logits/bias",
                "logits/kernel",
                "netvlad/assignment_bias",
                "netvlad/assignment_kernel",
                "netvlad/centers",
            ],
        )
        trainable.set_stage(model, 1)
        self.assertLen(model.trainable_weights, 2)

    @parameterized.parameters(
        ("conv5_3", ["block5_conv1", "block5_conv2", "block5_conv3"]),
        ("conv4_3", ["block4_conv1", "block4_conv2", "block4_conv3"]),
    )
    def test_stage2_trains_the_pooled_vgg16_block(self, endpoint, block):
        model = action_vlad.build_model(
            num_classes=3, image_size=32, endpoint=endpoint, num_clusters=2
        )
        names = trainable.set_stage(model, 2)
        self.assertEqual(
            names,
            ["action_vlad_rgb/logits", "action_vlad_rgb/netvlad"]
            + [f"rgb_backbone/{n}" for n in block],
        )

    def test_fc7_stage2_trains_fc7_only(self):
        names = trainable.set_stage(action_vlad_test.tiny_model(endpoint="fc7"), 2)
        self.assertIn("rgb_backbone/fc7", names)
        self.assertNotIn("rgb_backbone/fc6", names)

    @pytest.mark.slow
    def test_stage_fit_step_under_xla(self):
        model = action_vlad_test.tiny_model()
        inputs = action_vlad_test.video_inputs(model)
        labels = np.eye(action_vlad_test.NUM_CLASSES, dtype="float32")[[0, 3]]
        trainable.set_stage(model, 1)
        model.compile(
            optimizer="adam",
            jit_compile=True,
            loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        )
        before = action_vlad_test.numpy(model.get_layer("rgb_backbone").weights[0])
        logits_before = action_vlad_test.numpy(model.get_layer("logits").kernel)
        model.fit(inputs, labels, batch_size=2, verbose=0)
        np.testing.assert_array_equal(
            action_vlad_test.numpy(model.get_layer("rgb_backbone").weights[0]), before
        )
        self.assertFalse(
            np.array_equal(
                action_vlad_test.numpy(model.get_layer("logits").kernel), logits_before
            )
        )

    def test_unknown_stage_is_refused(self):
        with self.assertRaisesRegex(ValueError, "stage must be 1 or 2"):
            trainable.set_stage(action_vlad_test.tiny_model(), 3)


if __name__ == "__main__":
    absltest.main()
