"""Score files: the one owner of their format, as `data/schema.py` owns records.

A score file is HDF5 (docs/CONTRACTS.md, Workdir), the layout of the
release's `final_logits/*.h5`:

- `stream0/logits` float32 `[N, C]`: raw logits, rows in the split list's order;
- `video_ids` `[N]` (bytes);
- `labels`: int `[N]` class indices, or multi-hot int8 `[N, C]` for
  multi-label data (Charades).

`scoring.evaluate` and `late_fusion.fuse_files` write them; fusion, the
Charades metric and the confusion figure read them through `read_scores`,
which also accepts the release's own files (logits under `stream0/logits`,
iDT files under `idt`, older files under `logits`; ids and labels optional).
"""

import collections

import h5py
import numpy as np

from avlad_tf import storage

LOGITS_KEY = "stream0/logits"
IDS_KEY = "video_ids"
LABELS_KEY = "labels"
# Where other writers (the release's iDT files, older tools) put the logits.
_LOGITS_KEYS = (LOGITS_KEY, "idt", "logits")

_NOT_HDF5 = (
    "{path} is not an HDF5 score file: give the .h5 files that evaluate "
    "writes (<workdir>/scores/), or the release's."
)

Scores = collections.namedtuple("Scores", ["logits", "video_ids", "labels"])


def scores_path(workdir, stream, split, num_crops, *, frames=None):
    """Where evaluation writes a stream's scores (docs/CONTRACTS.md, Workdir).

    `frames` names a dense evaluation (`all`, `all<stride>`); None is the
    run's sampled frames.
    """
    suffix = f"_{frames}" if frames else ""
    return storage.join(
        workdir, "scores", f"{stream}_{split}_{num_crops}crop{suffix}.h5"
    )


def label_array(labels):
    """Int class indices for single-label data, the multi-hot matrix otherwise.

    `labels` is `[N, C]` multi-hot; data is multi-label when some video does
    not have exactly one label (Charades: several actions, or none).
    """
    per_video = labels.sum(axis=1)
    if np.all(per_video == 1):
        return np.argmax(labels, axis=1).astype(np.int64)
    return (labels > 0).astype(np.int8)


def write_scores(path, logits, video_ids, labels):
    """Writes a score file atomically (gzip 9, as the release's feature
    store); h5py writes local files only (`storage.local_output`)."""
    storage.make_parent(path)
    with storage.local_output(path) as local, h5py.File(local, "w") as f:
        f.create_dataset(
            LOGITS_KEY,
            data=np.asarray(logits, np.float32),
            compression="gzip",
            compression_opts=9,
        )
        if video_ids is not None:
            f.create_dataset(IDS_KEY, data=np.asarray(video_ids, dtype="S"))
        if labels is not None:
            f.create_dataset(LABELS_KEY, data=labels)


def _decode(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def read_scores(path):
    """Reads a score file.

    Returns:
        `Scores(logits, video_ids, labels)`: float64 `[N, C]`, a list of str
        or None, and the stored labels array or None.

    Raises:
        FileNotFoundError, ValueError: naming the file and what is missing or
        malformed.
    """
    if not storage.exists(path):
        raise FileNotFoundError(f"score file {path} does not exist")
    if storage.isdir(path):
        raise ValueError(_NOT_HDF5.format(path=path))
    with storage.local_input(path) as local:
        if not h5py.is_hdf5(local):
            raise ValueError(_NOT_HDF5.format(path=path))
        return _read_local(local, path)


def _read_local(local, path):
    """`read_scores` of the local copy `local` of `path`."""
    with h5py.File(local, "r") as f:
        key = next((k for k in _LOGITS_KEYS if k in f), None)
        if key is None:
            raise ValueError(
                f"{path}: no score dataset; expected one of {_LOGITS_KEYS}, "
                f"found {sorted(f.keys())}."
            )
        logits = np.asarray(f[key], dtype=np.float64)
        ids = (
            [_decode(v) for v in np.asarray(f[IDS_KEY]).reshape(-1)]
            if IDS_KEY in f
            else None
        )
        labels = np.asarray(f[LABELS_KEY]) if LABELS_KEY in f else None
    if logits.ndim != 2:
        raise ValueError(f"{path}:{key} must be [N, C], got {logits.shape}.")
    if ids is not None and len(ids) != logits.shape[0]:
        raise ValueError(
            f"{path}: {logits.shape[0]} rows of scores but {len(ids)} video ids."
        )
    return Scores(logits, ids, labels)
