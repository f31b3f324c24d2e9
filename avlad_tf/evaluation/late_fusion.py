"""Weighted late fusion of per-stream scores, as the release's `combine_streams.py` (library).

Fuses raw logits (no softmax: softmax-then-fuse loses about 2.5 points on
HMDB51, docs/RELEASE.md §9.2) with normalised weights. The release's
RGB : flow = 1 : 2 is weights (1, 2), i.e. (1/3)·rgb + (2/3)·flow; the
release wrote (1 − 0.667)·rgb + 0.667·flow, which gives the same top-1 on all
three HMDB51 splits (checked in `tests/evaluation/late_fusion_test.py`). An optional iDT score
file is fused the release's way: 0.75·fused/‖fused‖ + 0.25·idt/‖idt‖, with
per-row L2 norms. Score files are read and written through `avlad_tf.evaluation.score_files`.
The program is `python -m avlad_tf.fuse`.
"""

from absl import logging
import numpy as np

from avlad_tf import storage
from avlad_tf.evaluation import metrics
from avlad_tf.evaluation import score_files as scores_lib


def read_list_labels(path):
    """Reads `(video_paths, labels)` from a release list file (last field = label)."""
    ids, labels = [], []
    with storage.open_file(path) as f:
        for line_no, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 2:
                raise ValueError(
                    f'{path}:{line_no}: expected "path video_length label", '
                    f"got {line.rstrip()!r}."
                )
            try:
                label = int(fields[-1])
            except ValueError as e:
                raise ValueError(
                    f"{path}:{line_no}: label {fields[-1]!r} is not an integer."
                ) from e
            if label < 0:
                raise ValueError(
                    f"{path}:{line_no}: label {label} (Charades test lists carry no "
                    "labels; score Charades with avlad_tf.charades_eval)."
                )
            ids.append(fields[0])
            labels.append(label)
    if not ids:
        raise ValueError(f"{path}: empty list file.")
    return ids, np.asarray(labels, dtype=np.int64)


def l2_normalize_score_rows(x):
    """Each row divided by its L2 norm (zero rows stay zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def fuse_scores(scores, weights):
    """Σ_i w_i·scores_i / Σ_i w_i over a list of equally shaped `[N, C]` arrays."""
    if len(scores) != len(weights):
        raise ValueError(f"{len(scores)} score arrays but {len(weights)} weights.")
    weights = np.asarray(weights, dtype=np.float64)
    if np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(f"weights must be non-negative and not all zero: {weights}.")
    weights = weights / weights.sum()
    return sum(w * s for w, s in zip(weights, scores))


def fuse_idt(fused, idt, *, idt_weight=0.25):
    """The release's iDT fusion: (1 − w)·fused/‖fused‖ + w·idt/‖idt‖ per row."""
    return (1.0 - idt_weight) * l2_normalize_score_rows(
        fused
    ) + idt_weight * l2_normalize_score_rows(idt)


def check_rows(path, logits, ids, reference):
    """Checks that a score file lines up with the first one (shape and ids)."""
    ref_path, ref_logits, ref_ids = reference
    if logits.shape != ref_logits.shape:
        raise ValueError(
            f"{path}: scores {logits.shape} do not match "
            f"{ref_path}: {ref_logits.shape}."
        )
    if ids is not None and ref_ids is not None and ids != ref_ids:
        first = next(i for i, (a, b) in enumerate(zip(ids, ref_ids)) if a != b)
        raise ValueError(
            f"{path}: row {first} is video {ids[first]!r} but "
            f"{ref_path} has {ref_ids[first]!r} there."
        )


def _resolve_labels(labels, num_rows, first_path, first_ids, first_labels):
    """Labels from the list file (checked against embedded ids) or the file."""
    if labels is None:
        if first_labels is None:
            raise ValueError(f"{first_path} stores no labels; pass a list file.")
        return first_labels
    list_ids, list_labels = read_list_labels(labels)
    if len(list_labels) != num_rows:
        raise ValueError(
            f"{labels} lists {len(list_labels)} videos but the "
            f"score files have {num_rows} rows."
        )
    if first_ids is not None and first_ids != list_ids:
        # Ids may follow another convention (e.g. without the class folder), so
        # only warn; rows are taken to be in list order as the release does.
        logging.warning(
            "%s: video ids differ from %s (first: %r vs %r); assuming "
            "rows follow the list order.",
            first_path,
            labels,
            first_ids[0],
            list_ids[0],
        )
    return list_labels


def fuse_files(
    score_paths,
    weights,
    *,
    labels,
    idt_path=None,
    idt_weight=0.25,
    output_path=None,
    combine=None,
):
    """Fuses score files and measures top-1 accuracy of each input and the fusion.

    Args:
      score_paths: HDF5 score files (all `[N, C]`, rows in the same order).
      weights: one non-negative weight per file (normalised to sum 1).
      labels: a list file path, or None to use the `labels` stored in the first
        score file.
      idt_path: optional iDT score file, fused as in docs/RELEASE.md §9.2.
      idt_weight: the iDT weight (0.25 in the release's `combine_streams.sh`).
      output_path: optional HDF5 file to write the fused scores to
        (`stream0/logits`, plus `video_ids` / `labels` when known).
      combine: fuses the list of `[N, C]` score arrays instead of the
        weighted average (`svm_fusion.trained_combine`); `weights` is then
        unused.

    Returns:
      A dict with `inputs` (top-1 of each score file, in order), `fused` (top-1
      of the weighted fusion) and, with `idt_path`, `idt` and `fused_idt`. All
      accuracies are fractions in [0, 1].
    """
    if not score_paths:
        raise ValueError("no score files given.")
    loaded = [scores_lib.read_scores(p) for p in score_paths]
    first_logits, first_ids, first_labels = loaded[0]
    for path, (logits, ids, _) in zip(score_paths[1:], loaded[1:]):
        check_rows(path, logits, ids, (score_paths[0], first_logits, first_ids))
    label_array = _resolve_labels(
        labels, first_logits.shape[0], score_paths[0], first_ids, first_labels
    )

    def top1(scores):
        return metrics.top_k_accuracy(scores, label_array, k=1)

    arrays = [s for s, _, _ in loaded]
    fused = combine(arrays) if combine else fuse_scores(arrays, weights)
    result = {"inputs": [top1(s) for s, _, _ in loaded], "fused": top1(fused)}
    if idt_path is not None:
        idt, idt_ids, _ = scores_lib.read_scores(idt_path)
        check_rows(idt_path, idt, idt_ids, (score_paths[0], first_logits, first_ids))
        fused = fuse_idt(fused, idt, idt_weight=idt_weight)
        result["idt"] = top1(idt)
        result["fused_idt"] = top1(fused)
    if output_path is not None:
        scores_lib.write_scores(output_path, fused, first_ids, label_array)
    return result
