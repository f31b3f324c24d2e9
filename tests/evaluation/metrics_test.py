"""Tests for avlad_tf.evaluation.metrics."""

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from avlad_tf.evaluation import metrics

_SCORES = np.array(
    [
        [0.9, 0.05, 0.05],  # predicts 0
        [0.1, 0.2, 0.7],  # predicts 2, second choice 1
        [0.3, 0.3, 0.4],  # predicts 2
        [0.5, 0.5, 0.0],  # tie between 0 and 1: argmax takes 0
    ]
)
_LABELS = np.array([0, 1, 2, 1])


class MetricsTest(parameterized.TestCase):
    @parameterized.parameters((1, 2 / 4), (2, 4 / 4), (5, 1.0))
    def test_top_k(self, k, expected):
        self.assertAlmostEqual(metrics.top_k_accuracy(_SCORES, _LABELS, k=k), expected)

    def test_top1_equals_argmax_with_ties(self):
        self.assertEqual(
            metrics.top_k_accuracy(_SCORES, _LABELS, k=1),
            np.mean(np.argmax(_SCORES, 1) == _LABELS),
        )

    def test_mean_class_accuracy(self):
        # class 0: 1/1, class 1: 0/2, class 2: 1/1.
        self.assertAlmostEqual(
            metrics.mean_class_accuracy(_SCORES, _LABELS), (1 + 0 + 1) / 3
        )

    def test_multi_hot_top1(self):
        multi = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 1, 0]])
        # Row 1 predicts 2 (not positive); row 3 predicts 0 (not positive).
        self.assertAlmostEqual(metrics.top_k_accuracy(_SCORES, multi, k=1), 1 / 4)

    def test_report_single_label(self):
        report = metrics.classification_report(_SCORES, _LABELS)
        self.assertEqual(set(report), {"top1", "top5", "mean_class_accuracy"})

    def test_report_multi_label_skips_empty_classes(self):
        positives = np.array([[1, 0, 0], [0, 0, 0], [1, 0, 0], [0, 0, 1]])
        report = metrics.classification_report(_SCORES, positives)
        # Row 1 has no labels, so it scores -inf (official Charades rule).
        # class 0: order 0, 3, 2, 1 -> positives at ranks 1, 3: (1 + 2/3) / 2;
        # class 2: order 2, 0, 3, 1 -> rank 3: 1/3; class 1 has no positives.
        ap = [(1 + 2 / 3) / 2, 1 / 3]
        self.assertAlmostEqual(report["mAP"], np.mean(ap))
        self.assertAlmostEqual(report["wAP"], (ap[0] * 2 + ap[1]) / 3)

    def test_report_multi_label_ignores_scores_of_unlabelled_rows(self):
        # Row 1 has no labels: like the official Charades script, its (high)
        # scores must not count, so class 0 ranks rows 0, 2 first: AP 1.
        scores = np.array([[0.5], [0.9], [0.4]])
        positives = np.array([[1], [0], [1]])
        unlabelled = metrics.classification_report(scores, positives)
        self.assertEqual(unlabelled["mAP"], 1.0)
        positives_with_negative = np.array([[1, 1], [0, 1], [1, 0]])
        labelled = metrics.classification_report(
            np.concatenate([scores, scores], 1), positives_with_negative
        )
        self.assertAlmostEqual(labelled["mAP"], ((1 / 2 + 2 / 3) / 2 + 1) / 2)

    def test_shape_errors(self):
        with self.assertRaisesRegex(ValueError, "must be"):
            metrics.top_k_accuracy(np.zeros(3), np.zeros(3))
        with self.assertRaisesRegex(ValueError, "4 score rows but 3 labels"):
            metrics.top_k_accuracy(_SCORES, _LABELS[:3])


if __name__ == "__main__":
    absltest.main()
