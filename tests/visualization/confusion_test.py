"""Tests of the confusion-matrix difference (Fig. 9)."""

import os

from absl.testing import absltest
import h5py
from matplotlib import image as mpimg
import numpy as np

from avlad_tf.visualization import confusion
from tests import fake_data


def write_scores(path, logits, video_ids, labels=None):
    with h5py.File(path, "w") as f:
        f.create_dataset("stream0/logits", data=np.asarray(logits, np.float32))
        f.create_dataset("video_ids", data=[v.encode() for v in video_ids])
        if labels is not None:
            f.create_dataset("labels", data=np.asarray(labels))
    return path


def one_hot_logits(predictions, num_classes):
    return np.eye(num_classes)[np.asarray(predictions)]


class ConfusionTest(absltest.TestCase):
    def test_confusion_matrix_by_hand(self):
        matrix = confusion.confusion_matrix(
            np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]), num_classes=3
        )
        np.testing.assert_allclose(
            matrix, [[0.5, 0.5, 0], [1 / 3, 2 / 3, 0], [0, 0, 0]]
        )

    def test_difference_ranks_gains_and_losses(self):
        tmp = self.create_tempdir().full_path
        ids = ["v0", "v1", "v2", "v3"]
        labels = [0, 0, 1, 2]
        # A gets v0, v1 wrong (class 0) and v3 right; B fixes class 0 and
        # breaks class 2. File B lists its videos in another order.
        a = write_scores(
            os.path.join(tmp, "a.h5"), one_hot_logits([1, 1, 1, 2], 3), ids, labels
        )
        b = write_scores(
            os.path.join(tmp, "b.h5"),
            one_hot_logits([0, 0, 1, 0], 3)[::-1],
            ids[::-1],
            np.eye(3)[labels][::-1],
        )
        result = confusion.confusion_difference(
            confusion.read_scores(a), confusion.read_scores(b)
        )
        np.testing.assert_allclose(result["gain"], [1.0, 0.0, -1.0])
        np.testing.assert_allclose(result["difference"][0], [1, -1, 0])
        np.testing.assert_allclose(result["difference"][2], [1, 0, -1])
        self.assertEqual(result["num_videos"], 4)
        gained, lost = confusion.ranked_changes(
            result["gain"], ["run", "walk", "jump"], top=2
        )
        self.assertEqual(gained, [("run", 1.0)])
        self.assertEqual(lost, [("jump", -1.0)])
        out = confusion.plot_confusion_difference(
            result,
            ["run", "walk", "jump"],
            os.path.join(tmp, "d.png"),
            width_px=640,
            height_px=480,
        )
        self.assertEqual(mpimg.imread(out).shape[:2], (480, 640))

    def test_ground_truth_from_records(self):
        data_dir = fake_data.write_fake_dataset(
            self.create_tempdir().full_path, num_videos=4, num_classes=3
        )
        truth = confusion.read_ground_truth(data_dir, "test")
        self.assertEqual(truth, {f"test/video{v}": v % 3 for v in range(4)})
        scores = {
            "logits": np.zeros((1, 3)),
            "video_ids": ["test/video1"],
            "labels": None,
        }
        result = confusion.confusion_difference(scores, scores, truth=truth)
        self.assertEqual(result["num_videos"], 1)
        with self.assertRaisesRegex(ValueError, "no split 'val'"):
            confusion.read_ground_truth(data_dir, "val")

    def test_errors_name_the_problem(self):
        tmp = self.create_tempdir().full_path
        with self.assertRaisesRegex(FileNotFoundError, "missing.h5"):
            confusion.read_scores(os.path.join(tmp, "missing.h5"))
        path = os.path.join(tmp, "bad.h5")
        with h5py.File(path, "w") as f:
            f.create_dataset("logits", data=np.zeros((2, 3)))
        with self.assertRaisesRegex(ValueError, "bad.h5: no dataset"):
            confusion.read_scores(path)
        multi = write_scores(
            os.path.join(tmp, "multi.h5"), np.zeros((1, 3)), ["v"], [[1, 1, 0]]
        )
        with self.assertRaisesRegex(ValueError, "exactly one label"):
            confusion.read_scores(multi)
        no_labels = confusion.read_scores(
            write_scores(os.path.join(tmp, "n.h5"), np.zeros((1, 3)), ["v"])
        )
        with self.assertRaisesRegex(ValueError, "has no labels"):
            confusion.confusion_difference(no_labels, no_labels)


if __name__ == "__main__":
    absltest.main()
