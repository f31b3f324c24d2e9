"""`backbones.c3d`: C3D's layout, weights, time steps and pool5's rounding,
and C3D as ActionVLAD's backbone (docs/CLIP_MODELS.md)."""

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np

from avlad_tf.layers import pixels
from avlad_tf.models import action_vlad
from avlad_tf.models import backbones
from avlad_tf.models import inspection
from avlad_tf.models import streamed
from avlad_tf.models.backbones import c3d
from tests import testing

TINY = dict(width_divisor=32)


def clip(frames=16, size=112, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (1, frames, size, size, channels)).astype("float32")


def stream_model(modality="rgb", backbone="tiny_c3d", **kwargs):
    settings = dict(num_classes=5, image_size=32, flow_stack=2, num_clusters=4)
    settings.update(kwargs)
    return action_vlad.build_model(modality=modality, backbone=backbone, **settings)


def numpy_of(x):
    return keras.ops.convert_to_numpy(x)


class C3DTest(testing.TestCase):
    def test_alone_has_the_papers_weights(self):
        # 8 convs 3x3x3 (27,655,936), fc6 on 512x4x4 (33,558,528), fc7
        # (16,781,312) and Sports-1M's 487-way classifier (1,995,239).
        model = stream_model(
            backbone="c3d",
            image_size=112,
            endpoint="fc7",
            pooling="two_stream",
            num_classes=c3d.SPORTS1M_CLASSES,
        )
        self.assertEqual(model.get_layer("rgb_backbone").count_params(), 77_995_776)
        self.assertEqual(model.count_params(), 79_991_015)
        kernels = {
            layer.name: tuple(layer.kernel.shape)
            for layer in model.get_layer("rgb_backbone").layers
            if hasattr(layer, "kernel")
        }
        self.assertEqual(kernels["conv1a"], (3, 3, 3, 3, 64))
        self.assertEqual(kernels["conv5b"], (3, 3, 3, 512, 512))
        self.assertEqual(kernels["fc6"], (1, 4, 4, 512, 4096))

    @parameterized.parameters(
        # (endpoint, shape of a 16-frame 112 px clip's): pool1 keeps time,
        # pool2..pool5 halve it; pool5 rounds 7x7 up to 4x4.
        ("conv1a", (1, 16, 112, 112, 2)),
        ("pool1", (1, 16, 56, 56, 2)),
        ("pool4", (1, 2, 7, 7, 16)),
        ("conv5b", (1, 2, 7, 7, 16)),
        ("pool5", (1, 1, 4, 4, 16)),
        ("fc6", (1, 1, 1, 1, 128)),
        ("fc7", (1, 1, 1, 1, 128)),
    )
    def test_endpoint_shapes(self, endpoint, shape):
        model = c3d.build_c3d(endpoint=endpoint, **TINY)
        self.assertEqual(tuple(model(clip()).shape), shape)

    @parameterized.parameters((8, 1, 1), (15, 2, 1), (32, 4, 2), (40, 5, 3))
    def test_time_steps_round_up(self, frames, conv5b_steps, fc_steps):
        for endpoint, steps in (("conv5b", conv5b_steps), ("fc7", fc_steps)):
            model = c3d.build_c3d(endpoint=endpoint, image_size=32, **TINY)
            out = model(clip(frames=frames, size=32))
            self.assertEqual(out.shape[1], steps, endpoint)

    def test_pool5_rounds_up_as_caffe(self):
        # Caffe's windows start at row 0 and the last one holds row 6 alone.
        model = c3d.build_c3d(endpoint="pool5", **TINY)
        both = keras.Model(
            model.input, [model.get_layer("relu5b").output, model.output]
        )
        relu5b, pool5 = (numpy_of(x) for x in both(clip(seed=1)))
        padded = np.pad(relu5b, [(0, 0), (0, 0), (0, 1), (0, 1), (0, 0)], "edge")
        expected = padded.reshape(1, 1, 2, 4, 2, 4, 2, -1).max(axis=(2, 4, 6))
        np.testing.assert_allclose(pool5, expected, rtol=1e-6)

    def test_endpoints_are_pre_relu_convolutions(self):
        features = numpy_of(c3d.build_c3d(endpoint="conv5b", **TINY)(clip()))
        self.assertLess(features.min(), 0.0)

    def test_bad_settings_are_refused(self):
        with self.assertRaisesRegex(ValueError, "Unknown C3D endpoint 'conv5c'"):
            c3d.build_c3d(endpoint="conv5c")
        with self.assertRaisesRegex(ValueError, "width_divisor"):
            c3d.build_c3d(width_divisor=0)


class C3DBackboneTest(testing.TestCase):
    def test_rgb_and_flow_maps_and_the_stage_2_block(self):
        rgb, flow = stream_model("rgb"), stream_model("flow")
        features = inspection.feature_model(rgb)({"rgb": clip(frames=16, size=32)})
        self.assertEqual(tuple(features.shape), (1, 2, 2, 2, 32))
        stacks = clip(frames=8, size=32, channels=4)  # 16 flow fields
        features = inspection.feature_model(flow)({"flow": stacks})
        self.assertEqual(tuple(features.shape), (1, 2, 2, 2, 32))
        backbone = rgb.get_layer("rgb_backbone")
        self.assertEqual(
            [l.name for l in backbones.pooled_block_layers(backbone)],
            ["conv5a", "conv5b"],
        )
        for endpoint in ("fc6", "fc7"):
            backbone = stream_model(endpoint=endpoint, pooling="two_stream")
            block = backbones.pooled_block_layers(backbone.get_layer("rgb_backbone"))
            self.assertEqual([l.name for l in block], [endpoint])
        self.assertEqual(pixels.input_rule_of(rgb), "release_vgg")

    def test_what_a_clip_backbone_cannot_do_is_refused_in_one_line(self):
        model = stream_model()
        self.assertTrue(inspection.mixes_frames(model))
        with self.assertRaisesRegex(ValueError, "classifies whole videos only"):
            streamed.StreamedModel(model)
        with self.assertRaisesRegex(ValueError, r"evaluate.num_crops = 1"):
            inspection.check_crops(model, 5)
        with self.assertRaisesRegex(ValueError, "C3D has none of"):
            stream_model(weights="imagenet")

    def test_weights_from_the_backbones_own_file(self):
        model = stream_model()
        path = self.create_tempfile("c3d.weights.h5").full_path
        model.get_layer("rgb_backbone").save_weights(path)
        again = stream_model(weights=path)
        video = {"rgb": clip(frames=4, size=32)}
        np.testing.assert_allclose(
            numpy_of(inspection.feature_model(again)(video)),
            numpy_of(inspection.feature_model(model)(video)),
            rtol=1e-6,
        )


if __name__ == "__main__":
    absltest.main()
