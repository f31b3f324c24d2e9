"""build_model with STFN: `pooling='res_inception'` and `fusion='stfn'`.

The JAX run of both layers and both models is in
tests/models/aggregators_jax_test.py.
"""

from absl.testing import absltest
from absl.testing import parameterized
import gin
import keras
import numpy as np
import pytest

from avlad_tf.layers import res_inception
from avlad_tf.layers import stfn
from avlad_tf.models import action_vlad
from avlad_tf.models import inspection
from avlad_tf.training import trainable
from tests import testing
from tests.models import action_vlad_test

NUM_CLASSES = action_vlad_test.NUM_CLASSES
TINY_DEPTH = 16  # the tiny backbone's conv5_3 channels
STFN = dict(modality="rgb+flow", fusion="stfn", pooling="res_inception")
# Each number of blocks, direction and fusion op at least once.
SETTINGS = (
    ("feature_fusion", 0, "bi", "avg"),
    ("one_uni_block_max", 1, "uni", "max"),
    ("two_bi_blocks_multiply", 2, "bi", "multiply"),
)
tiny_model = action_vlad_test.tiny_model
video_inputs = action_vlad_test.video_inputs
numpy = action_vlad_test.numpy
# Per module: four branch kernels and the projection's.
MODULE_KERNELS = 5


def stfn_model(num_blocks=2, direction="bi", fusion_op="avg", options=None, **kwargs):
    head = {
        "stfn_fusion.num_blocks": num_blocks,
        "stfn_fusion.direction": direction,
        "stfn_fusion.fusion_op": fusion_op,
    }
    return tiny_model(options={**head, **(options or {})}, **STFN, **kwargs)


def compile_for_stage(model, stage):
    trainable.set_stage(model, stage)
    model.compile(
        optimizer="adam",
        jit_compile=True,
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
    )


class STFNModelTest(testing.TestCase):
    @parameterized.named_parameters(*SETTINGS)
    @pytest.mark.slow
    def test_builds_fits_and_saves(self, num_blocks, direction, fusion_op):
        model = stfn_model(num_blocks, direction, fusion_op)
        layer = inspection.pooling_layer(model)
        self.assertIsInstance(layer, stfn.SpatioTemporalFusion)
        self.assertEqual(
            (layer.name, layer.num_blocks, layer.direction, layer.fusion_op),
            ("res_inception_pool", num_blocks, direction, fusion_op),
        )
        inputs = video_inputs(model)
        outputs = inspection.endpoints_model(model)(inputs)
        self.assertEqual(set(outputs), {"logits", "descriptor"})
        self.assertEqual(tuple(outputs["descriptor"].shape), (2, TINY_DEPTH))
        self.assertEqual(tuple(outputs["logits"].shape), (2, NUM_CLASSES))
        compile_for_stage(model, 2)
        before = [numpy(w) for w in layer.trainable_weights]
        labels = np.eye(NUM_CLASSES, dtype="float32")[[0, 3]]
        history = model.fit(inputs, labels, batch_size=2, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]))
        after = [numpy(w) for w in layer.trainable_weights]
        self.assertTrue(all(not np.array_equal(a, b) for a, b in zip(after, before)))
        self.assert_keras_file_round_trip(model, inputs)

    def test_paper_defaults(self):
        layer = stfn_model().get_layer("res_inception_pool")
        self.assertEqual(
            (layer.num_blocks, layer.direction, layer.fusion_op), (2, "bi", "avg")
        )
        # F = D // 4 per branch, on VGG16's conv5_3 128.
        for backbone, width in (("tiny", TINY_DEPTH // 4), ("vgg16", 128)):
            stem = stfn_model(backbone=backbone).get_layer("res_inception_pool")
            self.assertEqual(stem.appearance[0].branches[0].kernel.shape[-1], width)

    def test_fusion_head_dropout(self):
        # The release's 0.5 pooled dropout on fusion heads; 0 on one stream.
        self.assertEqual(stfn_model().get_layer("pooled_dropout").rate, 0.5)
        single = tiny_model(pooling="res_inception")
        self.assertEqual(single.get_layer("pooled_dropout").rate, 0.0)

    def test_reads_both_streams(self):
        model = stfn_model()
        inputs = video_inputs(model)
        for modality in ("rgb", "flow"):
            other = dict(inputs, **{modality: video_inputs(model, seed=1)[modality]})
            self.assertFalse(np.allclose(model(inputs), model(other), atol=1e-6))

    @parameterized.parameters(
        (dict(), ["rgb_backbone/block5_conv3"], "action_vlad_rgb"),
        (
            STFN,
            ["flow_backbone/block5_conv3", "rgb_backbone/block5_conv3"],
            "action_vlad_stfn",
        ),
    )
    def test_stages(self, kwargs, blocks, name):
        model = tiny_model(**{"pooling": "res_inception", **kwargs})
        # The modules start from random weights: they train from stage 1.
        first = [f"{name}/logits", f"{name}/res_inception_pool"]
        self.assertEqual(trainable.set_stage(model, 1), first)
        aggregator = model.get_layer("res_inception_pool")
        self.assertLen(model.trainable_weights, len(aggregator.trainable_weights) + 2)
        self.assertEqual(trainable.set_stage(model, 2), sorted(first + blocks))

    def test_aggregator_kernels_get_the_models_weight_decay(self):
        for kwargs, baseline, modules in (
            (dict(pooling="res_inception"), dict(pooling="avg"), 1),
            (STFN, dict(modality="rgb+flow", fusion="concat", pooling="avg"), 6),
        ):
            expected = len(tiny_model(weight_decay=5e-4, **baseline).losses)
            expected += modules * MODULE_KERNELS
            self.assertLen(tiny_model(weight_decay=5e-4, **kwargs).losses, expected)

    @parameterized.named_parameters(
        ("single", dict(pooling="res_inception")), ("stfn", STFN)
    )
    def test_mixed_precision(self, kwargs):
        keras.mixed_precision.set_global_policy("mixed_float16")
        model = tiny_model(**kwargs)
        logits = model(video_inputs(model))
        self.assertEqual(logits.dtype, "float32")
        self.assertTrue(np.all(np.isfinite(numpy(logits))))

    def test_variable_number_of_segments(self):
        model = stfn_model()
        for time in (1, 7):
            logits = model(video_inputs(model, 1, time))
            self.assertEqual(tuple(logits.shape), (1, NUM_CLASSES))

    def test_single_stream_and_late_fusion(self):
        model = tiny_model(pooling="res_inception", modality="flow")
        layer = inspection.pooling_layer(model)
        self.assertIsInstance(layer, res_inception.ResInceptionPooling)
        self.assertEqual(layer.name, "res_inception_pool")
        late = tiny_model(pooling="res_inception", modality="rgb+flow", fusion="late")
        for name in ("rgb_stream", "flow_stream"):
            pool = late.get_layer(name).get_layer("res_inception_pool")
            self.assertIsInstance(pool, res_inception.ResInceptionPooling)
        self.assertEqual(tuple(late(video_inputs(late)).shape), (2, NUM_CLASSES))

    def test_gin_bindings(self):
        gin.clear_config()
        self.addCleanup(gin.clear_config)
        gin.parse_config(
            [
                "build_model.pooling = 'res_inception'",
                "build_model.fusion = 'stfn'",
                "stfn_fusion.num_blocks = 1",
                "stfn_fusion.direction = 'uni'",
                "stfn_fusion.fusion_op = 'multiply'",
                "build_model.backbone = 'tiny'",
                "build_model.image_size = 32",
            ]
        )
        model = action_vlad.build_model(num_classes=2, modality="rgb+flow")
        layer = model.get_layer("res_inception_pool")
        self.assertEqual(
            (layer.num_blocks, layer.direction, layer.fusion_op), (1, "uni", "multiply")
        )


class STFNModelErrorTest(testing.TestCase):
    def test_stfn_needs_res_inception_pooling(self):
        message = r"needs build_model.pooling='res_inception'.*pooling='netvlad'"
        with self.assertRaisesRegex(ValueError, message):
            tiny_model(modality="rgb+flow", fusion="stfn", pooling="netvlad")

    def test_bad_num_blocks(self):
        with self.assertRaisesRegex(ValueError, "stfn_fusion.num_blocks must be"):
            stfn_model(num_blocks=-1)

    def test_bad_direction(self):
        with self.assertRaisesRegex(ValueError, "stfn_fusion.direction must be"):
            stfn_model(direction="both")

    def test_bad_fusion_op(self):
        with self.assertRaisesRegex(ValueError, "stfn_fusion.fusion_op must be"):
            stfn_model(fusion_op="sum")

    def test_no_per_step_loss(self):
        with self.assertRaisesRegex(
            ValueError, "recurrent_pooling.per_step_loss needs"
        ):
            stfn_model(options={"recurrent_pooling.per_step_loss": "softmax"})


if __name__ == "__main__":
    absltest.main()
