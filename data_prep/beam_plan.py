"""The plan of a Beam run in a file, so that the pipeline graph stays small
(docs/DATA_PREP.md, "On Dataflow").

Which video goes into which shard, in which order, is decided by the
launching process (`writer.plan_shards`). Embedded in the pipeline graph, a
million videos' items would make a submitted job of hundreds of MB, more
than runners accept; so the launcher writes them to one file, a JSON line
per shard, and the graph carries only `(shard, offset, length)` per shard:
each worker reads its own shard's line.

The file is the pipeline's own, so it is written and read through Beam's
`FileSystems` (`gs://` on Dataflow, `s3://`, HDFS, local paths, or a
filesystem a test registers); the dataset's files go through
`avlad_tf.storage` in `shards.write_shard`, which the local process pool
shares. Each run writes a file of its own (`storage.temporary_name`), so no
plan changes under a job that reads it. It is removed once the pipeline has
succeeded; one that a failed or killed run leaves is removed by the next run
(`shards.remove_leftovers`).
"""

import collections
import dataclasses
import json

from apache_beam.io import filesystem
from apache_beam.io import filesystems

from avlad_tf import storage
from data_prep import records
from data_prep import shards

NAME = "plan.jsonl"
_RAW = filesystem.CompressionTypes.UNCOMPRESSED

# The plan file, and `(shard, offset, length)` of each shard's line in it.
Plan = collections.namedtuple("Plan", ["path", "shards"])


def write(output_dir, todo):
    """Writes the plan of `todo` (`[(split, shard, items)]`) to a new file
    under `output_dir`'s `.progress/`; returns its `Plan`."""
    path = storage.temporary_name(storage.join(output_dir, shards.PROGRESS_DIR, NAME))
    entries, offset = [], 0
    with filesystems.FileSystems.create(path, compression_type=_RAW) as f:
        for split, shard, items in todo:
            line = json.dumps(
                {
                    "split": split,
                    "shard": shard,
                    "items": [dataclasses.asdict(item) for item in items],
                },
                sort_keys=True,
            )
            data = (line + "\n").encode("utf-8")
            f.write(data)
            entries.append((shard, offset, len(data)))
            offset += len(data)
    return Plan(path, entries)


def read(path, shard, offset, length):
    """`(split, [records.Item])` of `shard`, from its line in plan `path`.

    Raises:
        RuntimeError: the line is another shard's (the file was replaced).
    """
    with filesystems.FileSystems.open(path, compression_type=_RAW) as f:
        f.seek(offset)
        entry = json.loads(f.read(length).decode("utf-8"))
    if entry["shard"] != shard:
        raise RuntimeError(
            f"{path}: bytes {offset}+{length} plan {entry['shard']}, not "
            f"{shard}: the file changed under the job; run the same command "
            f"again once no other job writes this --output_dir"
        )
    items = [
        records.Item(**dict(fields, labels=tuple(fields["labels"])))
        for fields in entry["items"]
    ]
    return entry["split"], items


def remove(plan):
    filesystems.FileSystems.delete([plan.path])
