"""Tests of STFN's SpatioTemporalFusion against a NumPy version."""

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np
import pytest

from avlad_tf.layers import stfn
from tests import testing
from tests.layers import res_inception_test

numpy = res_inception_test.numpy
numpy_module = res_inception_test.numpy_module
module_weights = res_inception_test.module_weights
randomize = res_inception_test.randomize
NUMPY_FUSE = {
    "avg": lambda a, b: (a + b) / 2,
    "max": np.maximum,
    "multiply": np.multiply,
}


def numpy_stfn(x, motion, layer):
    """layers/stfn.py's equations, one video at a time."""
    appearance = [module_weights(m) for m in layer.appearance]
    motions = [module_weights(m) for m in layer.motion]
    fuse = NUMPY_FUSE[layer.fusion_op]
    out = []
    for rgb, flow in zip(x, motion):
        a = numpy_module(np.maximum(rgb, 0).mean(axis=(1, 2)), appearance[0])
        m = numpy_module(np.maximum(flow, 0).mean(axis=(1, 2)), motions[0])
        for wa, wm in zip(appearance[1:], motions[1:]):
            into_m = fuse(a, m) if layer.direction == "bi" else m
            a, m = numpy_module(fuse(a, m), wa, a), numpy_module(into_m, wm, m)
        out.append(fuse(a, m).mean(axis=0))
    return np.stack(out)


def built_layer(**kwargs):
    layer = stfn.SpatioTemporalFusion(**kwargs)
    layer.build((None, None, 3, 3, 8), (None, None, 2, 2, 8))
    return randomize(layer)


def inputs(seed=0, batch=2, time=5):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(batch, time, 3, 3, 8)).astype("float32"),
        rng.normal(size=(batch, time, 2, 2, 8)).astype("float32"),
    )


def fusion_model(**kwargs):
    rgb, flow = keras.Input((None, 3, 3, 8)), keras.Input((None, 2, 2, 8))
    layer = stfn.SpatioTemporalFusion(**kwargs)
    return keras.Model([rgb, flow], layer(rgb, motion_inputs=flow)), layer


class SpatioTemporalFusionTest(testing.TestCase):
    @parameterized.product(
        num_blocks=(0, 1, 2), direction=stfn.DIRECTIONS, fusion_op=stfn.FUSION_OPS
    )
    def test_matches_numpy_reference(self, num_blocks, direction, fusion_op):
        layer = built_layer(
            num_blocks=num_blocks, direction=direction, fusion_op=fusion_op
        )
        x, motion = inputs()
        got = numpy(layer(x, motion_inputs=motion, training=False))
        np.testing.assert_allclose(got, numpy_stfn(x, motion, layer), atol=1e-4)

    def test_direction_matters_only_with_blocks(self):
        # The same weights: 'uni' and 'bi' differ in what the motion
        # stream's blocks read; without blocks both are feature fusion.
        x, motion = inputs(1)
        for num_blocks, same in ((0, True), (1, False)):
            uni = built_layer(num_blocks=num_blocks, direction="uni")
            bi = built_layer(num_blocks=num_blocks, direction="bi")
            bi.set_weights(uni.get_weights())
            outputs = [numpy(l(x, motion_inputs=motion)) for l in (uni, bi)]
            self.assertEqual(np.allclose(*outputs, atol=1e-6), same, num_blocks)

    def test_blocks_and_names(self):
        layer = built_layer(num_blocks=2)
        self.assertEqual(
            [m.name for m in layer.appearance + layer.motion],
            [
                "appearance_stem",
                "appearance_block1",
                "appearance_block2",
                "motion_stem",
                "motion_block1",
                "motion_block2",
            ],
        )
        self.assertLen(layer.trainable_weights, 6 * 8)
        self.assertLen(built_layer(num_blocks=0).trainable_weights, 2 * 8)

    def test_symbolic_and_eager_calls(self):
        out = stfn.SpatioTemporalFusion()(
            keras.KerasTensor((None, None, 7, 7, 16)),
            motion_inputs=keras.KerasTensor((None, None, 7, 7, 16)),
        )
        self.assertEqual((tuple(out.shape), out.dtype), ((None, 16), "float32"))
        x, motion = inputs(2, time=1)
        out = stfn.SpatioTemporalFusion()(x, motion_inputs=motion)
        self.assertEqual(tuple(out.shape), (2, 8))

    def test_serialization_round_trip(self):
        layer = stfn.SpatioTemporalFusion(
            num_blocks=1,
            direction="uni",
            fusion_op="multiply",
            kernel_sizes=(3,),
            filters=2,
            weight_decay=1e-4,
            name="res_inception_pool",
        )
        self.assert_serialization_round_trip(layer)
        config = layer.get_config()
        self.assertEqual(
            [config[k] for k in ("num_blocks", "direction", "fusion_op", "filters")],
            [1, "uni", "multiply", 2],
        )

    def test_keras_file_round_trip(self):
        model, _ = fusion_model(direction="uni", fusion_op="max")
        randomize(model)
        self.assert_keras_file_round_trip(model, list(inputs(3)))

    @parameterized.parameters(True, False)
    @pytest.mark.slow
    def test_fit_step(self, jit_compile):
        model, layer = fusion_model(num_blocks=1)
        model.compile(optimizer="adam", loss="mse", jit_compile=jit_compile)
        before = [numpy(w) for w in layer.trainable_weights]
        history = model.fit(list(inputs(4)), np.ones((2, 8)), batch_size=2, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]))
        moved = [
            not np.array_equal(numpy(w), b)
            for w, b in zip(layer.trainable_weights, before)
        ]
        self.assertTrue(all(moved))

    @parameterized.parameters(*stfn.FUSION_OPS)
    @pytest.mark.slow
    def test_mixed_precision(self, fusion_op):
        keras.mixed_precision.set_global_policy("mixed_float16")
        model, layer = fusion_model(fusion_op=fusion_op)
        out = model(list(inputs(5)))
        self.assertEqual(layer.compute_dtype, "float16")
        self.assertTrue(np.all(np.isfinite(numpy(out))))
        model.compile(optimizer="adam", loss="mse")
        model.fit(list(inputs(6)), np.ones((2, 8)), batch_size=2, verbose=0)


class SpatioTemporalFusionErrorTest(testing.TestCase):
    @parameterized.parameters(-1, 1.0, True, None)
    def test_bad_num_blocks(self, num_blocks):
        with self.assertRaisesRegex(ValueError, "^num_blocks must be an int >= 0"):
            stfn.SpatioTemporalFusion(num_blocks=num_blocks)

    def test_bad_direction(self):
        with self.assertRaisesRegex(ValueError, r"^direction must be one of \('uni'"):
            stfn.SpatioTemporalFusion(direction="both")

    def test_bad_fusion_op(self):
        with self.assertRaisesRegex(ValueError, r"^fusion_op must be one of \('avg'"):
            stfn.SpatioTemporalFusion(fusion_op="sum")

    def test_bad_module_argument(self):
        with self.assertRaisesRegex(ValueError, "filters must be a positive int"):
            stfn.SpatioTemporalFusion(filters=0)

    def test_streams_of_other_channels(self):
        with self.assertRaisesRegex(ValueError, "must have the inputs' channels"):
            stfn.SpatioTemporalFusion().build((2, 3, 7, 7, 8), (2, 3, 7, 7, 4))

    def test_motion_inputs_of_wrong_rank(self):
        with self.assertRaisesRegex(ValueError, "motion_inputs expects inputs"):
            stfn.SpatioTemporalFusion().build((2, 3, 7, 7, 8), (2, 7, 7, 8))


if __name__ == "__main__":
    absltest.main()
