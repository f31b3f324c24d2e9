"""Tests for evaluation (`avlad_tf.evaluation.scoring`, `python -m avlad_tf.evaluate`).

A workdir is evaluated from its run record alone: dataset, input settings and
crops come from `run.json`.
"""

import os
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized
import gin
import h5py
import numpy as np
import pytest

from avlad_tf.data import video_input
from avlad_tf.evaluation import score_files
from avlad_tf.evaluation import scoring
from tests import fake_data
from tests import fake_run
from tests import testing

_NUM_CLASSES = 3
_NUM_VIDEOS = 5
REPO = testing.REPO


class EvaluateTest(parameterized.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        root = testing.class_tempdir(cls)
        cls.data_dir = fake_data.write_fake_dataset(
            os.path.join(root, "data"),
            num_videos=_NUM_VIDEOS,
            num_frames=8,
            num_classes=_NUM_CLASSES,
            num_shards=2,
        )
        cls.multi_dir = fake_data.write_fake_dataset(
            os.path.join(root, "multi"),
            num_videos=_NUM_VIDEOS,
            num_frames=8,
            num_classes=_NUM_CLASSES,
            multi_label=True,
        )
        gin.clear_config()
        cls.workdir = os.path.join(root, "work")
        for stream in ("rgb", "flow"):
            fake_run.save_model(cls.workdir, stream, num_classes=_NUM_CLASSES)
        fake_run.write_record(cls.workdir, data_dir=cls.data_dir, num_crops={"flow": 5})
        cls.root = root

    def setUp(self):
        super().setUp()
        gin.clear_config()
        self.addCleanup(gin.clear_config)

    def _workdir(self, name, **record):
        """A copy of the models with another run record."""
        workdir = os.path.join(self.root, name)
        for stream in ("rgb", "flow"):
            fake_run.save_model(workdir, stream, num_classes=_NUM_CLASSES)
        fake_run.write_record(workdir, **record)
        return workdir

    @parameterized.parameters(("rgb", 1), ("flow", 5))
    def test_recorded_crops_and_record_order(self, stream, num_crops):
        result = scoring.evaluate(workdir=self.workdir, stream=stream, batch_size=2)
        path = score_files.scores_path(self.workdir, stream, "test", num_crops)
        self.assertEqual(result["scores_path"], path)
        logits, ids, labels = score_files.read_scores(path)
        self.assertEqual(logits.shape, (_NUM_VIDEOS, _NUM_CLASSES))
        # Shard order, then file order (fake_data deals videos to 2 shards).
        order = [0, 2, 4, 1, 3]
        self.assertEqual(ids, [f"test/video{v}" for v in order])
        np.testing.assert_array_equal(labels, np.asarray(order) % _NUM_CLASSES)
        self.assertEqual(result["num_videos"], _NUM_VIDEOS)

    def test_dataset_and_input_settings_come_from_the_record(self):
        # The record's settings reach the pipeline: num_frames = 4 of 8
        # stored frames, 24-pixel crops.
        seen = {}

        def spy(**kwargs):
            seen.update(kwargs)
            return video_input.make_dataset(**kwargs)

        scoring.evaluate(workdir=self.workdir, stream="rgb", make_dataset_fn=spy)
        self.assertEqual(seen["data_dir"], os.path.abspath(self.data_dir))
        self.assertEqual((seen["num_frames"], seen["image_size"]), (4, 24))
        self.assertEqual(tuple(seen["resize_to"]), (32, 40))

    @parameterized.parameters(("rgb", 1), ("flow", 5))
    @pytest.mark.slow
    def test_on_device_pixels_match_host_pixels(self, stream, num_crops):
        workdir = self._workdir(
            f"parity_{stream}",
            data_dir=self.data_dir,
            input_settings=dict(
                fake_run.SMALL_INPUT,
                bgr_means=(1.0, 2.0, 3.0),
                convert_before_resize=False,
            ),
        )
        found = {}
        for on_device in (False, True):
            result = scoring.evaluate(
                workdir=workdir,
                stream=stream,
                num_crops=num_crops,
                batch_size=2,
                normalize_on_device=on_device,
            )
            found[on_device] = score_files.read_scores(result["scores_path"])
        # The same logits to the bit: ReleasePixels looks the host's values up.
        np.testing.assert_array_equal(found[True][0], found[False][0])
        self.assertEqual(found[True][1], found[False][1])

    def test_deterministic_and_gin_configurable(self):
        gin.bind_parameter("evaluate.split", "train")
        gin.bind_parameter("evaluate.batch_size", _NUM_VIDEOS)
        first = scoring.evaluate(workdir=self.workdir, stream="rgb")
        self.assertEqual(first["split"], "train")
        a = score_files.read_scores(first["scores_path"])[0]
        scoring.evaluate(workdir=self.workdir, stream="rgb")
        np.testing.assert_array_equal(
            a, score_files.read_scores(first["scores_path"])[0]
        )

    def test_multi_label_reports_map(self):
        workdir = self._workdir(
            "multi", data_dir=self.multi_dir, evaluate_split="train"
        )
        result = scoring.evaluate(workdir=workdir, stream="rgb", batch_size=2)
        self.assertContainsSubset({"top1", "mAP", "wAP"}, set(result))
        with h5py.File(result["scores_path"], "r") as f:
            self.assertEqual(f["labels"].shape, (_NUM_VIDEOS, _NUM_CLASSES))
            self.assertEqual(int(np.sum(f["labels"][()])), 2 * _NUM_VIDEOS)

    def _cli(self, *args):
        return subprocess.run(
            [sys.executable, "-m", "avlad_tf.evaluate", *args],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        )

    @pytest.mark.slow
    def test_cli_evaluates_every_stream_from_the_workdir_alone(self):
        out = self._cli(
            f"--workdir={self.workdir}", "--gin_bindings=evaluate.batch_size = 5"
        )
        self.assertEqual(out.returncode, 0, out.stderr[-2000:])
        lines = out.stdout.splitlines()
        self.assertLen(lines, 2)
        self.assertRegex(
            lines[0],
            r"^rgb test 1 crop\(s\), 5 videos: top1 \d+\.\d\d, "
            r"top5 100\.00, mean_class_accuracy",
        )
        self.assertTrue(lines[1].startswith("flow test 5 crop(s)"))

    @pytest.mark.slow
    def test_cli_refuses_input_bindings_that_contradict_the_run(self):
        out = self._cli(
            f"--workdir={self.workdir}", "--gin_bindings=make_dataset.num_frames = 9"
        )
        self.assertEqual(out.returncode, 1)
        last = out.stderr.strip().splitlines()[-1]
        self.assertRegex(
            last,
            r"^evaluate: error: make_dataset.num_frames = 9 "
            r"differs from the rgb stream's recorded 4 .*run\.json",
        )

    def test_missing_model_names_streams(self):
        with self.assertRaisesRegex(
            FileNotFoundError, r"fused/model.keras does not exist .*'rgb'"
        ):
            scoring.load_stream_model(self.workdir, "fused")

    def test_missing_record_says_what_to_do(self):
        with self.assertRaisesRegex(
            FileNotFoundError, r"run\.json does not exist.*rerun its train"
        ):
            scoring.evaluate(workdir=self.create_tempdir().full_path, stream="rgb")


if __name__ == "__main__":
    absltest.main()
