"""Tests of `avlad_tf.serving.prediction` (and the program `avlad_tf.predict`) on real
video files written with OpenCV."""

import contextlib
import io
import json
import os
import subprocess
import sys

from absl.testing import absltest
import cv2
import numpy as np
import pytest
import tensorflow as tf

from avlad_tf import predict
from avlad_tf.data import schema
from avlad_tf.serving import prediction
from avlad_tf.serving import saved_model as export
from data_prep import flow as flow_lib
from data_prep import video_io
from tests import fake_data
from tests import testing
from tests.serving import saved_model_test

REPO = testing.REPO
STORED_SIZE = (48, 64)  # the training data's frame size, (H, W)


def write_video(path, num_frames, *, fourcc="MJPG", size=(60, 80)):
    """A square moving right over a gradient, so TV-L1 sees real motion."""
    height, width = size
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), 25, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {fourcc} to {path}")
    background = np.linspace(0, 200, width, dtype=np.uint8)[None, :, None]
    for i in range(num_frames):
        frame = np.broadcast_to(background, (height, width, 3)).copy()
        frame[15:35, 2 * i : 2 * i + 20] = (20, 140, 250)
        writer.write(frame)
    writer.release()
    return path


def fixtures(root):
    """An untrained two-stream export (frames stored at STORED_SIZE, L = 2)
    and the test videos: `{"export_dir", "avi", "mp4", "short", "corrupt"}`."""
    data_dir = fake_data.write_fake_dataset(
        os.path.join(root, "data"),
        num_videos=1,
        splits=("test",),
        height=STORED_SIZE[0],
        width=STORED_SIZE[1],
    )
    workdir = saved_model_test.make_workdir(
        os.path.join(root, "run"),
        ("rgb", "flow"),
        data_dir=data_dir,
        fuse_weights=(1, 2),
    )
    videos = os.path.join(root, "videos")
    os.makedirs(videos)
    corrupt = os.path.join(videos, "corrupt.avi")
    with open(corrupt, "wb") as f:
        f.write(np.random.default_rng(0).bytes(5000))
    return {
        "export_dir": export.export(workdir=workdir),
        "avi": write_video(os.path.join(videos, "walk.avi"), 20),
        "mp4": write_video(
            os.path.join(videos, "run.mp4"), 16, fourcc="mp4v", size=(72, 96)
        ),
        # Flow stacks of 2 need 3 frames.
        "short": write_video(os.path.join(videos, "short.avi"), 2),
        "corrupt": corrupt,
    }


@pytest.mark.slow
class PredictTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for name, value in fixtures(testing.class_tempdir(cls)).items():
            setattr(cls, name, value)
        cls.serve, cls.config = prediction.load_export(cls.export_dir)

    def test_command_line_reports_bad_files_and_continues(self):
        paths = [self.avi, self.corrupt, self.short, self.mp4]
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "avlad_tf.predict",
                "--model",
                self.export_dir,
                *paths,
                "--json",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        )
        self.assertEqual(run.returncode, 1, run.stderr[-2000:])
        results = json.loads(run.stdout)["results"]
        self.assertEqual([r["video"] for r in results], paths)
        good = [results[0], results[3]]
        for result in good:
            self.assertNotIn("error", result)
            probabilities = [e["probability"] for e in result["top5"]]
            # 3 classes, so "top 5" is all of them: a distribution, sorted.
            self.assertLen(probabilities, 3)
            self.assertAlmostEqual(sum(probabilities), 1.0, places=5)
            self.assertEqual(probabilities, sorted(probabilities, reverse=True))
            self.assertCountEqual(
                [e["class"] for e in result["top5"]], self.config["class_names"]
            )
            self.assertGreater(result["seconds"]["flow"], 0)
        self.assertRegex(results[1]["error"], "unreadable")
        self.assertRegex(results[2]["error"], "too short: 2 frame")
        self.assertIn(f"error: {self.corrupt}: unreadable", run.stderr)
        self.assertIn(f"error: {self.short}: too short", run.stderr)

    def test_text_output(self):
        results = prediction.predict_videos(self.export_dir, [self.avi])
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            predict._print_text(results)  # pylint: disable=protected-access
        lines = out.getvalue().splitlines()
        self.assertEqual(lines[0], self.avi)
        self.assertLen(lines, 4)
        best = results[0]["top5"][0]
        self.assertEqual(
            lines[1].split(), ["1.", f"{best['probability']:.4f}", best["class"]]
        )

    def test_inputs_follow_evaluation_sampling_and_flow_only_where_needed(self):
        calls = []
        pair_flow = prediction.flow_function(self.config)

        def counting(firsts, seconds):
            calls.append(len(firsts))
            return pair_flow(firsts, seconds)

        inputs, seconds = prediction.prepare_inputs(self.avi, self.config, counting)
        self.assertCountEqual(seconds, ["decode", "flow"])

        capture = cv2.VideoCapture(self.avi)
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(
                cv2.resize(frame, STORED_SIZE[::-1], interpolation=cv2.INTER_AREA)
            )
        # n = 20, T = 3: RGB stride ⌊19/2⌋ = 9; flow stride ⌊(20 − 2)/3⌋ = 6.
        rgb_expected = np.stack([frames[i][..., ::-1] for i in (0, 9, 18)])
        np.testing.assert_array_equal(inputs["rgb"][0], rgb_expected)
        # TV-L1 ran once per flow frame the stacks use: 6 of the 19 pairs.
        self.assertEqual(sum(calls), 6)
        grey = flow_lib.greys(frames)
        flow_x = {
            j: schema.quantize_flow(pair_flow(grey[j : j + 1], grey[j + 1 : j + 2])[0])
            for j in (0, 1, 6, 7, 12, 13)
        }
        stack = inputs["flow"][0]  # (T, H, W, 2L)
        self.assertEqual(stack.shape, (3,) + STORED_SIZE + (4,))
        for sample, start in enumerate((0, 6, 12)):
            for j in range(2):  # interleaved x1, y1, x2, y2
                np.testing.assert_array_equal(
                    stack[sample, ..., 2 * j : 2 * j + 2], flow_x[start + j]
                )
        self.assertGreater(np.abs(stack.astype(int) - 128).max(), 10)

    def test_native_size_flow_is_computed_on_the_decoded_frames(self):
        # A model trained on flow of the videos' own size (UCF101's, as
        # data_prep makes it): TV-L1 on the 60 x 80 frames, then the
        # quantised planes resized to the stored 48 x 64, values unchanged.
        config = dict(self.config, flow=dict(self.config["flow"], frame_size="native"))
        pair_flow, sizes = prediction.flow_function(config), []

        def recording(firsts, seconds):
            sizes.append(firsts.shape[1:])
            return pair_flow(firsts, seconds)

        inputs, _ = prediction.prepare_inputs(self.avi, config, recording)
        self.assertEqual(set(sizes), {(60, 80)})
        self.assertEqual(inputs["rgb"].shape[2:4], STORED_SIZE)
        native = video_io.read_video(self.avi, height=None, width=None)
        grey = flow_lib.greys(native[:2])
        planes = schema.quantize_flow(pair_flow(grey[:1], grey[1:])[0])
        # Resized as data_prep resizes a release flow folder's images.
        expected = video_io.resize(planes[..., 0], height=48, width=64)
        np.testing.assert_array_equal(inputs["flow"][0, 0, ..., 0], expected)
        stored = prediction.prepare_inputs(self.avi, self.config, pair_flow)[0]
        self.assertFalse(np.array_equal(inputs["flow"], stored["flow"]))

    def test_either_flow_backend_predicts_the_same(self):
        keras_result, opencv_result = (
            prediction.predict_videos(self.export_dir, [self.avi], flow_backend=b)[0]
            for b in ("keras", "opencv")
        )
        # Class by class: the untrained model's classes are nearly tied, so
        # their order may swap where the probabilities agree.
        found = [
            {e["class"]: e["probability"] for e in result["top5"]}
            for result in (keras_result, opencv_result)
        ]
        self.assertCountEqual(found[0], found[1])
        for name, probability in found[0].items():
            self.assertAlmostEqual(probability, found[1][name], delta=0.01, msg=name)

    def test_opencv_cannot_serve_the_cuda_family(self):
        config = dict(self.config, flow=dict(self.config["flow"], preset="opencv_cuda"))
        with self.assertRaisesRegex(ValueError, "--flow_backend=keras"):
            prediction.flow_function(config, backend="opencv")

    def test_frames_signature_serves_a_decoded_video_as_predict_does(self):
        frames = video_io.read_video(
            self.avi, height=STORED_SIZE[0], width=STORED_SIZE[1]
        )
        rgb = np.stack(frames)[None, ..., ::-1]  # BGR -> RGB, [1, N, H, W, 3]
        served = tf.saved_model.load(self.export_dir).signatures["frames"](
            frames=tf.constant(np.ascontiguousarray(rgb))
        )
        (result,) = prediction.predict_videos(self.export_dir, [self.avi])
        probabilities = served["probabilities"].numpy()[0]
        top = prediction.top_k(probabilities, self.config["class_names"])
        self.assertEqual(
            [e["class"] for e in top], [e["class"] for e in result["top5"]]
        )
        np.testing.assert_allclose(
            [e["probability"] for e in top],
            [e["probability"] for e in result["top5"]],
            atol=1e-5,
        )

    def test_a_directory_is_named_as_one(self):
        folder = self.create_tempdir().full_path
        (result,) = prediction.predict_videos(self.export_dir, [folder])
        self.assertEqual(result["error"], "a directory, not a video file")

    def test_the_saved_model_names_bad_inputs(self):
        serve = tf.saved_model.load(self.export_dir).signatures["serving_default"]
        frames = np.zeros((1, 3, 48, 64, 3), np.uint8)
        flow = np.zeros((1, 3, 48, 64, 4), np.uint8)
        cases = (
            (frames[:0], flow[:0], r"input rgb has no videos \(B = 0\)"),
            (
                frames[:, :0],
                flow[:, :0],
                r"input rgb has videos of no frames \(T = 0\)",
            ),
            (
                frames,
                flow[:, :2],
                r"inputs rgb and flow need the same videos and frames",
            ),
        )
        for rgb, flow_stacks, message in cases:
            with self.assertRaisesRegex(tf.errors.InvalidArgumentError, message):
                serve(rgb=tf.constant(rgb), flow=tf.constant(flow_stacks))

    def test_not_an_export_is_a_clear_error(self):
        with self.assertRaisesRegex(FileNotFoundError, "not an avlad_tf export"):
            prediction.load_export(self.create_tempdir().full_path)


class TopKTest(absltest.TestCase):
    def test_ranks_by_probability(self):
        top = prediction.top_k(np.array([0.1, 0.6, 0.3]), ["a", "b", "c"], k=2)
        self.assertEqual([e["class"] for e in top], ["b", "c"])

    def test_non_finite_scores_are_an_error_not_a_ranking(self):
        with self.assertRaisesRegex(prediction.VideoError, "not finite"):
            prediction.top_k(np.array([np.nan, 0.5, 0.5]), ["a", "b", "c"])


if __name__ == "__main__":
    absltest.main()
