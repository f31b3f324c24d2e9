"""SVM late fusion (`avlad_tf.evaluation.svm_fusion`, `python -m avlad_tf.fuse --method=svm`)."""

import os
import subprocess
import sys

from absl.testing import absltest
import numpy as np
import pytest

from avlad_tf.evaluation import score_files
from avlad_tf.evaluation import svm_fusion
from tests import testing

REPO = testing.REPO
NUM_CLASSES = 6


def complementary_streams(num_videos, seed):
    """Two streams that each know half of the classes: weighted averaging
    cannot pick the right stream per class, an SVM on both streams can."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, NUM_CLASSES, num_videos)
    streams = []
    for known in ({0, 1, 2}, {3, 4, 5}):
        logits = rng.normal(size=(num_videos, NUM_CLASSES))
        for i, label in enumerate(labels):
            guess = label if label in known else rng.integers(0, NUM_CLASSES)
            logits[i, guess] += 3.0 if label in known else 1.0
        streams.append(logits)
    return streams, labels


def top1(scores_, labels):
    return float(np.mean(scores_.argmax(axis=1) == labels))


class SvmFusionTest(absltest.TestCase):
    def test_learns_which_stream_to_trust_per_class(self):
        train, train_labels = complementary_streams(400, seed=0)
        test, test_labels = complementary_streams(300, seed=1)
        fused = svm_fusion.svm_fuse(train, train_labels, test)
        weighted = (test[0] + 2 * test[1]) / 3
        self.assertGreater(top1(fused, test_labels), 0.85)
        self.assertGreater(top1(fused, test_labels), top1(weighted, test_labels) + 0.15)

    def test_the_solver_reaches_the_optimum(self):
        rng = np.random.default_rng(2)
        x = rng.normal(size=(80, 5))
        y = np.where(x[:, 0] + 0.3 * rng.normal(size=80) > 0, 1.0, -1.0)
        w = svm_fusion._fit_one(x, y, 1.0)  # pylint: disable=protected-access
        active = y * (x @ w) < 1
        gradient = w + 2.0 * x[active].T @ (x[active] @ w - y[active])
        self.assertLess(np.linalg.norm(gradient), 1e-6)

    def test_features_are_unit_softmax_rows_per_stream(self):
        logits = [np.array([[1.0, 2.0, 3.0]]), np.array([[0.0, 0.0, 9.0]])]
        stacked = svm_fusion.features(logits)
        self.assertEqual(stacked.shape, (1, 6))
        np.testing.assert_allclose(np.linalg.norm(stacked[:, :3], axis=1), 1.0)
        np.testing.assert_allclose(np.linalg.norm(stacked[:, 3:], axis=1), 1.0)

    def test_errors_name_the_problem(self):
        train, labels = complementary_streams(20, seed=0)
        with self.assertRaisesRegex(ValueError, "one label per training video"):
            svm_fusion.svm_fuse(train, np.eye(NUM_CLASSES)[labels], train)
        with self.assertRaisesRegex(ValueError, "number of classes"):
            svm_fusion.svm_fuse(train, labels, [t[:, :4] for t in train])
        with self.assertRaisesRegex(ValueError, "C must be positive"):
            svm_fusion.LinearSVM(c=0)

    @pytest.mark.slow
    def test_command_line(self):
        root = self.create_tempdir().full_path
        paths = {}
        for split, seed, count in (("train", 0, 400), ("test", 1, 300)):
            streams, labels = complementary_streams(count, seed)
            for name, logits in zip(("rgb", "flow"), streams):
                path = os.path.join(root, f"{name}_{split}.h5")
                ids = [f"v{i}" for i in range(count)]
                score_files.write_scores(path, logits, ids, labels)
                paths[name, split] = path
        command = [
            sys.executable,
            "-m",
            "avlad_tf.fuse",
            "--method=svm",
            f"--scores={paths['rgb', 'test']}",
            f"--scores={paths['flow', 'test']}",
            f"--train_scores={paths['rgb', 'train']}",
            f"--train_scores={paths['flow', 'train']}",
        ]
        run = subprocess.run(
            command, cwd=REPO, capture_output=True, text=True, check=False
        )
        self.assertEqual(run.returncode, 0, run.stderr[-2000:])
        fused_line = run.stdout.strip().splitlines()[-1]
        self.assertRegex(
            fused_line, r"^fused \(linear SVM, C=1\): top-1 (8|9)\d\.\d\d$"
        )
        missing = subprocess.run(
            command[:6], cwd=REPO, capture_output=True, text=True, check=False
        )
        self.assertEqual(missing.returncode, 1)
        self.assertIn("--train_scores", missing.stderr.strip().splitlines()[-1])


if __name__ == "__main__":
    absltest.main()
