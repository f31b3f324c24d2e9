"""A prepared dataset's manifest: metadata checks and count-checked shard reading.

`record_stream` reads a split's shards, in the order `video_input.make_dataset`
reads them, into the indexed, still undecoded records of one process.

Record count check: each shard is read through `read_shard`, which appends an
end marker and runs a `scan` counter; reading more records than
`metadata.json` lists fails at once, fewer fails at the marker. A corrupt
shard raises `DataLossError` inside TFRecordDataset; the reader stops that
shard there (`ignore_errors`) so the shortfall is reported by the count check
with the shard's path, instead of an anonymous error or a silent loss.
"""

import tensorflow as tf

from avlad_tf import storage
from avlad_tf.data import schema


def require(condition, message, *data):
    """An assertion whose error shows `message` and the tensors in `data`."""
    return tf.debugging.Assert(condition, [message, *data], summarize=32)


def split_shards(metadata, data_dir, split):
    """Sorted shard paths and counts of `split`, checked against the disk."""
    path = storage.join(data_dir, schema.METADATA_FILE)
    splits = metadata.get("splits", {})
    if split not in splits:
        raise ValueError(f"{path}: no split {split!r}; available: {sorted(splits)}.")
    shards = sorted(splits[split]["shards"], key=lambda shard: shard["file"])
    total = sum(int(shard["num_records"]) for shard in shards)
    if total != splits[split]["num_records"]:
        raise ValueError(
            f"{path}: split {split!r} lists {splits[split]['num_records']} "
            f"records but its shards add up to {total}."
        )
    files = [storage.join(data_dir, shard["file"]) for shard in shards]
    missing = [f for f in files if not storage.exists(f)]
    if missing:
        raise FileNotFoundError(f"{path} lists shards that do not exist: {missing}.")
    return files, [int(shard["num_records"]) for shard in shards]


def dataset_info(data_dir):
    """Reads and checks a prepared dataset's metadata.

    Checks the schema version and flow settings (`schema.read_metadata`), the
    label map and, for every split, that the shards exist and their counts
    add up.

    Returns:
        The metadata dict: `num_classes`, `labels`, `multi_label`, `splits`...

    Raises:
        FileNotFoundError, ValueError: naming the file and what is wrong.
    """
    metadata = schema.read_metadata(data_dir)
    labels = metadata.get("labels", [])
    if len(labels) != metadata.get("num_classes"):
        raise ValueError(
            f"{storage.join(data_dir, schema.METADATA_FILE)}: num_classes is "
            f"{metadata.get('num_classes')} but {len(labels)} labels are listed."
        )
    for split in metadata.get("splits", {}):
        split_shards(metadata, data_dir, split)
    return metadata


def read_shard(path, expected):
    """The records of one shard; fails naming it if the count is off."""
    # log_warning keeps the DataLossError text in the log; the count check
    # below turns the early end of the shard into an error naming it.
    records = tf.data.TFRecordDataset(path).ignore_errors(log_warning=True)
    marked = records.map(lambda r: (r, False)).concatenate(
        tf.data.Dataset.from_tensors((tf.constant(b""), True))
    )

    def count(n, element):
        record, is_end = element
        return n + tf.cast(~is_end, tf.int64), (record, is_end, n)

    def check(record, is_end, n):
        ok = tf.where(is_end, tf.equal(n, expected), n < expected)
        message = tf.strings.format(
            "Shard {}: metadata.json lists {} records but {} could be read: "
            "the file is truncated or corrupt (reading stops at a "
            "DataLossError), holds more records than listed, or "
            "metadata.json is stale. Prepare the data again into a new "
            "--output_dir (the toy dataset: delete its folder, and train "
            "remakes it).",
            [path, expected, tf.where(is_end, n, n + 1)],
        )
        with tf.control_dependencies([require(ok, message)]):
            return tf.identity(record), is_end

    checked = marked.scan(tf.constant(0, tf.int64), count).map(check)
    return checked.filter(lambda r, is_end: ~is_end).map(lambda r, _: r)


def record_stream(
    files,
    counts,
    *,
    training,
    seed,
    cycle_length,
    shuffle_buffer,
    skip,
    num_shards,
    shard_index,
):
    """`(index, serialized record)` of every video of the stream this
    process reads, still undecoded (`files`, `counts`: `split_shards`'; the
    other arguments: `video_input.make_dataset`'s)."""
    shards = tf.data.Dataset.from_tensor_slices(
        (tf.constant(files), tf.constant(counts, tf.int64))
    )
    if training:
        # New shard order each epoch, but the same sequence for the same seed.
        # data_prep writes training splits in a shuffled record order, so
        # each shard already mixes classes (docs/DATA.md, Record order).
        shards = shards.shuffle(
            len(files), seed=seed, reshuffle_each_iteration=True
        ).repeat()
        records = shards.interleave(
            read_shard,
            cycle_length=min(cycle_length, len(files)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        # Shuffle serialized records: cheap, before any JPEG is decoded.
        records = records.shuffle(
            shuffle_buffer, seed=seed, reshuffle_each_iteration=True
        )
    else:
        records = shards.flat_map(read_shard)  # sorted shards, file order
    records = records.enumerate()
    # Skipping and sharding come after the enumeration, so every video keeps
    # its index (its seed) in the whole stream, and before the map, so a
    # worker decodes only its own videos. Only when asked: a single-process
    # pipeline keeps the graph its checkpointed iterators were saved from.
    if skip:
        records = records.skip(skip)
    if num_shards > 1:
        records = records.shard(num_shards, shard_index)
    return records
