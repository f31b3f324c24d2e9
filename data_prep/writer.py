"""Writes items as sharded TFRecords: parallel, resumable, nothing dropped.

Layout of a prepared dataset (docs/CONTRACTS.md):

    DATA_DIR/<split>-<i:05d>-of-<n:05d>.tfrecord   the shards
    DATA_DIR/metadata.json, labels.txt             `schema.write_metadata`
    DATA_DIR/dataset_info.json, features.json, …   TFDS's (`tfds_info.write`)
    DATA_DIR/report.json                           every left-out video + why
    DATA_DIR/.progress/                            per-shard completion notes

Items are assigned to shards by position in their split's record order, and
a shard holds its items in that order, so the output does not depend on
`workers` or on interruptions. The record order is the list order, except
for training splits (names starting with "train"), which are written in a
seeded shuffled order (`record_order`): the release's lists are sorted by
class, and training reads a few shards at a time through a small shuffle
buffer, so list-ordered shards would give updates of only a few classes
(docs/DATA.md, "Record order"). A shard is written under a temporary name of
its own (`<name>.tmp-<pid>-<token>`) and renamed when complete; its
completion note (record count, left-out videos, checksum) is written just
before, so a re-run skips only finished shards whose checksum still matches,
and still knows their counts (`resume`: a rerun with other settings or
another input is refused). `DATA_DIR` may be a URL (`avlad_tf.storage`).
"""

import collections
import dataclasses
import math
import random
import sys

from avlad_tf import storage
from avlad_tf.data import schema
from data_prep import local_pool
from data_prep import records
from data_prep import resume
from data_prep import shards
from data_prep import tfds_info

REPORT_FILE = "report.json"


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
                shards.shard_name(split, i, count),
                items[i * records_per_shard : (i + 1) * records_per_shard],
            )
            for i in range(count)
        ]
    return plan


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
        output_dir: the dataset directory (created), local or a URL.
        splits: {split name: [records.Item]} in list order.
        options: `records.Options`.
        workers: processes over videos (1: in this process).
        records_per_shard: items per shard (fewer records where some fail).
        fingerprint: JSON-able settings a resumed run must share.
        shuffle_seed: seeds the record order of training splits
            (`record_order`); None writes every split in list order.
        executor: what encodes the videos and writes the shards that are not
            finished: `local_pool.LocalPool(workers)` (the default) or
            `beam_writer.BeamPipeline`. Both call `shards.encode_task` and
            `shards.write_shard`, so their output is the same byte for byte.

    Returns:
        A `Summary`: `splits` is the metadata manifest
        `{split: {"num_records", "shards": [{"file", "num_records"}]}}`,
        `left_out` lists `{"split", "video_id", "path", "reason"}`.
    """
    resume.check_unique_ids(splits)
    progress_dir = storage.join(output_dir, shards.PROGRESS_DIR)
    storage.makedirs(progress_dir)
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
            storage.join(output_dir, shard), shards.note_path(output_dir, shard)
        )
        for planned in plan.values()
        for shard, _ in planned
    }
    todo = [
        (split, shard, items)
        for split, planned in plan.items()
        for shard, items in planned
        if states[shard] != "finished"
    ]
    skipped = len(states) - len(todo)
    rebuilt = sum(state == "damaged" for state in states.values())
    total = sum(len(items) for _, _, items in todo)
    shards.remove_leftovers(output_dir)
    executor = executor or local_pool.LocalPool(workers)
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
        finished = sum(storage.exists(storage.join(output_dir, s)) for s in states)
        raise KeyboardInterrupt(
            f"{finished} of {len(states)} shards finished in {output_dir}"
        ) from interrupt
    summary = _summarise(output_dir, plan, written, skipped, order)
    summary.rebuilt_shards = rebuilt
    return summary


def _summarise(output_dir, plan, written, skipped, order):
    manifest, left_out, notes, label_counts, backends = {}, [], [], {}, {}
    for split, planned in plan.items():
        entries, counts = [], collections.Counter()
        for shard, items in planned:
            note = resume.read_json(shards.note_path(output_dir, shard))
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
                (len(item.labels) for _, items in planned for item in items), default=0
            ),
            "shards": entries,
        }
    resume.write_json(
        storage.join(output_dir, REPORT_FILE),
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
        if not summary.splits[split]["max_labels_per_video"]:
            continue  # unlabelled (a Kinetics test CSV): no class to miss
        missing = [name for index, name in enumerate(labels) if not counts.get(index)]
        if missing:
            empty[split] = missing
    return empty


def finish(*, output_dir, summary, dataset, labels, multi_label, options, extra=None):
    """Writes metadata.json and labels.txt for a completed dataset, and TFDS's
    metadata before them (`tfds_info`: metadata.json marks it complete)."""
    tfds_info.write(
        output_dir,
        dataset=dataset,
        labels=labels,
        multi_label=multi_label,
        splits=summary.splits,
        label_counts=summary.label_counts,
    )
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
    report_path = storage.join(output_dir, REPORT_FILE)
    report = resume.read_json(report_path)
    report["empty_classes"] = empty_classes(summary, labels)
    resume.write_json(report_path, report)
