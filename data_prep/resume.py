"""Reruns of data preparation: never keep output that disagrees with the input.

A preparation run records, in `DATA_DIR/.progress/`:

- `options.json`: every setting that decides the output (record options,
  shard size, record order, the dataset's source settings);
- `inputs.json`: the resolved input, per split the `[video_id, path,
  labels, start_frame, clip_length, size, mtime_ns]` of every item in list
  order, where size and modification time (`source_stat`) tell a source
  replaced under the same name;
- `<shard>.json` per finished shard: its record count, left-out videos,
  notes and the SHA-256 of the shard file.

A rerun refuses other settings or another input and names what changed; it
skips a finished shard only after its checksum matches, and rebuilds a
damaged one.
"""

from concurrent import futures
import hashlib

from avlad_tf import settings
from avlad_tf import storage

OPTIONS_FILE = "options.json"
INPUTS_FILE = "inputs.json"
_SHOWN = 5  # changed entries named in a message
_STAT_THREADS = 32  # sources stat-ed at once (`describe_inputs`)


def write_json(path, value):
    """Writes JSON atomically (`avlad_tf.settings.write_json`), keys sorted."""
    settings.write_json(path, value, indent=1, sort_keys=True)


read_json = settings.read_json


def check_unique_ids(splits):
    """One id, one video: two files stored under one id would be confused in
    scores and fusion. (A video listed in several splits keeps its id.)

    Raises:
        ValueError: naming the id and both files.
    """
    paths = {}
    for split, items in splits.items():
        in_split = set()
        for item in items:
            known = paths.setdefault(item.video_id, item.path)
            if known != item.path or item.video_id in in_split:
                raise ValueError(
                    f"{known} and {item.path} would both be stored as video "
                    f"id {item.video_id!r} ({split}); rename one of them."
                )
            in_split.add(item.video_id)


def source_stat(path):
    """`[size, mtime_ns]` of a video file; a frame folder's `[number of
    entries, mtime_ns]` (a frame rewritten in place goes unnoticed: listing
    every frame would cost a stat per frame); None for a missing source. A
    URL's modification time is its store's (`ram://` has none: 0)."""
    try:
        stat = storage.stat(path)
    except OSError:
        return None
    size = len(storage.listdir(path)) if stat.is_directory else stat.size
    return [size, stat.mtime_ns]


def describe_inputs(splits):
    """`inputs.json`'s content for `{split: [records.Item]}`."""
    paths = [i.path for items in splits.values() for i in items]
    # An object store answers one stat per round trip: Kinetics-400's
    # ~266,000 clips on a bucket, one after another, would take hours.
    with futures.ThreadPoolExecutor(_STAT_THREADS) as pool:
        stats = iter(list(pool.map(source_stat, paths)))
    return settings.jsonable(
        {
            split: [
                [i.video_id, i.path, list(i.labels), i.start_frame, i.clip_length]
                + (next(stats) or [None, None])
                for i in items
            ]
            for split, items in splits.items()
        }
    )


def _input_changes(previous, current):
    """Human-readable differences between two `describe_inputs` results."""
    changes = []
    for split in sorted(set(previous) | set(current)):
        before = {e[0]: e for e in previous.get(split, [])}
        after = {e[0]: e for e in current.get(split, [])}
        added = [i for i in after if i not in before]
        removed = [i for i in before if i not in after]
        # Entries of a version without the sources' stat compare without it.
        changed = [
            i for i in after if i in before and after[i][: len(before[i])] != before[i]
        ]
        for what, ids in (("added", added), ("removed", removed), ("changed", changed)):
            if ids:
                shown = ", ".join(ids[:_SHOWN])
                more = f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else ""
                changes.append(f"{split}: {len(ids)} {what} ({shown}{more})")
        if not (added or removed or changed) and [
            e[0] for e in previous.get(split, [])
        ] != list(after):
            changes.append(f"{split}: the same videos in another order")
    return changes


def check_settings(progress_dir, fingerprint, inputs):
    """Records the settings and input of a new run, or refuses a rerun that
    differs from the recorded ones.

    Raises:
        ValueError: naming the settings or the videos that changed.
    """
    options_path = storage.join(progress_dir, OPTIONS_FILE)
    inputs_path = storage.join(progress_dir, INPUTS_FILE)
    fingerprint = settings.jsonable(fingerprint)
    if not storage.exists(options_path):
        write_json(inputs_path, inputs)
        write_json(options_path, fingerprint)
        return
    output_dir = storage.dirname(storage.absolute(progress_dir))
    hint = f"Use a new --output_dir, or delete {output_dir} to prepare it again."
    differing = settings.differences(read_json(options_path), fingerprint, sep=".")
    if differing:
        details = settings.describe(differing)
        raise ValueError(
            f"{output_dir} was prepared with other settings ({details}). {hint}"
        )
    recorded = read_json(inputs_path) if storage.exists(inputs_path) else {}
    changes = _input_changes(recorded, inputs)
    if changes:
        changed = any(" changed (" in change for change in changes)
        what = (
            " (a changed video: another path, labels, clip, or a file replaced "
            "under the same name)"
            if changed
            else ""
        )
        raise ValueError(
            f"{output_dir} was prepared from another input: "
            f"{'; '.join(changes)}{what}. {hint}"
        )
    if recorded != inputs:  # an older record, without the sources' stat
        write_json(inputs_path, inputs)


def checksum(path):
    """SHA-256 of a file, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with storage.open_file(path, "rb") as f:
        for block in iter(lambda: f.read(4 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def written_note(shard_path, note_path):
    """The note of a shard just written, or None when the note or the shard
    is missing or the shard is not the size the note records. Cheaper than
    `shard_state`: the shard is not read (its checksum was computed as it
    was written; a rerun verifies it)."""
    if not storage.exists(note_path) or not storage.exists(shard_path):
        return None
    note = read_json(note_path)
    return note if storage.size(shard_path) == note.get("size") else None


def shard_state(shard_path, note_path):
    """'todo' (never finished), 'finished' (checksum verified) or 'damaged'
    (finished, but the file is missing or differs from its checksum)."""
    if not storage.exists(note_path):
        return "todo"
    note = read_json(note_path)
    if not storage.exists(shard_path) or checksum(shard_path) != note.get("sha256"):
        return "damaged"
    return "finished"
