"""Kinetics-400 and -600: the release's CSVs and its trimmed clips → `records.Item`s.

Kay et al. 2017 (Kinetics-400), Carreira et al. 2018 (Kinetics-600);
docs/DATA_PREP.md, Kinetics.

- CSVs (`--list_dir`): one per split, `<split>.csv` or a name ending in
  `_<split>.csv` / `-<split>.csv` (`kinetics-600_val.csv`); `val` and
  `validate` find each other. The header is the release's
  `label,youtube_id,time_start,time_end,split` (extra columns such as `is_cc`
  are ignored); a test CSV may have no `label` column (unlabelled records).
- Clips (`--input_dir`): `<youtube_id>_<start:06d>_<end:06d>.mp4` (any video
  extension), as ActivityNet's `Crawler/Kinetics/download.py` names them,
  found by name up to three folders below the root: `<class>/<clip>`,
  `<split>/<class>/<clip>` (mmaction2, CVDF's `arrange_by_classes.py`),
  `test/<clip>`, `<split>/<clip>` (CVDF's tars) or `<clip>`. A class folder
  matches its label however a script renamed it (`folder_key`).
- Video id: the clip's file stem. The clips are already trimmed, so each is
  used whole.
- Labels: the sorted class names (the order of DeepMind's `label_map.txt`).

A clip the CSV lists but the copy lacks (many YouTube videos are gone) stays
in its split at its expected path; the writer reports it in `report.json`
(`missing: no such file`) and the run exits 1 unless `--allow_missing`.
"""

import collections
import csv
import glob as globbing
import io
import os
import sys

from avlad_tf import storage
from data_prep import records
from data_prep import sources

NUM_CLASSES = {"kinetics400": 400, "kinetics600": 600}
DEFAULT_SPLITS = ("train", "val")
# The `split` column's spellings of one split.
_SPLIT_ALIASES = {"validate": "val"}
_KINDS = ("train", "val", "test")
_REQUIRED_COLUMNS = ("youtube_id", "time_start", "time_end")
# <split>/<class>/<clip> below --input_dir is the deepest layout the
# common scripts write (mmaction2's videos_train/<class>/).
_DEPTH = 3


def clip_id(youtube_id, start, end):
    """`<youtube_id>_<start:06d>_<end:06d>`: a clip's file stem as the
    download scripts name it, and its video id."""
    return f"{youtube_id}_{start:06d}_{end:06d}"


def folder_key(name):
    """What a class folder shares with its label whatever a script renamed:
    its letters and digits, lower case. `passing American football (in
    game)` (ActivityNet's and CVDF's folders), `..._(in_game)` (mmaction2's
    spaces as `_`) and `..._-in_game-` (its older `(`, `)` as `-`) all match;
    no two Kinetics-400/600 classes share a key."""
    return "".join(c for c in name.lower() if c.isalnum())


def _kind(split):
    """train, val or test for a split name (`holdout_test`: test), else ''."""
    last = split.rsplit("_", 1)[-1]
    last = _SPLIT_ALIASES.get(last, last)
    return last if last in _KINDS else ""


def _csv_candidates(list_dir, split):
    names = {split} | {a for a, c in _SPLIT_ALIASES.items() if c == split}
    names |= {_SPLIT_ALIASES.get(split, split)}
    csvs = [f for f in storage.listdir(list_dir) if f.lower().endswith(".csv")]
    exact = [f for f in csvs if f[:-4] in names]
    suffixes = tuple(f"{sep}{name}" for name in names for sep in "_-")
    return exact or [f for f in csvs if f[:-4].endswith(suffixes)]


def find_csv(list_dir, split):
    """The CSV of `split` in `list_dir` (module docstring).

    Raises:
        FileNotFoundError: no CSV for `split`.
        ValueError: several, e.g. `test.csv` and `kinetics600_holdout_test.csv`
            for `test` (`holdout_test` names the second).
    """
    if not storage.isdir(list_dir):
        raise FileNotFoundError(f"--list_dir={list_dir}: no such folder of CSVs")
    found = _csv_candidates(list_dir, split)
    if not found:
        raise FileNotFoundError(
            f"{list_dir}: no CSV for split {split!r} ({split}.csv or *_{split}.csv)"
        )
    if len(found) > 1:
        raise ValueError(
            f"{list_dir}: {', '.join(found)} could all be split {split!r}; name "
            "the split by more of its file name (--splits) or move the others"
        )
    return storage.join(list_dir, found[0])


def _seconds(value, where):
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if seconds < 0 or not seconds.is_integer():
        raise ValueError(f"{where}: {value!r} is not a whole number of seconds")
    return int(seconds)


def read_csv(path, split):
    """`[(clip id, label or None)]` of a Kinetics CSV, in file order, each
    clip once.

    Raises:
        ValueError: a column missing from the header, a bad time, a row of
            another split, or one clip listed with two labels.
    """
    text = storage.read_bytes(path).decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    reader.fieldnames = [name.strip() for name in reader.fieldnames or ()]
    missing = [c for c in _REQUIRED_COLUMNS if c not in reader.fieldnames]
    if missing:
        raise ValueError(
            f"{path}: no {', '.join(missing)} column (the release's header is "
            f"label,youtube_id,time_start,time_end,split; this one is "
            f"{','.join(reader.fieldnames)})"
        )
    labels, kind = {}, _kind(split)
    for line, row in enumerate(reader, start=2):
        where = f"{path} line {line}"
        value = (row.get("split") or "").strip()
        if kind and value and _SPLIT_ALIASES.get(value, value) != kind:
            raise ValueError(f"{where}: split {value!r} in the CSV of {split!r}")
        youtube_id = (row["youtube_id"] or "").strip()
        if not youtube_id:
            raise ValueError(f"{where}: no youtube_id")
        clip = clip_id(
            youtube_id,
            _seconds(row["time_start"], where),
            _seconds(row["time_end"], where),
        )
        label = (row.get("label") or "").strip() or None
        if labels.setdefault(clip, label) != label:
            raise ValueError(f"{where}: {clip} is also labelled {labels[clip]!r}")
    return list(labels.items())


def _label_map(dataset, list_dir, rows):
    """The sorted class names of the splits' CSVs and, when there is one,
    the train CSV's, so that a split prepared on its own (an unlabelled test
    split too) gets the same label indices."""
    names = {label for split_rows in rows.values() for _, label in split_rows}
    if "train" not in rows and len(_csv_candidates(list_dir, "train")) == 1:
        names |= {label for _, label in read_csv(find_csv(list_dir, "train"), "")}
    labels = sorted(names - {None})
    keys = {}
    for label in labels:
        if not label.isprintable():
            raise ValueError(f"{list_dir}: label {label!r} is not printable")
        other = keys.setdefault(folder_key(label), label)
        if other != label:
            raise ValueError(
                f"{list_dir}: labels {other!r} and {label!r} would match the "
                "same class folder"
            )
    if len(labels) != NUM_CLASSES[dataset]:
        print(
            f"Warning: the CSVs in {list_dir} name {len(labels)} classes; "
            f"{dataset} has {NUM_CLASSES[dataset]}.",
            file=sys.stderr,
        )
    return labels


def index_clips(root):
    """`{file stem: [paths]}` of the video files up to `_DEPTH` folders below
    `root`: one listing per depth, not a stat per clip."""
    base = globbing.escape(root) if storage.is_local(root) else root
    index = collections.defaultdict(list)
    for depth in range(1, _DEPTH + 1):
        for path in storage.glob(storage.join(base, *["*"] * depth)):
            stem, extension = os.path.splitext(os.path.basename(path))
            if extension.lower() in sources.VIDEO_EXTENSIONS:
                index[stem].append(path)
    return index


def _parent_key(path):
    return folder_key(os.path.basename(os.path.dirname(path)))


def _pick(paths, key, class_keys):
    """`(path, misplaced)`: the file in the clip's class folder, else one in a
    folder of no class (a split folder, `test/`, the root), else one in
    another class's folder (misplaced: the CSV's label is used)."""
    for path in paths:
        if key and _parent_key(path) == key:
            return path, False
    for path in paths:
        if _parent_key(path) not in class_keys:
            return path, False
    return paths[0], bool(key)


def _locate(rows, labels, index):
    """`{split: [(clip, label, path or None)]}` and the misplaced paths."""
    class_keys = {folder_key(label) for label in labels}
    located, misplaced = {}, []
    for split, split_rows in rows.items():
        located[split] = []
        for clip, label in split_rows:
            path = None
            if index.get(clip):
                key = folder_key(label) if label else ""
                path, wrong = _pick(index[clip], key, class_keys)
                if wrong:
                    misplaced.append(path)
            located[split].append((clip, label, path))
    return located, misplaced


def _expected_folders(located):
    """`{(split, label) or label: folder}` holding most of the split's (or
    any split's) found clips of that class: where a missing one would be."""
    counts = collections.defaultdict(collections.Counter)
    for split, entries in located.items():
        for _, label, path in entries:
            if path:
                counts[split, label][os.path.dirname(path)] += 1
                counts[label][os.path.dirname(path)] += 1
    return {key: count.most_common(1)[0][0] for key, count in counts.items()}


def kinetics_items(dataset, *, list_dir, root, split_names=DEFAULT_SPLITS):
    """Kinetics-400/600 from the release's CSVs and a copy of its clips.

    Args:
        dataset: `kinetics400` or `kinetics600` (`NUM_CLASSES`).
        list_dir: the folder of the CSVs (`find_csv`); local or a URL.
        root: the clips (module docstring); local or a URL.
        split_names: the splits to read, each from its CSV.

    Returns:
        `(labels, {split: [records.Item]})`; a missing clip's item has the
        path it would have (its class's folder, else `root/<label>/`, or
        `root/` for an unlabelled clip), where the writer finds nothing.
    """
    rows = {split: read_csv(find_csv(list_dir, split), split) for split in split_names}
    labels = _label_map(dataset, list_dir, rows)
    label_index = {label: i for i, label in enumerate(labels)}
    located, misplaced = _locate(rows, labels, index_clips(root))
    expected = _expected_folders(located)
    splits, missing, missing_paths = {}, collections.Counter(), {}
    for split, entries in located.items():
        splits[split] = []
        for clip, label, path in entries:
            if path is None:
                missing[split] += 1
                folder = storage.join(root, label) if label else root
                folder = expected.get((split, label), expected.get(label, folder))
                # One path per clip, as for a found one: a clip in two
                # splits' CSVs is one video (resume.check_unique_ids).
                path = missing_paths.setdefault(
                    clip, storage.join(folder, clip + ".mp4")
                )
            splits[split].append(
                records.Item(
                    video_id=clip,
                    labels=(label_index[label],) if label else (),
                    path=path,
                )
            )
    _summarise(dataset, root, splits, missing, misplaced)
    return labels, splits


def _summarise(dataset, root, splits, missing, misplaced):
    """One line on what the copy lacks (each missing clip is in report.json)."""
    total = sum(len(items) for items in splits.values())
    found = total - sum(missing.values())
    line = f"{dataset}: {found} of the CSVs' {total} clips are under {root}"
    if missing:
        per_split = ", ".join(f"{split} {n}" for split, n in missing.items())
        line += (
            f"; {sum(missing.values())} missing ({per_split}), each left out "
            "and listed in report.json"
        )
    print(line + ".", file=sys.stderr)
    if misplaced:
        print(
            f"{len(misplaced)} clips are in another class's folder (e.g. "
            f"{misplaced[0]}); they are labelled as the CSV says.",
            file=sys.stderr,
        )
