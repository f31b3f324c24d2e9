"""Confusion-matrix difference between two score files (paper Fig. 9).

Score files are what `avlad_tf.evaluate` writes (CONTRACTS.md, workdir):
HDF5 with `stream0/logits` `[N, C]` and `video_ids` `[N]`. Ground truth comes
from a `labels` dataset in the file when present, else from the dataset's
records (`video/id`, `clip/label/index`).
"""

import numpy as np

from avlad_tf import storage
from avlad_tf.evaluation import score_files as scores_lib
from avlad_tf.visualization import plotting


def _label_indices(labels, where):
    """Class indices `[N]` from indices `[N]` or one-hot `[N, C]`."""
    if labels.ndim == 1:
        return labels.astype(np.int64)
    positives = labels.sum(axis=1)
    if labels.ndim != 2 or np.any(positives != 1):
        bad = int(np.sum(positives != 1))
        raise ValueError(
            f"{where}: a confusion matrix needs exactly one label per video; "
            f"{bad} videos have none or several (multi-label data?)"
        )
    return np.argmax(labels, axis=1)


def read_scores(path):
    """Reads one score file (`avlad_tf.evaluation.score_files`) for a confusion matrix.

    Returns:
        dict with `logits` float `[N, C]`, `video_ids` (list of str) and
        `labels` (int `[N]` class indices, or None when the file has none).

    Raises:
        FileNotFoundError / ValueError naming the file and the missing or
        malformed dataset.
    """
    logits, video_ids, labels = scores_lib.read_scores(path)
    if video_ids is None:
        raise ValueError(
            f"{path}: no dataset '{scores_lib.IDS_KEY}'; expected "
            f"a file written by avlad_tf.evaluate"
        )
    if labels is not None:
        labels = _label_indices(labels, f"{path}:{scores_lib.LABELS_KEY}")
    return {
        "logits": logits.astype(np.float32),
        "video_ids": video_ids,
        "labels": labels,
    }


def read_ground_truth(data_dir, split):
    """`{video_id: class index}` from a prepared dataset's records."""
    import tensorflow as tf  # only this fallback needs TF

    from avlad_tf.data import schema

    metadata = schema.read_metadata(data_dir)
    if split not in metadata["splits"]:
        raise ValueError(
            f"{data_dir}: no split {split!r}; has {sorted(metadata['splits'])}"
        )
    files = [
        storage.join(data_dir, shard["file"])
        for shard in metadata["splits"][split]["shards"]
    ]
    context = {
        schema.VIDEO_ID_KEY: schema.CONTEXT_FEATURES[schema.VIDEO_ID_KEY],
        schema.LABEL_INDEX_KEY: schema.CONTEXT_FEATURES[schema.LABEL_INDEX_KEY],
    }
    truth = {}
    for record in tf.data.TFRecordDataset(files):
        parsed, _ = tf.io.parse_single_sequence_example(record, context, {})
        video_id = parsed[schema.VIDEO_ID_KEY].numpy().decode()
        labels = tf.sparse.to_dense(parsed[schema.LABEL_INDEX_KEY]).numpy()
        if len(labels) != 1:
            raise ValueError(
                f"{data_dir} {split}: video {video_id} has {len(labels)} "
                f"labels; a confusion matrix needs exactly one"
            )
        truth[video_id] = int(labels[0])
    return truth


def confusion_matrix(labels, predictions, *, num_classes):
    """Row-normalised confusion `[C, C]`: row = true class, column = predicted.

    Rows of classes without test videos stay zero.
    """
    counts = np.zeros((num_classes, num_classes), np.float64)
    np.add.at(counts, (labels, predictions), 1.0)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def confusion_difference(scores_a, scores_b, *, truth=None):
    """Confusion of B minus confusion of A, on the videos both files share.

    Args:
        scores_a, scores_b: `read_scores` results with the same classes.
        truth: optional `{video_id: class}`; needed when a file has no labels.

    Returns:
        dict with `difference` `[C, C]`, `confusion_a`, `confusion_b`,
        per-class accuracy `gain` `[C]` (diagonal of the difference) and
        `num_videos`.
    """
    num_classes = scores_a["logits"].shape[1]
    if scores_b["logits"].shape[1] != num_classes:
        raise ValueError(
            f"score files have {num_classes} and {scores_b['logits'].shape[1]} classes"
        )
    common = sorted(set(scores_a["video_ids"]) & set(scores_b["video_ids"]))
    if not common:
        raise ValueError("the two score files share no video ids")
    confusions = []
    for scores in (scores_a, scores_b):
        row = {v: i for i, v in enumerate(scores["video_ids"])}
        rows = np.array([row[v] for v in common])
        if scores["labels"] is not None:
            labels = scores["labels"][rows]
        elif truth is not None:
            missing = [v for v in common if v not in truth]
            if missing:
                raise ValueError(
                    f"no ground truth for {len(missing)} videos, e.g. "
                    f"{missing[0]!r}: wrong --data_dir / --split?"
                )
            labels = np.array([truth[v] for v in common])
        else:
            raise ValueError(
                "a score file has no labels: pass the dataset (data_dir and "
                "split) to read the ground truth"
            )
        predictions = np.argmax(scores["logits"][rows], axis=1)
        confusions.append(
            confusion_matrix(labels, predictions, num_classes=num_classes)
        )
    difference = confusions[1] - confusions[0]
    return {
        "difference": difference,
        "confusion_a": confusions[0],
        "confusion_b": confusions[1],
        "gain": np.diag(difference).copy(),
        "num_videos": len(common),
    }


def ranked_changes(gain, class_names, *, top=5):
    """(gained, lost): lists of `(class_name, change)`, largest first."""
    order = np.argsort(-gain, kind="stable")
    gained = [(class_names[i], float(gain[i])) for i in order[:top] if gain[i] > 0]
    lost = [(class_names[i], float(gain[i])) for i in order[::-1][:top] if gain[i] < 0]
    return gained, lost


def plot_confusion_difference(
    result,
    class_names,
    path,
    *,
    name_a="A",
    name_b="B",
    top=5,
    width_px=1000,
    height_px=700,
):
    """Heat map of the difference plus the classes that gained / lost most."""
    gained, lost = ranked_changes(result["gain"], class_names, top=top)
    fig = plotting.new_figure(width_px=width_px, height_px=height_px)
    ax, text_ax = fig.subplots(1, 2, width_ratios=[3, 1])
    limit = max(float(np.max(np.abs(result["difference"]))), 1e-6)
    image = ax.imshow(
        result["difference"],
        cmap="RdBu",
        vmin=-limit,
        vmax=limit,
        interpolation="nearest",
    )
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(
        f"confusion({name_b}) - confusion({name_a}), {result['num_videos']} videos",
        fontsize=9,
    )
    if len(class_names) <= 30:
        ticks = np.arange(len(class_names))
        ax.set_xticks(ticks, class_names, rotation=90, fontsize=6)
        ax.set_yticks(ticks, class_names, fontsize=6)
    lines = [f"gained most ({name_b} vs {name_a}):"]
    lines += [f"  {name}: {change:+.2f}" for name, change in gained] or ["  -"]
    lines += ["", "lost most:"]
    lines += [f"  {name}: {change:+.2f}" for name, change in lost] or ["  -"]
    text_ax.axis("off")
    text_ax.text(
        0.0,
        1.0,
        "\n".join(lines),
        va="top",
        family="monospace",
        fontsize=7,
        transform=text_ax.transAxes,
    )
    return plotting.save_figure(fig, path)
