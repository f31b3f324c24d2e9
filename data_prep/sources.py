"""Where the videos are: split lists and folder trees → `records.Item`s.

Sources (all return `(labels, {split: [Item]})`, labels sorted, label index =
position in `labels`):

- `class_folder_items`: `<root>/<class>/<video or frame folder>`.
- `release_list_items`: the release's lists `<list_dir>/{train,test}_splitN.txt`
  (`path video_length label`, copied into `data_prep/lists/`) for UCF101 and
  HMDB51; Charades uses `charades_items`.
- `ucf101_official_items`: `classInd.txt`, `trainlist0N.txt`, `testlist0N.txt`.
- `hmdb51_official_items`: `<class>_test_splitN.txt` (1 train, 2 test,
  0 unused).

A list entry may point at a video file or at a release frame folder
(`image_%05d.jpg`, flow beside it or under `flow_root`); which one is decided
per entry when the record is written. Entries whose files are missing stay in
the lists: the writer reports them with the reason. Roots, lists and the
CSV may be local paths or URLs (`avlad_tf.storage`).
"""

import csv
import io
import os
import sys

from avlad_tf import storage
from data_prep import records

LISTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lists")
VIDEO_EXTENSIONS = (
    ".avi",
    ".mp4",
    ".mkv",
    ".mov",
    ".webm",
    ".mpg",
    ".mpeg",
    ".m4v",
    ".wmv",
    ".flv",
    ".3gp",
    ".ogv",
)


def _is_frame_folder(path):
    return storage.exists(storage.join(path, "image_00001.jpg"))


def class_folder_items(root, *, test_fraction, split_names=("train", "test")):
    """A folder per class; the last `test_fraction` of each (sorted) is test.

    Entries are video files (by extension) or release frame folders; other
    files, and half-written ones (`storage.replacing`'s temporary names), are
    counted and named on stderr, never used silently.
    """
    if not storage.isdir(root):
        raise FileNotFoundError(f"{root}: no such folder of class folders")
    labels = [d for d in storage.listdir(root) if storage.isdir(storage.join(root, d))]
    if not labels:
        raise ValueError(f"{root}: no class folders inside")
    unprintable = [label for label in labels if not label.isprintable()]
    if unprintable:
        # A newline would split labels.txt (the export's, TF Serving's)
        # into an extra class and misalign every label after it.
        raise ValueError(
            f"{root}: class folder name {unprintable[0]!r} holds a newline or "
            "another unprintable character; rename the folder"
        )
    splits = {name: [] for name in split_names}
    ignored = []
    for index, label in enumerate(labels):
        class_dir = storage.join(root, label)
        entries = []
        for name in storage.listdir(class_dir):
            path = storage.join(class_dir, name)
            if storage.TEMPORARY + "-" in name:
                ignored.append(path)
            elif name.lower().endswith(VIDEO_EXTENSIONS) or _is_frame_folder(path):
                entries.append((name, path))
            else:
                ignored.append(path)
        num_test = int(round(len(entries) * test_fraction))
        for i, (name, path) in enumerate(entries):
            split = split_names[1] if i >= len(entries) - num_test else split_names[0]
            stem = os.path.splitext(name)[0]
            splits[split].append(
                records.Item(video_id=f"{label}/{stem}", labels=(index,), path=path)
            )
    if ignored:
        print(
            f"{root}: ignored {len(ignored)} entries that are neither "
            f"videos nor frame folders, or are half written, e.g. {ignored[0]}",
            file=sys.stderr,
        )
    return labels, splits


def _read_lines(path):
    if not storage.isfile(path):
        raise FileNotFoundError(f"{path}: split list not found")
    with storage.open_file(path) as f:
        return [line.split() for line in f if line.strip()]


def _label_names(pairs, source):
    """Class names in label order from (label, name) pairs; checks them."""
    names = {}
    for label, name in pairs:
        if names.setdefault(label, name) != name:
            raise ValueError(
                f"{source}: label {label} is used for both "
                f"{names[label]!r} and {name!r}"
            )
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"{source}: labels are not 0..{len(names) - 1}")
    return [names[i] for i in range(len(names))]


def _locate(root, list_path, flow_root, fallback=None):
    """(path, flow path) of a list entry: frame folder or video file."""
    relative = list_path
    if fallback and not storage.exists(storage.join(root, list_path)):
        relative = fallback  # reported if missing too
    flow = storage.join(flow_root, relative) if flow_root else ""
    return storage.join(root, relative), flow


def _hmdb_originals(list_dir):
    """`class/N` → original file name, from AllVideos.txt (1-based N)."""
    for directory in (list_dir, os.path.join(LISTS_DIR, "hmdb51")):
        path = storage.join(directory, "AllVideos.txt")
        if storage.isfile(path):
            with storage.open_file(path) as f:
                names = [line.strip() for line in f if line.strip()]
            return {
                f"{name.split('/')[0]}/{n}": name
                for n, name in enumerate(names, start=1)
            }
    return {}


def release_list_items(dataset, *, list_dir, root, split_names, flow_root=""):
    """UCF101 / HMDB51 from the release's `path video_length label` lists.

    Labels keep the release's order (the list's label indices; the released
    checkpoints depend on it): alphabetical for HMDB51, case-insensitive
    alphabetical (`classInd.txt`) for UCF101. HMDB51 entries `class/N` are
    frame folders, or the original videos named by line N of AllVideos.txt.
    """
    originals = _hmdb_originals(list_dir) if dataset == "hmdb51" else {}
    pairs, splits = [], {}
    for split in split_names:
        source = storage.join(list_dir, f"{split}.txt")
        items = []
        for fields in _read_lines(source):
            if len(fields) != 3:
                raise ValueError(
                    f"{source}: expected `path video_length "
                    f"label`, got {' '.join(fields)!r}"
                )
            list_path, label = fields[0], int(fields[2])
            pairs.append((label, list_path.split("/")[0]))
            path, flow = _locate(root, list_path, flow_root, originals.get(list_path))
            items.append(
                records.Item(
                    video_id=list_path, labels=(label,), path=path, flow_path=flow
                )
            )
        splits[split] = items
    return _label_names(pairs, list_dir), splits


def ucf101_official_items(*, list_dir, root, split_names, flow_root=""):
    """UCF101's own `classInd.txt`, `trainlist0N.txt`, `testlist0N.txt`."""
    index_file = storage.join(list_dir, "classInd.txt")
    labels = [fields[1] for fields in _read_lines(index_file)]
    by_name = {name: i for i, name in enumerate(labels)}
    splits = {}
    for split in split_names:
        kind, number = split.split("_split")
        source = storage.join(list_dir, f"{kind}list{int(number):02d}.txt")
        items = []
        for fields in _read_lines(source):
            list_path = fields[0]
            name = list_path.split("/")[0]
            if name not in by_name:
                raise ValueError(f"{source}: class {name!r} is not in {index_file}")
            path, flow = _locate(root, list_path, flow_root)
            items.append(
                records.Item(
                    video_id=list_path,
                    labels=(by_name[name],),
                    path=path,
                    flow_path=flow,
                )
            )
        splits[split] = items
    return labels, splits


def hmdb51_official_items(*, list_dir, root, split_names, flow_root=""):
    """HMDB51's `<class>_test_splitN.txt`: 1 train, 2 test, 0 unused.

    Video ids are the release's `class/N` names where AllVideos.txt knows
    the file, so records match the release's lists and logits.
    """
    renamed = {name: renamed for renamed, name in _hmdb_originals(list_dir).items()}
    files = sorted(
        f
        for f in storage.listdir(list_dir)
        if "_test_split" in f and f.endswith(".txt")
    )
    labels = sorted({f.rsplit("_test_split", 1)[0] for f in files})
    if not labels:
        raise FileNotFoundError(f"{list_dir}: no <class>_test_splitN.txt")
    splits = {}
    for split in split_names:
        kind, number = split.split("_split")
        wanted = {"train": "1", "test": "2"}[kind]
        items = []
        for index, label in enumerate(labels):
            source = storage.join(list_dir, f"{label}_test_split{number}.txt")
            for fields in _read_lines(source):
                if len(fields) >= 2 and fields[1] == wanted:
                    original = f"{label}/{fields[0]}"
                    video_id = renamed.get(original, os.path.splitext(original)[0])
                    path, flow = _locate(root, original, flow_root, video_id)
                    items.append(
                        records.Item(
                            video_id=video_id,
                            labels=(index,),
                            path=path,
                            flow_path=flow,
                        )
                    )
        splits[split] = items
    return labels, splits


CHARADES_CLASSES = 157


def _charades_actions(csv_path):
    """{video id: sorted class indices} from a Charades CSV."""
    actions = {}
    # newline="" as csv needs: a quoted field may hold a line break.
    text = storage.read_bytes(csv_path).decode("utf-8")
    with io.StringIO(text, newline="") as f:
        for row in csv.DictReader(f):
            classes = {
                int(a.split()[0][1:])
                for a in (row.get("actions") or "").split(";")
                if a.strip()
            }
            actions[row["id"]] = tuple(sorted(classes))
    return actions


def charades_items(*, list_dir, root, split_names, flow_root="", csv_path=""):
    """Charades v1: whole multi-label test videos and training clips.

    3-field lines (`X/ID.mp4 num_frames -1`) are whole videos labelled with
    every class of the video in the CSV; 4-field lines
    (`X/ID.mp4 start num_frames class`) are clips cut at the annotated
    action boundaries (docs/RELEASE.md Sec. 1.4), with frame indices
    taken as 0-based indices into the decoded video. Video ids are the
    Charades ids; clips are `ID@start-end/cNNN`. A video may sit at
    `root/X/ID.mp4` (release layout) or `root/ID.mp4` (the official zip).
    """
    labels = [f"c{i:03d}" for i in range(CHARADES_CLASSES)]
    csv_path = csv_path or storage.join(list_dir, "Charades_v1_test.csv")
    actions = None
    splits = {}
    for split in split_names:
        source = storage.join(list_dir, f"{split}.txt")
        items = []
        for fields in _read_lines(source):
            list_path = fields[0]
            vid = os.path.splitext(os.path.basename(list_path))[0]
            path, flow = _locate(
                root, list_path, flow_root, os.path.basename(list_path)
            )
            if len(fields) == 3:
                if actions is None:
                    actions = _charades_actions(csv_path)
                if vid not in actions:
                    raise ValueError(f"{source}: {vid} is not in {csv_path}")
                items.append(
                    records.Item(
                        video_id=vid, labels=actions[vid], path=path, flow_path=flow
                    )
                )
            elif len(fields) == 4:
                start, count, label = (int(x) for x in fields[1:])
                items.append(
                    records.Item(
                        video_id=f"{vid}@{start}-{start + count}/c{label:03d}",
                        labels=(label,),
                        path=path,
                        flow_path=flow,
                        start_frame=start,
                        clip_length=count,
                    )
                )
            else:
                raise ValueError(f"{source}: cannot parse {' '.join(fields)!r}")
        splits[split] = items
    return labels, splits
