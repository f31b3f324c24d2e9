"""One shard of a prepared dataset: its name, the per-video work that fills
it, how it is written and how its completion is noted.

Every executor (`local_pool.LocalPool`, `beam_writer.BeamPipeline`) calls
`encode_task` per video and `write_shard` per shard, so their output is the
same byte for byte; `writer.write_dataset` plans the shards and reads the
notes (docs/CONTRACTS.md).
"""

import sys

import tensorflow as tf

from avlad_tf import storage
from data_prep import records
from data_prep import resume
from data_prep import video_io

PROGRESS_DIR = ".progress"


def shard_name(split, index, count):
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def encode_task(item, options):
    """The per-video work of every executor (the local process pool and the
    Beam pipeline, data_prep/beam_writer.py): `item` → `(serialized record or
    None, reason it was left out or '', note)`."""
    try:
        serialized, _, note = records.encode_item(item, options)
        return serialized, "", note
    except video_io.SourceError as e:
        return None, str(e), ""
    except Exception as e:  # pylint: disable=broad-except
        # Reported, not fatal: one odd file must not stop a 13k-video run.
        return None, f"error: {type(e).__name__}: {e}", ""


def note_path(output_dir, shard):
    return storage.join(output_dir, PROGRESS_DIR, shard + ".json")


def remove_leftovers(output_dir):
    """Removes the temporary files (`storage.replacing`'s) that a killed run
    left in `output_dir` and its notes. Each attempt writes its own name, so
    unlike a fixed `<shard>.tmp` no later run overwrites them; they are only
    removed here, before anything is written, so never run two preparations
    of one `output_dir` at once (a killed launcher's Dataflow job runs on:
    cancel it first, docs/DATA_PREP.md)."""
    pattern = f"*{storage.TEMPORARY}-*"
    leftovers = storage.glob(storage.join(output_dir, pattern))
    leftovers += storage.glob(storage.join(output_dir, PROGRESS_DIR, pattern))
    for path in leftovers:
        storage.remove(path)
    if leftovers:
        print(
            f"Removed {len(leftovers)} temporary file(s) that an interrupted "
            f"run left in {output_dir}, e.g. {leftovers[0]}.",
            file=sys.stderr,
        )


def finished_records(output_dir, shards):
    """The record count of `shards`, which an executor has just written
    (`resume.written_note`: each with its note, at the size it records).

    Raises:
        RuntimeError: naming a shard that an executor did not finish.
    """
    total = 0
    for shard in shards:
        path = storage.join(output_dir, shard)
        note = resume.written_note(path, note_path(output_dir, shard))
        if note is None:
            raise RuntimeError(f"{path} was not written; run the same command again")
        total += note["num_records"]
    return total


def write_shard(
    output_dir, split, shard, items, results, on_video=None, *, flow_backend
):
    """Writes one shard, in the order of `items`, from `results` (an iterator
    of `encode_task` results for those items); returns its record count.

    Written under a temporary name of this attempt's own (`storage.replacing`:
    `<shard>.tmp-<pid>-<token>`) and renamed when complete, after its
    completion note (`resume.shard_state`), which records the `flow_backend`
    that computed its flow; `on_video` is called after each video. Two
    attempts at one shard at once (a speculative or retried runner) write
    apart, and the last rename leaves one attempt's complete file; both
    attempts write the same bytes and note, so that note describes it.
    """
    path = storage.join(output_dir, shard)
    note = {"num_records": 0, "left_out": [], "notes": []}
    note["flow_backend"] = flow_backend
    with storage.replacing(path) as tmp:
        _write_records(tmp, split, items, results, note, on_video)
        note["sha256"] = resume.checksum(tmp)
        note["size"] = storage.size(tmp)
        # The note first: a shard file never exists without one, and a note
        # whose shard is missing or differs makes a rerun rebuild it.
        resume.write_json(note_path(output_dir, shard), note)
    return note["num_records"]


def _write_records(path, split, items, results, note, on_video):
    """Writes the records of `items` to `path`, noting what is left out."""
    with tf.io.TFRecordWriter(path) as writer:
        for item in items:
            serialized, reason, remark = next(results)
            entry = {"split": split, "video_id": item.video_id, "path": item.path}
            if serialized is None:
                note["left_out"].append(dict(entry, reason=reason))
            else:
                writer.write(serialized)
                note["num_records"] += 1
                if remark:
                    note["notes"].append(dict(entry, note=remark))
            if on_video:
                on_video()
