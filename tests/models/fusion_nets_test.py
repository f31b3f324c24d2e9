"""`backbones.fusion_nets`: Karpathy et al.'s single-frame, early, late and
slow fusion networks, their time arithmetic, and the networks as ActionVLAD's
backbones under every aggregator (docs/CLIP_MODELS.md)."""

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np

from avlad_tf.models import action_vlad
from avlad_tf.models import aggregators
from avlad_tf.models import backbones
from avlad_tf.models import frames
from avlad_tf.models import inspection
from avlad_tf.models.backbones import fusion_nets
from tests import testing

TINY = dict(width_divisor=16)


def clip(frames=10, size=32, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (1, frames, size, size, channels)).astype("float32")


def numpy_of(x):
    return keras.ops.convert_to_numpy(x)


def stream_model(modality="rgb", backbone="tiny_slow_fusion", **kwargs):
    settings = dict(num_classes=5, image_size=32, flow_stack=2, num_clusters=4)
    settings.update(kwargs)
    return action_vlad.build_model(modality=modality, backbone=backbone, **settings)


class FusionNetsTest(testing.TestCase):
    @parameterized.parameters(
        # (variant, conv1 kernel (time, f, f, in, out), stride, frames read)
        ("single_frame", (1, 11, 11, 3, 96), (1, 3, 3), 1),
        ("early_fusion", (10, 11, 11, 3, 96), (1, 3, 3), 10),
        ("late_fusion", (1, 11, 11, 3, 96), (1, 3, 3), 16),
        ("slow_fusion", (4, 11, 11, 3, 96), (2, 3, 3), 10),
    )
    def test_the_papers_layers(self, variant, conv1, strides, window):
        model = fusion_nets.build_fusion_net(variant=variant, endpoint="conv5")
        layers = {layer.name: layer for layer in model.layers}
        self.assertEqual(tuple(layers["conv1"].kernel.shape), conv1)
        self.assertEqual(tuple(layers["conv1"].strides), strides)
        time = 2 if variant == "slow_fusion" else 1
        self.assertEqual(tuple(layers["conv2"].kernel.shape), (time, 5, 5, 96, 256))
        self.assertEqual(tuple(layers["conv3"].kernel.shape), (time, 3, 3, 256, 384))
        self.assertEqual(tuple(layers["conv4"].kernel.shape), (1, 3, 3, 384, 384))
        self.assertEqual(tuple(layers["conv5"].kernel.shape), (1, 3, 3, 384, 256))
        for norm in ("norm1", "norm2"):
            config = layers[norm].get_config()
            self.assertEqual(
                [config[k] for k in ("bias", "depth", "alpha", "beta")],
                [2.0, 5, 1e-4, 0.5],
            )
        self.assertEqual(fusion_nets.min_frames(variant, "fc7"), window)

    @parameterized.parameters(
        # (variant, frames, endpoint, time steps): VALID temporal windows.
        ("slow_fusion", 10, "conv1", 4),
        ("slow_fusion", 10, "conv2", 2),
        ("slow_fusion", 10, "conv5", 1),
        ("slow_fusion", 26, "conv5", 3),
        ("early_fusion", 10, "fc7", 1),
        ("early_fusion", 25, "conv5", 16),
        ("late_fusion", 16, "fc7", 1),
        ("late_fusion", 20, "fc6", 5),
        ("late_fusion", 3, "conv5", 3),
        ("single_frame", 3, "fc7", 3),
    )
    def test_time_steps(self, variant, frames, endpoint, steps):
        model = fusion_nets.build_fusion_net(
            variant=variant, endpoint=endpoint, image_size=32, **TINY
        )
        self.assertEqual(model(clip(frames=frames)).shape[1], steps)

    def test_paper_size_maps(self):
        # 170 px: conv1 54, pool1 27, pool2 13, pool5 6 (AlexNet's 9216).
        model = fusion_nets.build_fusion_net(endpoint="fc7", **TINY)
        shapes = {
            name: tuple(model.get_layer(name).output.shape[2:])
            for name in ("conv1", "pool1", "pool2", "conv5", "pool5", "fc7")
        }
        self.assertEqual(
            shapes,
            {
                "conv1": (54, 54, 6),
                "pool1": (27, 27, 6),
                "pool2": (13, 13, 16),
                "conv5": (13, 13, 16),
                "pool5": (6, 6, 16),
                "fc7": (1, 1, 256),
            },
        )

    def test_each_slow_fusion_step_is_the_network_on_one_window(self):
        model = fusion_nets.build_fusion_net(endpoint="fc7", image_size=32, **TINY)
        video = clip(frames=18)
        steps = numpy_of(model(video))  # windows at frames 0 and 8
        np.testing.assert_allclose(steps[:, 1:], model(video[:, 8:]), atol=1e-5)

    def test_late_fusion_pairs_frames_15_apart(self):
        features = clip(frames=17, size=2, channels=3)
        pairs = numpy_of(frames.FramePairs(15)(features))
        self.assertEqual(pairs.shape, (1, 2, 2, 2, 6))
        np.testing.assert_array_equal(pairs[:, 1, ..., :3], features[:, 1])
        np.testing.assert_array_equal(pairs[:, 1, ..., 3:], features[:, 16])
        layer = frames.FramePairs(15)
        self.assertEqual(frames.FramePairs.from_config(layer.get_config()).distance, 15)

    def test_bad_settings_are_refused(self):
        with self.assertRaisesRegex(ValueError, "Unknown fusion network"):
            fusion_nets.build_fusion_net(variant="fast_fusion")
        with self.assertRaisesRegex(ValueError, "at least 32 px"):
            fusion_nets.build_fusion_net(image_size=24, **TINY)


class FusionNetsBackboneTest(testing.TestCase):
    def test_single_frame_is_a_frame_backbone(self):
        model = stream_model("flow", "tiny_single_frame")
        self.assertFalse(inspection.mixes_frames(model))
        conv1 = model.get_layer("flow_backbone").get_layer("conv1")
        self.assertEqual(tuple(conv1.kernel.shape), (1, 11, 11, 4, 6))  # 2 pairs
        features = inspection.feature_model(model)({"flow": clip(3, channels=4)})
        self.assertEqual(tuple(features.shape), (1, 3, 2, 2, 16))

    def test_clip_variants_read_flow_fields_and_train_their_top_convs(self):
        model = stream_model("flow")
        self.assertTrue(inspection.mixes_frames(model))
        features = inspection.feature_model(model)({"flow": clip(5, channels=4)})
        self.assertEqual(tuple(features.shape), (1, 1, 2, 2, 16))  # 10 fields
        block = backbones.pooled_block_layers(model.get_layer("flow_backbone"))
        self.assertEqual([l.name for l in block], ["conv3", "conv4", "conv5"])
        alone = stream_model(endpoint="fc7", pooling="two_stream")
        block = backbones.pooled_block_layers(alone.get_layer("rgb_backbone"))
        self.assertEqual([l.name for l in block], ["fc7"])

    def test_too_few_frames_and_imagenet_weights_are_refused(self):
        model = stream_model()
        with self.assertRaisesRegex(ValueError, "at least 10 time steps; received 8"):
            model({"rgb": clip(8)})
        with self.assertRaisesRegex(ValueError, "slow fusion has none of"):
            stream_model(weights="imagenet")
        with self.assertRaisesRegex(ValueError, "single frame has none of"):
            stream_model(backbone="tiny_single_frame", weights="imagenet")

    @parameterized.parameters(*sorted(aggregators.AGGREGATORS))
    def test_every_aggregator_pools_the_last_convolution(self, pooling):
        # One window (T' = 1) and three (26 frames).
        model = stream_model(pooling=pooling)
        for num_frames in (10, 26):
            logits = numpy_of(model({"rgb": clip(num_frames)}))
            self.assertEqual(logits.shape, (1, 5))
            self.assertTrue(np.all(np.isfinite(logits)), pooling)


if __name__ == "__main__":
    absltest.main()
