"""`predict --streaming`: a long video through the SavedModel's streaming
signatures gives `serving_default`'s result on the same samples."""

import json
import os
import shutil
import subprocess
import sys

from absl.testing import absltest
import numpy as np
import pytest
import tensorflow as tf

from avlad_tf.serving import prediction
from avlad_tf.serving import streaming_prediction
from data_prep import video_io
from tests import testing
from tests.serving import prediction_test

REPO = testing.REPO


@pytest.mark.slow
class StreamPredictTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        root = testing.class_tempdir(cls)
        # prediction_test's export: two streams, frames stored at 48 x 64, L = 2.
        for name, value in prediction_test.fixtures(root).items():
            setattr(cls, name, value)
        cls.serve, cls.config = prediction.load_export(cls.export_dir)
        cls.long = prediction_test.write_video(os.path.join(root, "long.avi"), 41)

    def test_streamed_equals_one_shot_on_the_same_samples(self):
        reports = []
        streamer = streaming_prediction.Streamer(self.export_dir)
        result = streamer.run(
            self.long, chunk_frames=4, report_every=0.4, on_report=reports.append
        )
        frames = video_io.read_video(self.long, height=48, width=64)
        samples = list(range(0, len(frames) - 2, 2))  # stride L = 2, stack 2
        self.assertEqual((result["frames"], result["samples"]), (41, len(samples)))
        indices = np.asarray(samples)[:, None] + np.arange(2)
        inputs = {
            "rgb": np.stack([frames[j][..., ::-1] for j in samples])[None],
            "flow": prediction.stacked_flow(
                frames, indices, streamer.pair_flow, size=(48, 64)
            )[None],
        }
        served = self.serve(**{k: tf.constant(v) for k, v in inputs.items()})
        expected = prediction.top_k(
            served["probabilities"].numpy()[0], self.config["class_names"]
        )
        self.assertEqual(
            [e["class"] for e in result["top5"]], [e["class"] for e in expected]
        )
        np.testing.assert_allclose(
            [e["probability"] for e in result["top5"]],
            [e["probability"] for e in expected],
            atol=1e-5,
        )
        # A report every 10 frames (0.4 s at 25 fps), then the final one.
        self.assertEqual(
            [round(r["second"], 2) for r in reports], [0.4, 0.8, 1.2, 1.6, 1.64]
        )
        self.assertEqual(result["reports"], reports)

    def test_command_line_prints_running_top5s_and_names_bad_files(self):
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "avlad_tf.predict",
                f"--model={self.export_dir}",
                "--streaming",
                "--report_every=0.8",
                self.long,
                self.corrupt,
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        )
        self.assertEqual(run.returncode, 1, run.stderr[-2000:])
        lines = run.stdout.splitlines()
        self.assertEqual(lines[0], f"{self.long} (streaming)")
        self.assertRegex(lines[1], r"^  \[00:00\.8\] class_\d\d 0\.\d{3} \| ")
        self.assertRegex(lines[2], r"^  \[00:01\.6\] ")
        self.assertRegex(lines[3], r"^  \[00:01\.6\] ")  # the final one, 41 frames
        self.assertIn(f"error: {self.corrupt}: unreadable", run.stderr)

    def test_a_video_ending_on_a_report_is_reported_once_at_its_end(self):
        path = prediction_test.write_video(
            os.path.join(self.create_tempdir().full_path, "forty.avi"), 40
        )
        reports = []
        streaming_prediction.Streamer(self.export_dir).run(
            path, chunk_frames=4, report_every=0.4, on_report=reports.append
        )
        self.assertEqual([round(r["second"], 2) for r in reports], [0.4, 0.8, 1.2, 1.6])

    def test_a_truncated_video_is_refused_by_both_paths_or_kept_under_the_flag(self):
        with open(self.long, "rb") as f:
            data = f.read()
        path = os.path.join(self.create_tempdir().full_path, "cut.avi")
        with open(path, "wb") as f:
            f.write(data[: len(data) * 6 // 10])  # the header still says 41
        streamer = streaming_prediction.Streamer(self.export_dir)
        hint = r"^truncated: the container promises 41 frames .*--keep_truncated"
        with self.assertRaisesRegex(video_io.TruncatedVideo, hint):
            streamer.run(path, report_every=100.0)
        (whole,) = prediction.predict_videos(self.export_dir, [path])
        self.assertRegex(whole["error"], hint)
        kept = streamer.run(path, report_every=100.0, keep_truncated=True)
        self.assertLess(kept["frames"], 40)
        (whole,) = prediction.predict_videos(
            self.export_dir, [path], keep_truncated=True
        )
        self.assertEqual(
            [e["class"] for e in whole["top5"]], [e["class"] for e in kept["top5"]]
        )

    def test_finishing_a_stream_fed_no_frames_is_refused(self):
        signatures = tf.saved_model.load(self.export_dir).signatures
        state = signatures["streaming_start"](batch_size=tf.constant(1))
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "fed no frames"):
            signatures["streaming_finish"](**state)

    def test_a_too_short_video_is_named(self):
        streamer = streaming_prediction.Streamer(self.export_dir)
        with self.assertRaisesRegex(prediction.VideoError, "too short: 2 frame"):
            streamer.run(self.short)

    def test_an_export_without_streaming_is_a_clear_error(self):
        copy = os.path.join(self.create_tempdir().full_path, "export")
        shutil.copytree(self.export_dir, copy)
        path = os.path.join(copy, prediction.CONFIG_ASSET)
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(dict(config, streaming=False), f)
        with self.assertRaisesRegex(ValueError, "no streaming signatures"):
            streaming_prediction.Streamer(copy)


if __name__ == "__main__":
    absltest.main()
