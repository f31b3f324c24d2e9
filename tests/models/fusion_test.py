"""Tests of the two-stream fusion models (late, concat, early)."""

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np

from avlad_tf.models import fusion
from avlad_tf.models import inspection
from avlad_tf.training import trainable
from tests import testing
from tests.models import action_vlad_test

tiny_model = action_vlad_test.tiny_model
video_inputs = action_vlad_test.video_inputs
numpy = action_vlad_test.numpy


class FusionTest(testing.TestCase):
    def test_late_fusion_is_the_weighted_sum_of_raw_logits(self):
        rgb, flow = tiny_model(modality="rgb"), tiny_model(modality="flow")
        inputs = {**video_inputs(rgb), **video_inputs(flow, seed=1)}
        expected = (
            numpy(rgb({"rgb": inputs["rgb"]})) / 3
            + 2 * numpy(flow({"flow": inputs["flow"]})) / 3
        )
        fused = fusion.build_late_fusion(rgb, flow)
        self.assertEqual(sorted(fused.input), ["flow", "rgb"])
        np.testing.assert_allclose(numpy(fused(inputs)), expected, atol=1e-6)
        self.assert_keras_file_round_trip(fused, inputs)

    def test_late_fusion_from_build_model(self):
        model = tiny_model(
            modality="rgb+flow", fusion="late", late_fusion_weights=(0.5, 0.5)
        )
        inputs = video_inputs(model)
        rgb = model.get_layer("rgb_stream")
        flow = model.get_layer("flow_stream")
        expected = 0.5 * (
            numpy(rgb({"rgb": inputs["rgb"]})) + numpy(flow({"flow": inputs["flow"]}))
        )
        np.testing.assert_allclose(numpy(model(inputs)), expected, atol=1e-6)
        self.assertEqual(
            trainable.set_stage(model, 1), ["flow_stream/logits", "rgb_stream/logits"]
        )

    def test_late_fusion_checks_its_streams(self):
        with self.assertRaisesRegex(ValueError, "different numbers of classes"):
            fusion.build_late_fusion(
                tiny_model(modality="rgb"), tiny_model(modality="flow", num_classes=3)
            )
        with self.assertRaisesRegex(ValueError, "input named 'flow'"):
            fusion.build_late_fusion(tiny_model(), tiny_model())

    @parameterized.parameters(
        ("concat", (2, 3, 8, 8, 32)), ("early", (2, 3, 16, 8, 16))
    )
    def test_one_pooling_over_both_streams(self, kind, feature_shape):
        model = tiny_model(modality="rgb+flow", fusion=kind)
        inputs = video_inputs(model)
        self.assertEqual(tuple(model(inputs).shape), (2, 5))
        features = numpy(inspection.feature_model(model)(inputs))
        self.assertEqual(features.shape, feature_shape)
        # The release applies pooled dropout (keep 0.5) to fusion heads.
        self.assertEqual(model.get_layer("pooled_dropout").rate, 0.5)
        self.assertEqual(
            trainable.set_stage(model, 2),
            [
                f"action_vlad_{kind}_fusion/logits",
                f"action_vlad_{kind}_fusion/netvlad",
                "flow_backbone/block5_conv3",
                "rgb_backbone/block5_conv3",
            ],
        )

    def test_early_fusion_bag_is_the_union_of_descriptors(self):
        model = tiny_model(modality="rgb+flow", fusion="early")
        inputs = video_inputs(model)
        features = numpy(inspection.feature_model(model)(inputs))
        rgb = keras.Model(
            model.input["rgb"], model.get_layer("rgb_unfold_frames").output
        )
        np.testing.assert_allclose(
            features[:, :, :8], numpy(rgb(inputs["rgb"])), atol=1e-6
        )

    def test_keras_file_round_trip(self):
        model = tiny_model(modality="rgb+flow", fusion="concat")
        self.assert_keras_file_round_trip(model, video_inputs(model))


if __name__ == "__main__":
    absltest.main()
