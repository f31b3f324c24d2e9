"""build_model with Ng et al.'s aggregators: `conv_pooling` and `lstm`."""

from absl.testing import absltest
from absl.testing import parameterized
import gin
import keras
import numpy as np
import pytest

from avlad_tf.layers import conv_pooling
from avlad_tf.layers import frame_lstm
from avlad_tf.models import action_vlad
from avlad_tf.models import aggregators
from avlad_tf.models import inspection
from avlad_tf.training import stream_model
from avlad_tf.training import trainable as trainable_lib
from tests import testing
from tests.models import action_vlad_test

NUM_CLASSES = action_vlad_test.NUM_CLASSES
# Tiny backbone at 32 px: conv5_3 is 8x8x16.
TINY_DEPTH = 16
LAYERS = {"conv_pooling": conv_pooling.ConvPooling, "lstm": frame_lstm.FrameLSTM}
tiny_model = action_vlad_test.tiny_model
video_inputs = action_vlad_test.video_inputs
numpy = action_vlad_test.numpy


class AggregatorModelTest(testing.TestCase):
    @parameterized.parameters(
        ("conv_pooling", "rgb", "conv5_3", 8 * TINY_DEPTH),
        ("conv_pooling", "flow", "conv4_3", 8 * TINY_DEPTH),
        ("lstm", "rgb", "conv5_3", TINY_DEPTH),
        ("lstm", "flow", "fc7", None),
    )
    def test_shapes_and_endpoints(self, pooling, modality, endpoint, size):
        model = tiny_model(pooling=pooling, modality=modality, endpoint=endpoint)
        layer = inspection.pooling_layer(model)
        self.assertIsInstance(layer, LAYERS[pooling])
        self.assertEqual(layer.name, aggregators.get(pooling).layer_name)
        inputs = video_inputs(model)
        logits = model(inputs)
        self.assertEqual(tuple(logits.shape), (2, NUM_CLASSES))
        outputs = inspection.endpoints_model(model)(inputs)
        self.assertEqual(set(outputs), {"logits", "descriptor"})
        descriptor = numpy(outputs["descriptor"])
        if size is not None:
            self.assertEqual(descriptor.shape, (2, size))
        np.testing.assert_allclose(numpy(outputs["logits"]), numpy(logits), atol=1e-5)
        features = inspection.feature_model(model)(inputs)
        self.assertEqual(len(features.shape), 5)  # (B, T, h, w, D)

    def test_widths_follow_the_endpoint_depth(self):
        # VGG16 conv5_3 (D = 512): fc6 / fc7 of 4096 and 512 LSTM cells.
        for backbone, depth in (("tiny", TINY_DEPTH), ("vgg16", 512)):
            conv = tiny_model(pooling="conv_pooling", backbone=backbone)
            self.assertEqual(conv.get_layer("conv_pool").units, (8 * depth,) * 2)
            lstm = tiny_model(pooling="lstm", backbone=backbone)
            layer = lstm.get_layer("lstm_pool")
            self.assertEqual((layer.units, layer.num_layers), (depth, 5))

    def test_aggregator_kernels_get_the_models_weight_decay(self):
        # Over average pooling's (backbone + classifier): conv pooling adds
        # its 2 FC kernels, the 5-layer LSTM a kernel and a recurrent kernel
        # per layer.
        baseline = len(tiny_model(pooling="avg", weight_decay=5e-4).losses)
        for pooling, extra in (("conv_pooling", 2), ("lstm", 10)):
            model = tiny_model(pooling=pooling, weight_decay=5e-4)
            self.assertLen(model.losses, baseline + extra, pooling)
            self.assertEqual(
                inspection.pooling_layer(model).get_config()["weight_decay"], 5e-4
            )

    def test_lstm_per_step_loss_keeps_the_logits_and_adds_the_gap(self):
        keras.utils.set_random_seed(3)
        per_step = tiny_model(
            pooling="lstm", options={"recurrent_pooling.per_step_loss": "softmax"}
        )
        keras.utils.set_random_seed(3)
        averaged = tiny_model(pooling="lstm")
        inputs = video_inputs(per_step, time=4)
        # A classifier far from its near-zero initialisation, so the steps'
        # logits differ and the per-step loss exceeds the mean's.
        classifier = per_step.get_layer("logits")
        rng = np.random.default_rng(0)
        classifier.set_weights(
            [rng.normal(0, 3, w.shape) for w in classifier.get_weights()]
        )
        averaged.set_weights(per_step.get_weights())
        logits = per_step(inputs)
        np.testing.assert_allclose(logits, averaged(inputs), atol=1e-5)
        # The model's loss terms now complete the cross-entropy of the mean
        # logits into the mean per-step cross-entropy (labels not needed).
        steps = keras.Model(
            per_step.inputs, per_step.get_layer("time_averaged_logits").input
        )(inputs)  # (B, T, C)
        labels = np.eye(action_vlad_test.NUM_CLASSES)[[0, 2]]
        per_step_ce = np.mean(
            keras.ops.convert_to_numpy(
                keras.losses.categorical_crossentropy(
                    np.repeat(labels[:, None], 4, axis=1), steps, from_logits=True
                )
            )
        )
        mean_ce = np.mean(
            keras.ops.convert_to_numpy(
                keras.losses.categorical_crossentropy(labels, logits, from_logits=True)
            )
        )
        gap = float(per_step.get_layer("time_averaged_logits").losses[0])
        self.assertAlmostEqual(mean_ce + gap, per_step_ce, places=4)
        self.assertGreater(gap, 0.0)
        ends = inspection.endpoints_model(per_step)(inputs)
        self.assertEqual(tuple(ends["descriptor"].shape), (2, 16))

    def test_training_refuses_a_per_step_loss_other_than_its_own(self):
        model = tiny_model(
            pooling="lstm", options={"recurrent_pooling.per_step_loss": "sigmoid"}
        )
        stream_model.check_per_step_loss(model, "sigmoid", stream="rgb")  # matches
        with self.assertRaisesRegex(
            ValueError,
            r"rgb/recurrent_pooling.per_step_loss = 'sigmoid', but "
            r"train_stream.loss resolves to 'softmax'",
        ):
            stream_model.check_per_step_loss(model, "softmax", stream="rgb")

    def test_lstm_per_step_loss_needs_the_lstm(self):
        with self.assertRaisesRegex(
            ValueError, "recurrent_pooling.per_step_loss needs a recurrent pooling"
        ):
            tiny_model(
                pooling="avg", options={"recurrent_pooling.per_step_loss": "softmax"}
            )

    def test_conv_pooling_dropout_is_the_fc_dropout(self):
        model = tiny_model(pooling="conv_pooling", fc_dropout_rate=0.3)
        self.assertEqual(model.get_layer("conv_pool").dropout_rate, 0.3)

    def test_conv_pooling_ignores_frame_order(self):
        model = tiny_model(pooling="conv_pooling")
        inputs = video_inputs(model)
        reversed_inputs = {k: v[:, ::-1] for k, v in inputs.items()}
        np.testing.assert_allclose(
            numpy(model(inputs)), numpy(model(reversed_inputs)), atol=1e-5
        )

    def test_lstm_logits_are_the_mean_of_per_step_logits(self):
        model = tiny_model(pooling="lstm")
        inputs = video_inputs(model, batch=2, time=4)
        features = inspection.feature_model(model)(inputs)
        _, steps = model.get_layer("lstm_pool")(features, return_sequences=True)
        per_step = numpy(model.get_layer("logits")(steps))  # (B, T, C)
        np.testing.assert_allclose(
            numpy(model(inputs)), per_step.mean(axis=1), atol=1e-5
        )

    @parameterized.parameters("conv_pooling", "lstm")
    def test_stages(self, pooling):
        model = tiny_model(pooling=pooling)
        name = aggregators.get(pooling).layer_name
        # The aggregator starts from random weights: it trains from stage 1.
        self.assertEqual(
            trainable_lib.set_stage(model, 1),
            sorted([f"action_vlad_rgb/{name}", "action_vlad_rgb/logits"]),
        )
        aggregator = model.get_layer(name)
        self.assertLen(model.trainable_weights, len(aggregator.weights) + 2)
        self.assertEqual(
            trainable_lib.set_stage(model, 2),
            sorted(
                [
                    f"action_vlad_rgb/{name}",
                    "action_vlad_rgb/logits",
                    "rgb_backbone/block5_conv3",
                ]
            ),
        )
        aggregator = model.get_layer(name)
        trainable = {id(w) for w in model.trainable_weights}
        self.assertNotEmpty(aggregator.weights)
        self.assertTrue(all(id(w) in trainable for w in aggregator.weights))
        self.assertLen(model.trainable_weights, len(aggregator.weights) + 4)

    @parameterized.parameters("conv_pooling", "lstm")
    @pytest.mark.slow
    def test_stage2_fit_step_under_xla(self, pooling):
        model = tiny_model(pooling=pooling)
        inputs = video_inputs(model)
        labels = np.eye(NUM_CLASSES, dtype="float32")[[0, 3]]
        trainable_lib.set_stage(model, 2)
        model.compile(
            optimizer="adam",
            jit_compile=True,
            loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        )
        aggregator = model.get_layer(aggregators.get(pooling).layer_name)
        before = [numpy(w) for w in aggregator.weights]
        history = model.fit(inputs, labels, batch_size=2, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]))
        after = [numpy(w) for w in aggregator.weights]
        self.assertTrue(any(not np.array_equal(a, b) for a, b in zip(after, before)))

    @parameterized.parameters("conv_pooling", "lstm")
    def test_keras_file_round_trip(self, pooling):
        model = tiny_model(pooling=pooling, modality="flow")
        self.assert_keras_file_round_trip(model, video_inputs(model))

    @parameterized.parameters("conv_pooling", "lstm")
    def test_mixed_precision(self, pooling):
        keras.mixed_precision.set_global_policy("mixed_float16")
        model = tiny_model(pooling=pooling)
        logits = model(video_inputs(model))
        self.assertEqual(logits.dtype, "float32")
        self.assertTrue(np.all(np.isfinite(numpy(logits))))

    @parameterized.parameters("conv_pooling", "lstm")
    def test_variable_number_of_frames(self, pooling):
        model = tiny_model(pooling=pooling)
        for time in (1, 5):
            self.assertEqual(
                tuple(model(video_inputs(model, 1, time)).shape), (1, NUM_CLASSES)
            )

    @parameterized.parameters(("conv_pooling", "concat"), ("lstm", "early"))
    def test_two_stream_pooling(self, pooling, fusion):
        model = tiny_model(pooling=pooling, modality="rgb+flow", fusion=fusion)
        self.assertIsInstance(inspection.pooling_layer(model), LAYERS[pooling])
        self.assertEqual(tuple(model(video_inputs(model)).shape), (2, NUM_CLASSES))

    def test_gin_binding(self):
        gin.clear_config()
        self.addCleanup(gin.clear_config)
        gin.parse_config(
            [
                "build_model.pooling = 'lstm'",
                "build_model.backbone = 'tiny'",
                "build_model.image_size = 32",
            ]
        )
        model = action_vlad.build_model(num_classes=2)
        self.assertIsInstance(model.get_layer("lstm_pool"), frame_lstm.FrameLSTM)


if __name__ == "__main__":
    absltest.main()
