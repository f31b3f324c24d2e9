"""Tests for avlad_tf.evaluation.charades (and its program avlad_tf.charades_eval)
against hand-computed official-metric values."""

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest
import h5py
import numpy as np
import pytest

from avlad_tf.evaluation import charades
from avlad_tf.evaluation import metrics
from tests import testing

_REPO = pathlib.Path(testing.REPO)
_TEST_CSV = _REPO / "experiments" / "released" / "charades" / "Charades_v1_test.csv"

# Five videos, three classes. v1 repeats c000 (counts once); v3 has no
# actions; v5 is missing from the submission.
_CSV = """id,subject,actions
v1,s,c000 0.0 1.0;c001 1.0 2.0;c000 3.0 4.0
v2,s,"c001 0.0 2.0;c002 1.0 3.0"
v3,s,
v4,s,c002 0.5 1.5
v5,s,c000 0.0 9.0;c002 1.0 2.0
"""
# Tab- and space-separated lines, a trailing tab, extra columns, and a
# prediction for v3 that must be ignored (videos without actions never match).
_SUBMISSION = (
    "v1\t0.9\t0.5\t0.1\t\n"
    "v2 0.9 0.8 0.1 123.0\n"
    "v3 5 5 5\n"
    "v4\t0.2\t0.1\t0.7\n"
    "unknown 1 1 1\n"
)

# Hand computation (stable descending sort; v3 and v5 are at -inf, CSV order):
# c000: order v1 v2 v4 v3 v5, positives v1 (rank 1), v5 (rank 5):
#       AP = (1/1 + 2/5) / 2.
# c001: order v2 v1 ..., positives v2, v1 at ranks 1, 2: AP = 1.
# c002: order v4 v1 v2 v3 v5 (v1 and v2 tie at 0.1: CSV order puts v1 first),
#       positives v4, v2, v5 at ranks 1, 3, 5: AP = (1 + 2/3 + 3/5) / 3.
_AP = [(1 + 2 / 5) / 2, 1.0, (1 + 2 / 3 + 3 / 5) / 3]
_NUM_POS = [2, 2, 3]


def _reference_ap(conf, labels):
    """A literal loop port of the official THUMOSeventclspr."""
    order = sorted(range(len(conf)), key=lambda i: -conf[i])  # stable
    tp = fp = 0
    ap = 0.0
    for i in order:
        if labels[i] == 1:
            tp += 1
            ap += tp / (tp + fp)
        else:
            fp += 1
    return ap / sum(labels)


class CharadesEvalTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.csv = os.path.join(self.dir, "test.csv")
        self.sub = os.path.join(self.dir, "sub.txt")
        pathlib.Path(self.csv).write_text(_CSV)
        pathlib.Path(self.sub).write_text(_SUBMISSION)

    def test_ground_truth(self):
        ids, positives = charades.read_ground_truth(self.csv, num_classes=3)
        self.assertEqual(ids, ["v1", "v2", "", "v4", "v5"])
        np.testing.assert_array_equal(
            positives, [[1, 1, 0], [0, 1, 1], [0, 0, 0], [0, 0, 1], [1, 0, 1]]
        )

    def test_hand_computed(self):
        result = charades.charades_eval(self.sub, self.csv, num_classes=3)
        np.testing.assert_allclose(result["ap"], _AP)
        self.assertAlmostEqual(result["mAP"], np.mean(_AP))
        self.assertAlmostEqual(result["wAP"], np.dot(_AP, _NUM_POS) / sum(_NUM_POS))
        self.assertEqual(result["num_missing"], 1)
        # 'unknown' is not in the CSV; v3 has no actions.
        self.assertEqual(result["num_unmatched"], 2)

    def test_score_file_with_release_style_ids(self):
        h5 = os.path.join(self.dir, "scores.h5")
        with h5py.File(h5, "w") as f:
            f.create_dataset(
                "stream0/logits",
                data=[[0.9, 0.5, 0.1], [0.9, 0.8, 0.1], [0.2, 0.1, 0.7]],
            )
            f.create_dataset("video_ids", data=[b"v/v1.mp4", b"v/v2.mp4", b"v/v4.mp4"])
        result = charades.charades_eval(h5, self.csv, num_classes=3)
        np.testing.assert_allclose(result["ap"], _AP)

    def test_ties_keep_row_order(self):
        # All scores tie: AP is decided by where the positives sit in CSV order.
        scores = np.zeros((4, 1))
        np.testing.assert_allclose(
            metrics.average_precision(scores, [[0], [1], [0], [1]]),
            [(1 / 2 + 2 / 4) / 2],
        )
        np.testing.assert_allclose(
            metrics.average_precision(scores, [[1], [1], [0], [0]]), [1.0]
        )

    def test_class_without_positives_is_nan(self):
        ap = metrics.average_precision(np.zeros((2, 2)), [[1, 0], [0, 0]])
        self.assertEqual(ap[0], 1.0)
        self.assertTrue(np.isnan(ap[1]))

    def test_short_line_names_file_and_line(self):
        pathlib.Path(self.sub).write_text("v1 0.1 0.2 0.3\nv2 0.1 0.2\n")
        with self.assertRaisesRegex(ValueError, r"sub.txt:2: 2 scores .* expected 3"):
            charades.read_submission(self.sub, num_classes=3)

    def test_bad_class_in_csv(self):
        pathlib.Path(self.csv).write_text("id,actions\nv1,c003 0 1\n")
        with self.assertRaisesRegex(ValueError, r"test.csv:2: bad action class"):
            charades.read_ground_truth(self.csv, num_classes=3)

    def test_real_csv(self):
        ids, positives = charades.read_ground_truth(_TEST_CSV)
        self.assertLen(ids, 1863)
        self.assertEqual(ids.count(""), 49)
        self.assertEqual(int(positives.sum()), 16285)
        self.assertTrue(np.all(positives.sum(axis=0) > 0))
        # Perfect scores: every positive ranks above every negative.
        mean_ap, weighted_ap, _ = metrics.charades_map(
            positives.astype(float), positives
        )
        self.assertEqual((mean_ap, weighted_ap), (1.0, 1.0))
        # Coarse random scores (many ties) with a third of the videos missing,
        # against the literal loop port of the official AP, on 20 classes.
        rng = np.random.default_rng(0)
        scores = rng.integers(0, 5, size=positives.shape).astype(float)
        scores[rng.random(len(ids)) < 0.3] = -np.inf
        scores[np.asarray(ids) == ""] = -np.inf
        ap = metrics.average_precision(scores, positives)
        for c in range(0, 157, 8):
            self.assertAlmostEqual(ap[c], _reference_ap(scores[:, c], positives[:, c]))

    @pytest.mark.slow
    def test_cli_on_real_csv(self):
        ids, positives = charades.read_ground_truth(_TEST_CSV)
        known = [i for i, v in enumerate(ids) if v]
        charades.write_submission(
            self.sub, [ids[i] for i in known], positives[known] * 2.0 - 1.0
        )
        out = subprocess.run(
            [sys.executable, "-m", "avlad_tf.charades_eval", self.sub, str(_TEST_CSV)],
            capture_output=True,
            text=True,
            check=True,
            cwd=_REPO,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        )
        self.assertEqual(out.stdout.splitlines(), ["mAP: 1.000000", "wAP: 1.000000"])


if __name__ == "__main__":
    absltest.main()
