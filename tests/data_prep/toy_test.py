"""The embedded toy dataset: deterministic, designed, prepared for real."""

import contextlib
import io
import os
import tempfile
from unittest import mock
import uuid

from absl.testing import absltest
import cv2
import numpy as np
import tensorflow as tf

from avlad_tf import storage
from avlad_tf.data import schema
from data_prep import toy


def _grey(video):
    return np.stack([cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in video])


class ToyDesignTest(absltest.TestCase):
    def test_render_is_deterministic_in_the_seed(self):
        name = toy.CLASSES[0]
        a = toy.render_video(name, np.random.default_rng([0, 0, 1]))
        b = toy.render_video(name, np.random.default_rng([0, 0, 1]))
        c = toy.render_video(name, np.random.default_rng([1, 0, 1]))
        self.assertEqual(a.shape, (toy.NUM_FRAMES,) + toy.VIDEO_SIZE + (3,))
        np.testing.assert_array_equal(a, b)
        self.assertGreater(np.abs(a.astype(int) - c).mean(), 1.0)

    def test_appearance_classes_differ_in_colour_not_in_grey(self):
        def rng():
            return np.random.default_rng(5)  # same nuisances for both

        red = toy.render_video("red_right_then_green_up", rng())
        blue = toy.render_video("blue_right_then_green_up", rng())
        self.assertGreater(np.abs(red.astype(int) - blue).max(), 100)
        # What the flow sees (grey levels) is the same up to rounding.
        self.assertLessEqual(np.abs(_grey(red).astype(int) - _grey(blue)).max(), 2)

    def test_motion_classes_differ_in_direction_not_in_looks(self):
        def rng():
            return np.random.default_rng(5)

        right = toy.render_video("red_right_then_green_up", rng())
        left = toy.render_video("red_left_then_green_up", rng())
        self.assertGreater(np.abs(right.astype(int) - left).max(), 100)
        # Over the frames, the left mover visits the same positions: the
        # time-averaged images (what a frame-set sees) agree closely.
        diff = np.abs(right.mean(0) - left.mean(0))
        self.assertLess(diff.mean(), 0.5)

    def test_every_class_name_parses(self):
        self.assertLen(toy.CLASSES, 8)
        self.assertEqual(toy.CLASSES, sorted(toy.CLASSES))
        for name in toy.CLASSES:
            toy.render_video(name, np.random.default_rng(0))

    def test_video_files_are_identical_for_a_seed(self):
        with (
            mock.patch.object(toy, "CLASSES", toy.CLASSES[:2]),
            mock.patch.object(toy, "NUM_TRAIN", 1),
            mock.patch.object(toy, "NUM_TEST", 1),
        ):
            first = toy.write_videos(self.create_tempdir().full_path, seed=3)
            second = toy.write_videos(self.create_tempdir().full_path, seed=3)
        for a, b in zip(first, second):
            with open(a, "rb") as fa, open(b, "rb") as fb:
                self.assertEqual(fa.read(), fb.read())


class EnsureToyDatasetTest(absltest.TestCase):
    def test_small_toy_dataset_is_prepared_once(self):
        data_dir = os.path.join(self.create_tempdir().full_path, "toy")
        with (
            mock.patch.object(toy, "CLASSES", toy.CLASSES[:2]),
            mock.patch.object(toy, "NUM_TRAIN", 2),
            mock.patch.object(toy, "NUM_TEST", 1),
            mock.patch.object(toy, "NUM_FRAMES", 12),
        ):
            self.assertEqual(toy.ensure_toy_dataset(data_dir, workers=1), data_dir)
            metadata = schema.read_metadata(data_dir)
            mtime = os.path.getmtime(os.path.join(data_dir, "metadata.json"))
            toy.ensure_toy_dataset(data_dir)  # already there: untouched
        self.assertEqual(
            mtime, os.path.getmtime(os.path.join(data_dir, "metadata.json"))
        )
        self.assertEqual(metadata["labels"], toy.CLASSES[:2])
        self.assertEqual(
            (metadata["frame_height"], metadata["frame_width"]), toy.FRAME_SIZE
        )
        self.assertEqual(metadata["splits"]["train"]["num_records"], 4)
        self.assertEqual(metadata["splits"]["test"]["num_records"], 2)
        shard = metadata["splits"]["test"]["shards"][0]["file"]
        records = list(tf.data.TFRecordDataset(os.path.join(data_dir, shard)))
        self.assertLen(records, 2)
        parsed = schema.parse_sequence_example(records[1])
        self.assertEqual(
            parsed[schema.VIDEO_ID_KEY].numpy().decode(), f"{toy.CLASSES[1]}/002"
        )
        self.assertEqual(list(parsed[schema.LABEL_INDEX_KEY].numpy()), [1])
        self.assertLen(parsed[schema.FLOW_X_KEY], 11)
        frame = tf.io.decode_jpeg(parsed[schema.RGB_KEY][0])
        self.assertEqual(tuple(frame.shape), toy.FRAME_SIZE + (3,))
        # Data of another generator version is refused, never reused.
        self.assertEqual(metadata["toy_version"], toy.TOY_VERSION)
        with mock.patch.object(toy, "TOY_VERSION", toy.TOY_VERSION + 1):
            with self.assertRaisesRegex(
                ValueError, f"{data_dir} holds toy data of generator version"
            ):
                toy.ensure_toy_dataset(data_dir)

    def test_a_toy_dataset_at_a_url_leaves_nothing_on_local_disk(self):
        # ram:// stands in for a bucket; OpenCV writes each video to a local
        # temporary file first, which must be gone afterwards.
        data_dir = f"ram://toy_test/{uuid.uuid4().hex}/toy"
        staging = self.create_tempdir().full_path
        stderr = io.StringIO()
        with (
            mock.patch.object(toy, "CLASSES", toy.CLASSES[:2]),
            mock.patch.object(toy, "NUM_TRAIN", 1),
            mock.patch.object(toy, "NUM_TEST", 1),
            mock.patch.object(toy, "NUM_FRAMES", 12),
            mock.patch.object(tempfile, "tempdir", staging),
            contextlib.redirect_stderr(stderr),
        ):
            self.assertEqual(toy.ensure_toy_dataset(data_dir, workers=2), data_dir)
            self.assertEqual(toy.ensure_toy_dataset(data_dir), data_dir)  # ready
        self.assertEqual(os.listdir(staging), [])
        # The workers could not see ram://: the videos were encoded here.
        self.assertIn("encoding them here, not in 2 worker", stderr.getvalue())
        metadata = schema.read_metadata(data_dir)
        self.assertEqual(metadata["splits"]["test"]["num_records"], 2)
        self.assertEqual(
            storage.listdir(storage.join(data_dir, "videos")), toy.CLASSES[:2]
        )
        shard = metadata["splits"]["train"]["shards"][0]["file"]
        self.assertLen(list(tf.data.TFRecordDataset(f"{data_dir}/{shard}")), 2)


if __name__ == "__main__":
    absltest.main()
