"""Classification metrics on score matrices: accuracy, per-class accuracy, Charades AP.

All functions take NumPy arrays of scores `[N, C]` (raw logits are fine: every
metric here depends only on rankings) and are shared by `evaluate`, `fuse` and
`charades_eval`, so the three tools always agree.
"""

import numpy as np


def _check_scores(scores, labels):
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be [N, C], got shape {scores.shape}.")
    labels = np.asarray(labels)
    if labels.shape[0] != scores.shape[0]:
        raise ValueError(f"{scores.shape[0]} score rows but {labels.shape[0]} labels.")
    return scores, labels


def top_k_accuracy(scores, labels, *, k=1):
    """Fraction of rows whose true class is among the k highest scores.

    Args:
      scores: float `[N, C]`.
      labels: int `[N]` class indices, or a `[N, C]` multi-hot matrix (a row
        counts as correct when any of its true classes is in the top k).
      k: how many of the highest scores count.

    Returns:
      The accuracy in [0, 1] (a Python float).
    """
    scores, labels = _check_scores(scores, labels)
    k = min(k, scores.shape[1])
    # Stable descending order: among tied scores the lower class index wins,
    # which is what argmax (and the release's streaming accuracy) does for k=1.
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # (N, k)
    if labels.ndim == 1:
        hits = np.any(top == labels[:, None], axis=1)
    else:
        hits = np.any(np.take_along_axis(labels, top, axis=1) > 0, axis=1)
    return float(np.mean(hits))


def mean_class_accuracy(scores, labels):
    """Top-1 accuracy averaged over the classes present in `labels` (int `[N]`)."""
    scores, labels = _check_scores(scores, labels)
    correct = np.argmax(scores, axis=1) == labels
    classes = np.unique(labels)
    return float(np.mean([np.mean(correct[labels == c]) for c in classes]))


def average_precision(scores, positives):
    """Per-class non-interpolated AP, exactly as the official Charades v1 script.

    For each class, all N videos are sorted by descending score with a stable
    sort (ties keep row order, as MATLAB's `sort(-conf)`), and AP is the sum of
    the precision at the rank of each positive divided by the number of
    positives. Unlike `sklearn.metrics.average_precision_score`, tied scores are
    not grouped into one threshold. Rows scored `-inf` sort last (in row order).

    Args:
      scores: float `[N, C]`.
      positives: `[N, C]` binary ground truth.

    Returns:
      float64 `[C]` APs in [0, 1]; NaN for a class without positives (the
      official script divides by zero there too).
    """
    scores, positives = _check_scores(scores, positives)
    if positives.shape != scores.shape:
        raise ValueError(f"ground truth {positives.shape} != scores {scores.shape}.")
    order = np.argsort(-scores, axis=0, kind="stable")  # (N, C), per column
    is_pos = np.take_along_axis(positives > 0, order, axis=0)  # (N, C) ranked
    true_pos = np.cumsum(is_pos, axis=0)
    ranks = np.arange(1, scores.shape[0] + 1)[:, None]
    precision = true_pos / ranks
    num_pos = is_pos.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(precision * is_pos, axis=0) / num_pos


def charades_map(scores, positives):
    """mAP (plain mean over classes) and wAP (weighted by positives), official style.

    Args:
      scores: float `[N, C]` (use `-inf` for videos without a prediction).
      positives: `[N, C]` binary ground truth.

    Returns:
      `(mAP, wAP, ap)`: floats in [0, 1] and the per-class `[C]` APs.
    """
    ap = average_precision(scores, positives)
    num_pos = np.sum(np.asarray(positives) > 0, axis=0)
    mean_ap = float(np.mean(ap))
    weighted_ap = float(np.sum(ap * num_pos) / np.sum(num_pos))
    return mean_ap, weighted_ap, ap


def classification_report(scores, labels):
    """The metrics `evaluate` prints: a dict of floats in [0, 1].

    Single-label data (int `[N]` labels) gets `top1`, `top5` and
    `mean_class_accuracy`; multi-label data (`[N, C]` multi-hot) gets `top1`
    (hit at 1) and the official Charades `mAP` and `wAP` (`top1` uses every
    row; mAP / wAP treat rows without labels as the official script does).
    """
    labels = np.asarray(labels)
    report = {"top1": top_k_accuracy(scores, labels, k=1)}
    if labels.ndim == 1:
        report["top5"] = top_k_accuracy(scores, labels, k=5)
        report["mean_class_accuracy"] = mean_class_accuracy(scores, labels)
    else:
        # Classes without positives have no AP (the official script would give
        # NaN); on the full Charades test set all 157 classes have positives, so
        # this equals the official mAP there.
        present = np.sum(labels > 0, axis=0) > 0
        # Videos without any action score -inf everywhere, as in the official
        # Charades script (which never matches their predictions).
        scores = np.where(
            np.any(labels > 0, axis=1, keepdims=True),
            np.asarray(scores, dtype=np.float64),
            -np.inf,
        )
        report["mAP"], report["wAP"], _ = charades_map(
            scores[:, present], labels[:, present]
        )
    return report
