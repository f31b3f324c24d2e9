"""Tests of the stream models: shapes, heads, stages, endpoints, saving."""

from absl.testing import absltest
from absl.testing import parameterized
import gin
import keras
import numpy as np

from avlad_tf.layers import netvlad
from avlad_tf.models import action_vlad
from avlad_tf.models import inspection
from tests import testing

NUM_CLASSES = 5


def tiny_model(*, options=None, **kwargs):
    """A tiny-backbone `build_model`; `options` binds an aggregator's or a
    head's own settings (`{"recurrent_pooling.per_step_loss": "softmax"}`)."""
    kwargs = {
        "num_classes": NUM_CLASSES,
        "backbone": "tiny",
        "image_size": 32,
        "num_clusters": 4,
        "flow_stack": 2,
        **kwargs,
    }
    with testing.gin_bindings(options or {}):
        return action_vlad.build_model(**kwargs)


def video_inputs(model, batch=2, time=3, seed=0):
    rng = np.random.default_rng(seed)
    return {
        name: rng.normal(size=(batch, time) + tuple(t.shape[2:])).astype("float32")
        for name, t in model.input.items()
    }


def numpy(x):
    return keras.ops.convert_to_numpy(x)


class BuildModelTest(testing.TestCase):
    @parameterized.parameters(
        ("rgb", "netvlad", "conv5_3", 4 * 16),
        ("flow", "netvlad", "conv4_3", 4 * 16),
        ("rgb", "netvlad", "fc7", 4 * 16),
        ("rgb", "avg", "conv5_3", 16),
        ("flow", "max", "conv5_3", 16),
        ("rgb", "two_stream", "fc7", 16),
    )
    def test_shapes(self, modality, pooling, endpoint, descriptor_size):
        model = tiny_model(modality=modality, pooling=pooling, endpoint=endpoint)
        self.assertEqual(list(model.input), [modality])
        self.assertEqual(model.input[modality].shape[-1], 3 if modality == "rgb" else 4)
        inputs = video_inputs(model)
        self.assertEqual(tuple(model(inputs).shape), (2, NUM_CLASSES))
        outputs = inspection.endpoints_model(model)(inputs)
        self.assertEqual(tuple(outputs["descriptor"].shape), (2, descriptor_size))
        self.assertEqual("assignments" in outputs, pooling == "netvlad")

    def test_vgg16_small_images(self):
        model = action_vlad.build_model(
            num_classes=3, modality="flow", image_size=32, num_clusters=2, flow_stack=1
        )
        self.assertEqual(
            model.get_layer("flow_backbone").get_layer("block1_conv1").kernel.shape[2],
            2,
        )
        self.assertEqual(tuple(model(video_inputs(model, 1, 2)).shape), (1, 3))

    def test_two_stream_is_the_mean_of_per_frame_scores(self):
        model = tiny_model(pooling="two_stream", endpoint="fc7")
        inputs = video_inputs(model, batch=2, time=3)
        per_frame = [
            numpy(model({"rgb": inputs["rgb"][:, t : t + 1]})) for t in range(3)
        ]
        np.testing.assert_allclose(
            numpy(model(inputs)), np.mean(per_frame, axis=0), atol=1e-5
        )

    def test_classifier_init_and_weight_decay(self):
        model = tiny_model(num_classes=500, weight_decay=4e-5)
        logits = model.get_layer("logits")
        kernel = numpy(logits.kernel)
        self.assertLessEqual(np.abs(kernel).max(), 0.02 + 1e-6)  # truncated
        self.assertAlmostEqual(kernel.std(), 0.01 * 0.88, delta=0.001)
        np.testing.assert_array_equal(numpy(logits.bias), 0.0)
        # slim's lambda * sum(w^2) / 2 on the classifier and conv kernels.
        self.assertAlmostEqual(
            float(logits.kernel_regularizer(kernel)),
            4e-5 * np.sum(kernel**2) / 2,
            places=6,
        )
        self.assertLen(model.losses, 4)  # 3 tiny convs + logits
        for weight in model.get_layer("netvlad").weights:
            self.assertIsNone(weight.regularizer)

    def test_no_weight_decay(self):
        self.assertEmpty(tiny_model(weight_decay=0.0).losses)

    def test_pooled_dropout_defaults(self):
        self.assertEqual(tiny_model().get_layer("pooled_dropout").rate, 0.0)
        self.assertEqual(
            tiny_model(dropout_rate=0.5).get_layer("pooled_dropout").rate, 0.5
        )

    def test_keras_file_round_trip(self):
        model = tiny_model(modality="flow")
        self.assert_keras_file_round_trip(model, video_inputs(model))

    def test_mixed_precision(self):
        keras.mixed_precision.set_global_policy("mixed_float16")
        model = tiny_model()
        self.assertEqual(
            model.get_layer("rgb_backbone").layers[-1].compute_dtype, "float16"
        )
        logits = model(video_inputs(model))
        self.assertEqual(logits.dtype, "float32")
        self.assertTrue(np.all(np.isfinite(numpy(logits))))

    def test_variable_number_of_frames(self):
        model = tiny_model()
        self.assertEqual(
            tuple(model(video_inputs(model, 1, 5)).shape), (1, NUM_CLASSES)
        )

    def test_gin_binding(self):
        gin.clear_config()
        self.addCleanup(gin.clear_config)
        gin.parse_config(
            [
                "build_model.num_clusters = 3",
                "build_model.backbone = 'tiny'",
                "build_model.image_size = 32",
            ]
        )
        model = action_vlad.build_model(num_classes=2)
        self.assertEqual(model.get_layer("netvlad").num_clusters, 3)

    @parameterized.parameters(
        (dict(modality="depth"), "Unknown modality"),
        (dict(modality="rgb+flow"), "fusion must be set"),
        (dict(fusion="late"), "fusion must be set"),
        (dict(modality="rgb+flow", fusion="mid"), "Unknown fusion"),
        (dict(pooling="sum"), "Unknown pooling"),
        (dict(num_classes=0), "num_classes"),
    )
    def test_errors(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            tiny_model(**kwargs)

    def test_netvlad_layer_class(self):
        self.assertIsInstance(tiny_model().get_layer("netvlad"), netvlad.NetVLAD)


if __name__ == "__main__":
    absltest.main()
