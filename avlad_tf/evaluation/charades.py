"""The official Charades v1 classification metric (`Charades_v1_classify.m`) (library).

`charades_eval` scores a submission, the official text format
(`read_submission`) or an `avlad_tf.evaluate` / `avlad_tf.fuse --output`
score file (`read_score_file`: `.h5` with `stream0/logits` and `video_ids`;
ids such as `Y/YSKX3.mp4` become `YSKX3`, as the release's
`charades_convert_scores_format.py`), against the test CSV
(`read_ground_truth`). The AP itself is `avlad_tf.evaluation.metrics.charades_map`.

Matches the official MATLAB script in every case it handles
(docs/RELEASE.md §9.3):
- the submission has one line per video: the id, then the class scores,
  tab- or space-separated; only the first 157 scores are used, so a trailing
  separator or extra columns are harmless;
- ground truth is the set of `cNNN` classes in the CSV's `actions` column
  (repeated instances count once);
- test videos missing from the submission score −inf for every class;
- test videos without actions never match a prediction (the official script
  leaves their id empty), so they score −inf too and are negatives everywhere;
- per class, videos are stably sorted by descending score (ties keep CSV
  order) and AP is the non-interpolated precision summed at the positives over
  all videos, divided by the number of positives;
- mAP is the plain mean over the classes, wAP weights each class's AP by its
  number of positive videos.
Use raw logits, not softmax outputs: softmax changes the per-class ranking
across videos. The program is `python -m avlad_tf.charades_eval`.
"""

import csv
import io
import os

from absl import logging
import numpy as np

from avlad_tf import storage
from avlad_tf.evaluation import metrics
from avlad_tf.evaluation import score_files as scores_lib

NUM_CLASSES = 157


def read_ground_truth(csv_path, *, num_classes=NUM_CLASSES):
    """Reads the official test CSV.

    Args:
      csv_path: `Charades_v1_test.csv` (columns include `id` and `actions`,
        the latter `cNNN start end;...`, possibly empty).
      num_classes: number of classes (157 for Charades v1).

    Returns:
      `(ids, positives)`: the video ids in CSV order and a binary
      `[N, num_classes]` matrix. Videos without actions get id `''`, as in the
      official script, so no prediction ever matches them.

    Raises:
      ValueError: on a missing column or a malformed / out-of-range class.
    """
    ids, rows = [], []
    # newline="": the csv module reads quoted line breaks itself.
    text = storage.read_bytes(csv_path).decode("utf-8")
    with io.StringIO(text, newline="") as f:
        reader = csv.DictReader(f)
        for column in ("id", "actions"):
            if column not in (reader.fieldnames or []):
                raise ValueError(
                    f"{csv_path}: no {column!r} column in the header "
                    f"{reader.fieldnames}."
                )
        for row_no, row in enumerate(reader, 2):
            classes = set()
            for action in filter(None, row["actions"].split(";")):
                token = action.split()[0]
                try:
                    index = int(token[1:]) if token[0] == "c" else -1
                except ValueError:
                    index = -1
                if not 0 <= index < num_classes:
                    raise ValueError(
                        f"{csv_path}:{row_no}: bad action class {token!r} "
                        f"(expected c000..c{num_classes - 1:03d})."
                    )
                classes.add(index)
            ids.append(row["id"] if classes else "")
            rows.append(sorted(classes))
    positives = np.zeros((len(ids), num_classes), dtype=np.int64)
    for i, classes in enumerate(rows):
        positives[i, classes] = 1
    return ids, positives


def read_submission(path, *, num_classes=NUM_CLASSES):
    """Reads `id s1 .. sC` lines (tab or space separated) into `{id: scores}`.

    Raises:
      ValueError: naming the line, when it has fewer than `num_classes` scores
        or a score is not a number.
    """
    predictions = {}
    with storage.open_file(path) as f:
        for line_no, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < num_classes + 1:
                raise ValueError(
                    f"{path}:{line_no}: {len(fields) - 1} scores for "
                    f"video {fields[0]!r}, expected {num_classes}."
                )
            try:
                scores = np.asarray(fields[1 : num_classes + 1], dtype=np.float64)
            except ValueError as e:
                raise ValueError(f"{path}:{line_no}: {e}") from e
            if fields[0] in predictions:
                # containers.Map keeps the last value for a repeated key.
                logging.warning(
                    "%s:%d: video %s appears again; using this line.",
                    path,
                    line_no,
                    fields[0],
                )
            predictions[fields[0]] = scores
    return predictions


def charades_id(video_id):
    """`Y/YSKX3.mp4` (the release's list path) -> `YSKX3` (the CSV id)."""
    return os.path.splitext(os.path.basename(video_id))[0]


def read_score_file(path, *, num_classes=NUM_CLASSES):
    """Reads an HDF5 score file with `video_ids` into `{id: scores}`."""
    logits, ids, _ = scores_lib.read_scores(path)
    if ids is None:
        raise ValueError(f"{path}: no video_ids dataset; cannot match videos.")
    if logits.shape[1] != num_classes:
        raise ValueError(f"{path}: {logits.shape[1]} classes, expected {num_classes}.")
    return {charades_id(v): row for v, row in zip(ids, logits)}


def score_matrix(ids, predictions, *, num_classes=NUM_CLASSES):
    """`[N, C]` scores in ground-truth order; −inf rows where nothing matches."""
    scores = np.full((len(ids), num_classes), -np.inf)
    for i, video_id in enumerate(ids):
        if video_id and video_id in predictions:
            scores[i] = predictions[video_id]
    return scores


def charades_eval(submission_path, csv_path, *, num_classes=NUM_CLASSES):
    """Scores a submission file against the test CSV.

    Returns:
      A dict with `mAP`, `wAP` (fractions in [0, 1]), `ap` (`[C]`),
      `num_videos`, `num_missing` (test videos with actions but no prediction)
      and `num_unmatched` (submitted lines that match no scored test video:
      ids not in the CSV or of videos without actions; ignored).
    """
    ids, positives = read_ground_truth(csv_path, num_classes=num_classes)
    if submission_path.endswith((".h5", ".hdf5")):
        predictions = read_score_file(submission_path, num_classes=num_classes)
    else:
        predictions = read_submission(submission_path, num_classes=num_classes)
    scores = score_matrix(ids, predictions, num_classes=num_classes)
    mean_ap, weighted_ap, ap = metrics.charades_map(scores, positives)
    known = set(ids)
    return {
        "mAP": mean_ap,
        "wAP": weighted_ap,
        "ap": ap,
        "num_videos": len(ids),
        "num_missing": sum(1 for v in ids if v and v not in predictions),
        "num_unmatched": sum(1 for v in predictions if v not in known),
    }


def write_submission(path, ids, scores):
    """Writes `id s1 .. sC` lines (12 significant digits, as the release)."""
    with storage.replacing(path) as tmp, storage.open_file(tmp, "w") as f:
        for video_id, row in zip(ids, np.asarray(scores)):
            f.write(video_id + " " + " ".join(f"{s:.12g}" for s in row) + "\n")
