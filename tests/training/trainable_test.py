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

    def test_all_layers_stage2_trains_every_backbone_layer_but_batch_norm(self):
        model = action_vlad.build_model(
            num_classes=3, backbone="tiny_i3d", image_size=32, num_clusters=2
        )
        backbone = model.get_layer("rgb_backbone")
        with testing.gin_bindings({"fine_tuning.backbone_layers": "all"}):
            stage_one = trainable.set_stage(model, 1)
            names = trainable.set_stage(model, 2)
        self.assertEqual(stage_one, ["action_vlad_rgb/logits"])
        weighted = [layer for layer in backbone.layers if layer.weights]
        batch_norm = [
            layer
            for layer in weighted
            if isinstance(layer, keras.layers.BatchNormalization)
        ]
        self.assertNotEmpty(batch_norm)
        self.assertEqual(
            [n for n in names if n.startswith("rgb_backbone/")],
            sorted(
                f"rgb_backbone/{layer.name}"
                for layer in weighted
                if layer not in batch_norm
            ),
        )
        # Beyond the release's pooled block (Mixed_5c alone).
        self.assertIn("rgb_backbone/Conv3d_1a_7x7.conv_3d", names)
        self.assertTrue(all(not layer.trainable for layer in batch_norm))

    def test_unknown_fine_tuning_is_refused_in_one_line(self):
        model = action_vlad_test.tiny_model()  # it clears gin's config
        with testing.gin_bindings({"fine_tuning.backbone_layers": "top3"}):
            with self.assertRaisesRegex(
                ValueError, r"^fine_tuning.backbone_layers must be one of .*'top3'"
            ):
                trainable.set_stage(model, 2)

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
