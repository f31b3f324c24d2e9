"""build_model with VideoLSTM: `pooling='videolstm'`, motion attention, maps."""

from absl.testing import absltest
from absl.testing import parameterized
import gin
import keras
import numpy as np
import pytest

from avlad_tf.layers import video_lstm
from avlad_tf.models import action_vlad
from avlad_tf.models import aggregators
from avlad_tf.models import inspection
from avlad_tf.training import trainable as trainable_lib
from avlad_tf.visualization import attention as attention_lib
from tests import testing
from tests.models import action_vlad_test

NUM_CLASSES = action_vlad_test.NUM_CLASSES
# Tiny backbone at 32 px: conv5_3 is 8x8x16, pool5 4x4x16.
TINY_DEPTH = 16
MOTION = dict(modality="rgb+flow", fusion="motion_attention")
tiny_model = action_vlad_test.tiny_model
video_inputs = action_vlad_test.video_inputs
numpy = action_vlad_test.numpy


def videolstm_model(**kwargs):
    return tiny_model(pooling="videolstm", **kwargs)


class VideoLSTMModelTest(testing.TestCase):
    @parameterized.parameters(
        (dict(), (4, 4)),
        (dict(modality="flow", endpoint="conv4_3"), (8, 8)),
        (dict(endpoint="fc7"), (1, 1)),
        (MOTION, (4, 4)),
    )
    def test_shapes_and_endpoints(self, kwargs, grid):
        model = videolstm_model(**kwargs)
        layer = inspection.pooling_layer(model)
        self.assertIsInstance(layer, video_lstm.ConvALSTM)
        self.assertEqual(layer.name, aggregators.get("videolstm").layer_name)
        self.assertEqual(
            layer.attention, "motion" if "fusion" in kwargs else "appearance"
        )
        inputs = video_inputs(model)
        logits = model(inputs)
        self.assertEqual(tuple(logits.shape), (2, NUM_CLASSES))
        outputs = inspection.endpoints_model(model)(inputs)
        self.assertEqual(set(outputs), {"logits", "descriptor", "attention"})
        np.testing.assert_allclose(numpy(outputs["logits"]), numpy(logits), atol=1e-5)
        self.assertEqual(outputs["descriptor"].shape[0], 2)
        maps = numpy(outputs["attention"])
        self.assertEqual(maps.shape, (2, 3, *grid))
        np.testing.assert_allclose(maps.sum(axis=(2, 3)), 1.0, atol=1e-5)

    def test_widths_follow_the_endpoint_depth(self):
        # VGG16 conv5_3 (D = 512): the paper's 512 channels and 1024 FC.
        for backbone, depth in (("tiny", TINY_DEPTH), ("vgg16", 512)):
            layer = videolstm_model(backbone=backbone).get_layer("videolstm_pool")
            self.assertEqual(
                (layer.units, layer.dense_units, layer.dropout_rate),
                (depth, 2 * depth, 0.7),
            )

    def test_late_fusion_has_one_videolstm_per_stream(self):
        model = videolstm_model(modality="rgb+flow", fusion="late")
        for name in ("rgb_stream", "flow_stream"):
            layer = model.get_layer(name).get_layer("videolstm_pool")
            self.assertEqual(layer.attention, "appearance")
        self.assertEqual(tuple(model(video_inputs(model)).shape), (2, NUM_CLASSES))

    def test_motion_attention_comes_from_the_flow(self):
        model = videolstm_model(**MOTION)
        inputs = video_inputs(model)
        ends = inspection.endpoints_model(model)
        other = dict(inputs, flow=video_inputs(model, seed=1)["flow"])
        self.assertFalse(
            np.allclose(
                numpy(ends(inputs)["attention"]),
                numpy(ends(other)["attention"]),
                atol=1e-6,
            )
        )

    def test_aggregator_kernels_get_the_models_weight_decay(self):
        # Over average pooling's (backbone(s) + classifier): 7 ConvALSTM
        # kernels, 11 with motion attention.
        for kwargs, fused, extra in ((dict(), {}, 7), (MOTION, MOTION, 11)):
            fused = dict(fused, fusion="concat") if fused else {}
            baseline = len(tiny_model(pooling="avg", weight_decay=5e-4, **fused).losses)
            model = videolstm_model(weight_decay=5e-4, **kwargs)
            self.assertLen(model.losses, baseline + extra)

    @parameterized.named_parameters(("single", {}), ("motion", MOTION))
    def test_per_step_loss_keeps_the_logits_and_adds_the_gap(self, kwargs):
        keras.utils.set_random_seed(3)
        per_step = videolstm_model(
            options={"recurrent_pooling.per_step_loss": "softmax"}, **kwargs
        )
        keras.utils.set_random_seed(3)
        averaged = videolstm_model(**kwargs)
        inputs = video_inputs(per_step, time=4)
        classifier = per_step.get_layer("logits")
        rng = np.random.default_rng(0)
        classifier.set_weights(
            [rng.normal(0, 3, w.shape) for w in classifier.get_weights()]
        )
        averaged.set_weights(per_step.get_weights())
        logits = per_step(inputs)
        np.testing.assert_allclose(logits, averaged(inputs), atol=1e-5)
        steps = keras.Model(
            per_step.inputs, per_step.get_layer("time_averaged_logits").input
        )(inputs)  # (B, T, C)
        labels = np.eye(NUM_CLASSES)[[0, 2]]
        per_step_ce = np.mean(
            numpy(
                keras.losses.categorical_crossentropy(
                    np.repeat(labels[:, None], 4, axis=1), steps, from_logits=True
                )
            )
        )
        mean_ce = np.mean(
            numpy(
                keras.losses.categorical_crossentropy(labels, logits, from_logits=True)
            )
        )
        gap = float(per_step.get_layer("time_averaged_logits").losses[0])
        self.assertGreater(gap, 0.0)
        self.assertAlmostEqual(mean_ce + gap, per_step_ce, places=4)
        ends = inspection.endpoints_model(per_step)(inputs)
        self.assertEqual(tuple(ends["attention"].shape), (2, 4, 4, 4))

    @parameterized.parameters(
        (dict(), ["rgb_backbone/block5_conv3"], "action_vlad_rgb"),
        (
            MOTION,
            ["flow_backbone/block5_conv3", "rgb_backbone/block5_conv3"],
            "action_vlad_motion_attention",
        ),
    )
    def test_stages(self, kwargs, blocks, name):
        model = videolstm_model(**kwargs)
        # The ConvALSTM starts from random weights: it trains from stage 1.
        first = [f"{name}/logits", f"{name}/videolstm_pool"]
        self.assertEqual(trainable_lib.set_stage(model, 1), first)
        aggregator = model.get_layer("videolstm_pool")
        self.assertLen(model.trainable_weights, len(aggregator.weights) + 2)
        self.assertEqual(trainable_lib.set_stage(model, 2), sorted(first + blocks))
        trainable = {id(w) for w in model.trainable_weights}
        self.assertTrue(all(id(w) in trainable for w in aggregator.weights))

    @parameterized.named_parameters(("single", {}), ("motion", MOTION))
    @pytest.mark.slow
    def test_stage2_fit_step_under_xla(self, kwargs):
        model = videolstm_model(
            options={"recurrent_pooling.per_step_loss": "softmax"}, **kwargs
        )
        inputs = video_inputs(model)
        labels = np.eye(NUM_CLASSES, dtype="float32")[[0, 3]]
        trainable_lib.set_stage(model, 2)
        model.compile(
            optimizer="adam",
            jit_compile=True,
            loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        )
        aggregator = model.get_layer("videolstm_pool")
        before = [numpy(w) for w in aggregator.weights]
        history = model.fit(inputs, labels, batch_size=2, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]))
        after = [numpy(w) for w in aggregator.weights]
        self.assertTrue(all(not np.array_equal(a, b) for a, b in zip(after, before)))

    @parameterized.named_parameters(("flow", {"modality": "flow"}), ("motion", MOTION))
    def test_keras_file_round_trip(self, kwargs):
        model = videolstm_model(
            options={"recurrent_pooling.per_step_loss": "softmax"}, **kwargs
        )
        self.assert_keras_file_round_trip(model, video_inputs(model))

    @parameterized.named_parameters(("single", {}), ("motion", MOTION))
    def test_mixed_precision(self, kwargs):
        keras.mixed_precision.set_global_policy("mixed_float16")
        model = videolstm_model(**kwargs)
        logits = model(video_inputs(model))
        self.assertEqual(logits.dtype, "float32")
        self.assertTrue(np.all(np.isfinite(numpy(logits))))

    def test_variable_number_of_frames(self):
        model = videolstm_model(**MOTION)
        for time in (1, 5):
            self.assertEqual(
                tuple(model(video_inputs(model, 1, time)).shape), (1, NUM_CLASSES)
            )

    def test_gin_bindings(self):
        gin.clear_config()
        self.addCleanup(gin.clear_config)
        gin.parse_config(
            [
                "build_model.pooling = 'videolstm'",
                "build_model.fusion = 'motion_attention'",
                "build_model.backbone = 'tiny'",
                "build_model.image_size = 32",
            ]
        )
        model = action_vlad.build_model(num_classes=2, modality="rgb+flow")
        self.assertEqual(model.get_layer("videolstm_pool").attention, "motion")

    def test_motion_attention_needs_the_videolstm(self):
        with self.assertRaisesRegex(ValueError, "needs pooling='videolstm'"):
            tiny_model(pooling="netvlad", **MOTION)

    def test_per_step_loss_needs_a_recurrent_pooling(self):
        message = "recurrent_pooling.per_step_loss needs a recurrent pooling"
        with self.assertRaisesRegex(ValueError, message):
            tiny_model(
                pooling="avg", options={"recurrent_pooling.per_step_loss": "softmax"}
            )
        with self.assertRaisesRegex(ValueError, message):
            videolstm_model(
                modality="rgb+flow",
                fusion="concat",
                options={"recurrent_pooling.per_step_loss": "softmax"},
            )


class AttentionMapsTest(testing.TestCase):
    @parameterized.named_parameters(("single", {}), ("motion", MOTION))
    def test_maps_of_a_batch(self, kwargs):
        model = videolstm_model(**kwargs)
        inputs = video_inputs(model, batch=2, time=3)
        maps = attention_lib.attention_maps(model, inputs)
        self.assertEqual((maps.shape, maps.dtype), ((2, 3, 4, 4), np.float32))
        np.testing.assert_allclose(maps.sum(axis=(2, 3)), 1.0, atol=1e-5)
        expected = inspection.endpoints_model(model)(inputs)["attention"]
        np.testing.assert_allclose(maps, numpy(expected), atol=1e-6)
        shown = attention_lib.attention_overlay(
            inputs["rgb"].reshape(6, 32, 32, 3), maps.reshape(6, 4, 4)
        )
        self.assertEqual((shown.shape, shown.dtype), ((6, 32, 32, 3), np.uint8))

    def test_no_maps_without_videolstm(self):
        model = tiny_model(pooling="netvlad")
        with self.assertRaisesRegex(ValueError, "has no attention maps"):
            attention_lib.attention_maps(model, video_inputs(model))

    def test_overlay_is_brightest_where_attended(self):
        frames = np.zeros((1, 8, 8, 3), np.float32) - 100.0  # dark frames
        attention = np.full((1, 2, 2), 0.1, np.float32)
        attention[0, 1, 0] = 0.7  # the bottom-left 4x4 pixels
        shown = attention_lib.attention_overlay(frames, attention, opacity=1.0)
        brightness = shown[0].astype(float).sum(-1)  # (8, 8)
        # Each cell covers 4x4 pixels in one colour; the attended one is
        # brightest.
        np.testing.assert_array_equal(brightness[4:, :4], brightness[4, 0])
        self.assertGreater(brightness[4, 0], brightness[0, 4] + 100)
        with self.assertRaisesRegex(ValueError, "attention_overlay expects"):
            attention_lib.attention_overlay(frames, attention[0])


if __name__ == "__main__":
    absltest.main()
