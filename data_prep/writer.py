"""Writes items as sharded TFRecords: parallel, resumable, nothing dropped.

Layout of a prepared dataset (docs/CONTRACTS.md):

    DATA_DIR/<split>-<i:05d>-of-<n:05d>.tfrecord   the shards
    DATA_DIR/metadata.json, labels.txt             `schema.write_metadata`
    DATA_DIR/report.json                           every left-out video + why
    DATA_DIR/.progress/                            per-shard completion notes

Items are assigned to shards by position in their split's record order, and
a shard holds its items in that order, so the output does not depend on
`workers` or on interruptions. The record order is the list order, except
for training splits (names starting with "train"), which are written in a
seeded shuffled order (`record_order`): the release's lists are sorted by
class, and training reads a few shards at a time through a small shuffle
buffer, so list-ordered shards would give updates of only a few classes
(docs/DATA.md, "Record order"). A shard is written to `<name>.tmp` and
renamed when complete; its completion note (record count, left-out videos,
checksum) is written just before, so a re-run skips only finished shards whose
checksum still matches, and still knows their counts (`resume`: a rerun with
other settings or another input is refused).
"""

import collections
from concurrent import futures
import dataclasses
import math
import multiprocessing
import os
import random
import signal
import sys

import tensorflow as tf

from avlad_tf import progress
from avlad_tf import settings
from avlad_tf.data import schema
from data_prep import records
from data_prep import resume
from data_prep import video_io

PROGRESS_DIR = ".progress"
REPORT_FILE = "report.json"


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


def is_training_split(split):
    """Training splits are written shuffled; others keep list order."""
    return split.startswith("train")


def record_order(splits, *, shuffle_seed):
    """{split: [items]} in the order they are written, and how it was made.

    Training splits get a permutation seeded by `shuffle_seed` and the split
    name (`random.Random` seeds from a string through SHA-512, so the order
    is the same on every machine and Python version); `shuffle_seed=None`
    keeps every split in list order.

    Returns:
        (ordered splits, {split: {"order": "list"} or
        {"order": "shuffled", "seed": shuffle_seed}}), the second for
        `metadata.json`.
    """
    ordered, how = {}, {}
    for split, items in splits.items():
        items = list(items)
        if shuffle_seed is not None and is_training_split(split):
            random.Random(f"{shuffle_seed}:{split}").shuffle(items)
            how[split] = {"order": "shuffled", "seed": shuffle_seed}
        else:
            how[split] = {"order": "list"}
        ordered[split] = items
    return ordered, how


def plan_shards(splits, records_per_shard):
    """{split: [(shard file, [items])]} in list order."""
    plan = {}
    for split, items in splits.items():
        count = math.ceil(len(items) / records_per_shard)
        plan[split] = [
            (
                shard_name(split, i, count),
                items[i * records_per_shard : (i + 1) * records_per_shard],
            )
            for i in range(count)
        ]
    return plan


def _note_path(output_dir, shard):
    return os.path.join(output_dir, PROGRESS_DIR, shard + ".json")


def finished_records(output_dir, shards):
    """The record count of `shards`, which an executor has just written
    (`resume.written_note`: each with its note, at the size it records).

    Raises:
        RuntimeError: naming a shard that an executor did not finish.
    """
    total = 0
    for shard in shards:
        path = os.path.join(output_dir, shard)
        note = resume.written_note(path, _note_path(output_dir, shard))
        if note is None:
            raise RuntimeError(f"{path} was not written; run the same command again")
        total += note["num_records"]
    return total


def _worker_init(options):
    # Ctrl-C reaches the whole process group: the parent reports it once and
    # ends the pool; workers must not each print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    records.prepare_worker(options)


def _map(items, options, workers, *, start_method="fork"):
    """`encode_task` over `items`, results in order.

    A `concurrent.futures` pool rather than `multiprocessing.Pool`: when a
    worker dies (a decoder segfault), the former raises `BrokenProcessPool`
    where the latter waits forever for the lost result.
    """
    if workers <= 1:
        records.prepare_worker(options)
        yield from (encode_task(item, options) for item in items)
        return
    context = multiprocessing.get_context(start_method)
    with futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_worker_init, initargs=(options,)
    ) as pool:
        # Submitted here rather than by `pool.map`, whose iterator cancels
        # the pending futures when it stops: ending the workers then makes
        # the pool's thread fail those cancelled futures (InvalidStateError).
        pending = [pool.submit(encode_task, item, options) for item in items]
        try:
            for future in pending:
                yield future.result()
        except futures.process.BrokenProcessPool as e:
            raise RuntimeError(
                "a worker process died while preparing a video (a crashing "
                "decoder?); finished shards are kept, so rerun with "
                "--workers=1 to see which video, or prepare on Beam, which "
                "isolates each video (docs/DATA_PREP.md, On Apache Beam)"
            ) from e
        except BaseException:
            # Ctrl-C, or a shard that cannot be written (a full disk): the
            # pool would otherwise encode every queued video before leaving.
            # Its workers hold nothing to keep (shards are written here).
            # Ended, they break the pool, which fails the queued videos, and
            # the `with` returns at once.
            for worker in multiprocessing.active_children():
                worker.terminate()
            raise


@dataclasses.dataclass(frozen=True)
class LocalPool:
    """Writes the planned shards with a process pool on this machine."""

    workers: int = 1

    @property
    def description(self):
        return f"with {self.workers} worker(s)"

    def write(self, output_dir, todo, options):
        """Writes `todo` (`[(split, shard, items)]`); returns the record count."""
        items = [item for _, _, shard_items in todo for item in shard_items]
        # The keras flow backend runs XLA in the workers, and a forked child
        # of a process whose TensorFlow runtime has started can hang.
        start_method = "spawn" if options.flow_backend == "keras" else "fork"
        results = _map(items, options, self.workers, start_method=start_method)
        bar = progress.Progress(len(items), what="prepare")
        return sum(
            write_shard(
                output_dir,
                split,
                shard,
                shard_items,
                results,
                bar.update,
                flow_backend=options.flow_backend,
            )
            for split, shard, shard_items in todo
        )


@dataclasses.dataclass
class Summary:
    """What `write_dataset` did."""

    splits: dict
    left_out: list
    written: int
    skipped_shards: int
    record_order: dict
    notes: list = dataclasses.field(default_factory=list)
    rebuilt_shards: int = 0
    # {shard: the flow backend that computed it (None: not recorded)}
    flow_backends: dict = dataclasses.field(default_factory=dict)
    label_counts: dict = dataclasses.field(default_factory=dict)


def write_dataset(
    *,
    output_dir,
    splits,
    options,
    workers=1,
    records_per_shard=32,
    fingerprint=None,
    shuffle_seed=0,
    executor=None,
):
    """Writes every split's items as shards; resumes a previous run.

    Args:
        output_dir: the dataset directory (created).
        splits: {split name: [records.Item]} in list order.
        options: `records.Options`.
        workers: processes over videos (1: in this process).
        records_per_shard: items per shard (fewer records where some fail).
        fingerprint: JSON-able settings a resumed run must share.
        shuffle_seed: seeds the record order of training splits
            (`record_order`); None writes every split in list order.
        executor: what encodes the videos and writes the shards that are not
            finished: `LocalPool(workers)` (the default) or
            `beam_writer.BeamPipeline`. Both call `encode_task` and
            `write_shard`, so their output is the same byte for byte.

    Returns:
        A `Summary`: `splits` is the metadata manifest
        `{split: {"num_records", "shards": [{"file", "num_records"}]}}`,
        `left_out` lists `{"split", "video_id", "path", "reason"}`.
    """
    resume.check_unique_ids(splits)
    progress_dir = os.path.join(output_dir, PROGRESS_DIR)
    os.makedirs(progress_dir, exist_ok=True)
    splits, order = record_order(splits, shuffle_seed=shuffle_seed)
    resume.check_settings(
        progress_dir,
        dict(
            fingerprint or {},
            options=records.output_settings(options),
            records_per_shard=records_per_shard,
            record_order=order,
        ),
        resume.describe_inputs(splits),
    )
    plan = plan_shards(splits, records_per_shard)
    states = {
        shard: resume.shard_state(
            os.path.join(output_dir, shard), _note_path(output_dir, shard)
        )
        for shards in plan.values()
        for shard, _ in shards
    }
    todo = [
        (split, shard, items)
        for split, shards in plan.items()
        for shard, items in shards
        if states[shard] != "finished"
    ]
    skipped = len(states) - len(todo)
    rebuilt = sum(state == "damaged" for state in states.values())
    total = sum(len(items) for _, _, items in todo)
    executor = executor or LocalPool(workers)
    print(
        f"Writing {total} videos into {len(todo)} shards {executor.description} "
        f"({skipped} finished shards verified and skipped"
        + (f", {rebuilt} damaged shards rebuilt" if rebuilt else "")
        + ").",
        file=sys.stderr,
    )
    try:
        written = executor.write(output_dir, todo, options)
    except KeyboardInterrupt as interrupt:
        finished = sum(os.path.exists(os.path.join(output_dir, s)) for s in states)
        raise KeyboardInterrupt(
            f"{finished} of {len(states)} shards finished in {output_dir}"
        ) from interrupt
    summary = _summarise(output_dir, plan, written, skipped, order)
    summary.rebuilt_shards = rebuilt
    return summary


def write_shard(
    output_dir, split, shard, items, results, on_video=None, *, flow_backend
):
    """Writes one shard, in the order of `items`, from `results` (an iterator
    of `encode_task` results for those items); returns its record count.

    Written to `<shard>.tmp` and renamed when complete, after its completion
    note (`resume.shard_state`), which records the `flow_backend` that
    computed its flow; `on_video` is called after each video.
    """
    path = os.path.join(output_dir, shard)
    note = {"num_records": 0, "left_out": [], "notes": []}
    note["flow_backend"] = flow_backend
    with settings.replacing(path) as tmp:
        _write_records(tmp, split, items, results, note, on_video)
        note["sha256"] = resume.checksum(tmp)
        note["size"] = os.path.getsize(tmp)
        # The note first: a shard file never exists without one, and a note
        # whose shard is missing or differs makes a rerun rebuild it.
        resume.write_json(_note_path(output_dir, shard), note)
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


def _summarise(output_dir, plan, written, skipped, order):
    manifest, left_out, notes, label_counts, backends = {}, [], [], {}, {}
    for split, shards in plan.items():
        entries, counts = [], collections.Counter()
        for shard, items in shards:
            note = resume.read_json(_note_path(output_dir, shard))
            backends[shard] = note.get("flow_backend")
            entries.append({"file": shard, "num_records": note["num_records"]})
            left_out.extend(note["left_out"])
            notes.extend(note.get("notes", []))
            dropped = {e["video_id"] for e in note["left_out"]}
            counts.update(
                label
                for item in items
                if item.video_id not in dropped
                for label in item.labels
            )
        label_counts[split] = dict(counts)
        manifest[split] = {
            "num_records": sum(e["num_records"] for e in entries),
            # Charades: training clips carry one label, test videos several;
            # training picks its loss from this (`train_stream.loss`).
            "max_labels_per_video": max(
                (len(item.labels) for _, items in shards for item in items), default=0
            ),
            "shards": entries,
        }
    resume.write_json(
        os.path.join(output_dir, REPORT_FILE),
        {"num_left_out": len(left_out), "left_out": left_out, "notes": notes},
    )
    return Summary(
        manifest,
        left_out,
        written,
        skipped,
        order,
        notes,
        label_counts=label_counts,
        flow_backends=backends,
    )


def empty_classes(summary, labels):
    """`{split: [class names]}` of classes with no video left in a split.

    Recorded in `report.json` (`empty_classes`) for the run to warn about.
    """
    empty = {}
    for split, counts in summary.label_counts.items():
        missing = [name for index, name in enumerate(labels) if not counts.get(index)]
        if missing:
            empty[split] = missing
    return empty


def finish(*, output_dir, summary, dataset, labels, multi_label, options, extra=None):
    """Writes metadata.json and labels.txt for a completed dataset."""
    schema.write_metadata(
        output_dir,
        dict(
            extra or {},
            dataset=dataset,
            labels=list(labels),
            num_classes=len(labels),
            multi_label=bool(multi_label),
            frame_height=options.height,
            frame_width=options.width,
            flow=records.flow_metadata(options, summary.flow_backends),
            splits=summary.splits,
            record_order=summary.record_order,
            num_left_out=len(summary.left_out),
        ),
    )
    report_path = os.path.join(output_dir, REPORT_FILE)
    report = resume.read_json(report_path)
    report["empty_classes"] = empty_classes(summary, labels)
    resume.write_json(report_path, report)
