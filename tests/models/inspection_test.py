"""models.inspection: inputs, layers, the pooling layer and the feature
and endpoint models of built models."""

from absl.testing import absltest
import numpy as np

from avlad_tf.models import inspection
from tests import testing
from tests.models import action_vlad_test


class InspectionTest(testing.TestCase):
    def test_features_are_pre_relu_and_feed_the_pooling(self):
        model = action_vlad_test.tiny_model()
        inputs = action_vlad_test.video_inputs(model)
        features = action_vlad_test.numpy(inspection.feature_model(model)(inputs))
        self.assertEqual(features.shape, (2, 3, 8, 8, 16))
        self.assertLess(features.min(), 0.0)
        outputs = inspection.endpoints_model(model)(inputs)
        layer = model.get_layer("netvlad")
        np.testing.assert_allclose(
            action_vlad_test.numpy(outputs["descriptor"]),
            action_vlad_test.numpy(layer(features)),
            atol=1e-6,
        )
        assignments = action_vlad_test.numpy(outputs["assignments"])
        self.assertEqual(assignments.shape, (2, 3, 8, 8, 4))
        np.testing.assert_allclose(assignments.sum(-1), 1.0, atol=1e-5)
        np.testing.assert_allclose(
            action_vlad_test.numpy(outputs["logits"]),
            action_vlad_test.numpy(model(inputs)),
            atol=1e-6,
        )

    def test_set_centers_through_the_pooling_layer(self):
        model = action_vlad_test.tiny_model()
        centers = np.random.default_rng(2).normal(size=(4, 16))
        inspection.pooling_layer(model).set_centers(centers)
        layer = model.get_layer("netvlad")
        np.testing.assert_allclose(
            action_vlad_test.numpy(layer.centers), centers, rtol=1e-6
        )
        np.testing.assert_allclose(
            action_vlad_test.numpy(layer.assignment_kernel),
            2000.0 * centers.T,
            rtol=1e-5,
        )

    def test_find_layer(self):
        model = action_vlad_test.tiny_model()
        self.assertEqual(
            inspection.find_layer(model, "block5_conv3").name, "block5_conv3"
        )
        with self.assertRaisesRegex(ValueError, "rgb_backbone"):
            inspection.find_layer(model, "fc6")

    def test_input_names_are_the_feature_keys(self):
        model = action_vlad_test.tiny_model(modality="rgb+flow", fusion="concat")
        self.assertEqual(sorted(inspection.input_names(model)), ["flow", "rgb"])

    def test_pooling_layer_of_a_late_fusion_model_is_refused(self):
        model = action_vlad_test.tiny_model(modality="rgb+flow", fusion="late")
        with self.assertRaisesRegex(ValueError, "late-fusion models have one"):
            inspection.pooling_layer(model)


if __name__ == "__main__":
    absltest.main()
