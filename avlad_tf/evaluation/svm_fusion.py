"""Two-stream fusion by a linear SVM (Simonyan & Zisserman, NIPS 2014).

The alternative to weighted averaging that the two-stream paper reports
(UCF101 88.0, HMDB51 59.4): each stream's scores become softmax
probabilities, each row L2-normalised, the streams' rows stacked into one
feature vector, and a linear SVM (one against the rest per class,
L2-regularised squared hinge loss, as LIBLINEAR's default) is trained on the
training split's scores and applied to the test split's. Its decision values
are the fused scores. `python -m avlad_tf.fuse --method=svm` uses it.
"""

import numpy as np

from avlad_tf.evaluation import late_fusion
from avlad_tf.evaluation import score_files as scores_lib

NEWTON_STEPS = 50


def features(scores):
    """Stacked L2-normalised softmax rows of a list of `[N, C]` logits."""
    parts = []
    for logits in scores:
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        parts.append(
            late_fusion.l2_normalize_score_rows(shifted / shifted.sum(1, keepdims=True))
        )
    return np.concatenate(parts, axis=1)  # [N, streams·C]


def _fit_one(x, y, c):
    """argmin_w ½‖w‖² + c Σ max(0, 1 − y·x·w)² by Newton's method.

    The loss is a piecewise quadratic, so each step solves the quadratic of
    the current margin violators exactly; a halving line search keeps every
    step a descent.
    """
    w = np.zeros(x.shape[1])

    def objective(v):
        slack = np.maximum(0.0, 1.0 - y * (x @ v))
        return 0.5 * v @ v + c * np.sum(slack**2)

    for _ in range(NEWTON_STEPS):
        margins = y * (x @ w)
        active = margins < 1.0
        xa = x[active]
        gradient = w + 2.0 * c * xa.T @ (xa @ w - y[active])
        if np.linalg.norm(gradient) < 1e-8:
            break
        hessian = np.eye(len(w)) + 2.0 * c * xa.T @ xa
        step = np.linalg.solve(hessian, gradient)
        rate, before = 1.0, objective(w)
        while objective(w - rate * step) > before and rate > 1e-6:
            rate *= 0.5
        w = w - rate * step
    return w


class LinearSVM:
    """One-vs-rest linear SVM with a bias (an appended constant feature).

    Args:
        c: the loss weight C (LIBLINEAR's default 1).
    """

    def __init__(self, *, c=1.0):
        if c <= 0:
            raise ValueError(f"the SVM's C must be positive, got {c}.")
        self.c = c
        self.weights = None

    @staticmethod
    def _with_bias(x):
        return np.concatenate([x, np.ones((len(x), 1))], axis=1)

    def fit(self, x, labels, num_classes):
        """Trains on rows `x` `[N, D]` with int labels `[N]`."""
        x = self._with_bias(np.asarray(x, np.float64))
        labels = np.asarray(labels)
        self.weights = np.stack(
            [
                _fit_one(x, np.where(labels == k, 1.0, -1.0), self.c)
                for k in range(num_classes)
            ],
            axis=1,
        )  # [D + 1, C]
        return self

    def decision(self, x):
        """Decision values `[N, C]`: the fused scores."""
        return self._with_bias(np.asarray(x, np.float64)) @ self.weights


def svm_fuse(train_scores, train_labels, test_scores, *, c=1.0):
    """Fused test scores `[N, C]` from per-stream train / test logits.

    Raises:
        ValueError: multi-label training labels (Charades: use weighted
            fusion), or streams that disagree in their number of classes.
    """
    train_labels = np.asarray(train_labels)
    if train_labels.ndim != 1:
        raise ValueError(
            "SVM fusion needs one label per training video; multi-label data "
            "(Charades) is fused by weighted averaging."
        )
    classes = {s.shape[1] for s in list(train_scores) + list(test_scores)}
    if len(classes) != 1:
        raise ValueError(
            f"score files disagree in their number of classes: {sorted(classes)}."
        )
    svm = LinearSVM(c=c).fit(features(train_scores), train_labels, classes.pop())
    return svm.decision(features(test_scores))


def trained_combine(train_paths, *, c=1.0):
    """`late_fusion.fuse_files`'s `combine`: the SVM trained on the training
    split's score files (one per stream, in the test files' order, with the
    labels `evaluate` stores).

    Raises:
        ValueError: naming a file without labels or whose rows do not line up.
    """
    loaded = [scores_lib.read_scores(p) for p in train_paths]
    logits, ids, labels = loaded[0]
    for path, (other, other_ids, _) in zip(train_paths[1:], loaded[1:]):
        late_fusion.check_rows(path, other, other_ids, (train_paths[0], logits, ids))
    if labels is None:
        raise ValueError(
            f"{train_paths[0]} stores no labels; score the training split with "
            "avlad_tf.evaluate (evaluate.split), which stores them."
        )

    def combine(test_scores):
        if len(test_scores) != len(loaded):
            raise ValueError(
                f"{len(test_scores)} --scores files but {len(loaded)} "
                "--train_scores files: give one training file per stream."
            )
        return svm_fuse([s for s, _, _ in loaded], labels, test_scores, c=c)

    return combine
