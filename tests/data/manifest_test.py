"""Tests for avlad_tf.data.manifest: metadata checks and count-checked shards.

The shards hold plain bytes: the manifest counts records and never parses
them.
"""

import json
import os

from absl.testing import absltest
import tensorflow as tf

from avlad_tf.data import manifest
from avlad_tf.data import schema


def _write_shard(path, records):
    with tf.io.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)


def _write_dataset(data_dir, shards, *, labels=("a", "b")):
    """`shards`: `{split: {file: [records]}}`; metadata lists the true counts."""
    splits = {}
    for split, files in shards.items():
        entries = []
        for name, records in files.items():
            _write_shard(os.path.join(data_dir, name), records)
            entries.append({"file": name, "num_records": len(records)})
        splits[split] = {
            "num_records": sum(len(r) for r in files.values()),
            "shards": entries,
        }
    schema.write_metadata(
        data_dir,
        {"labels": list(labels), "num_classes": len(labels), "splits": splits},
    )
    return data_dir


def _read(path, expected):
    return [r.numpy() for r in manifest.read_shard(path, expected)]


class DatasetInfoTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        self.data_dir = _write_dataset(
            self.create_tempdir().full_path,
            {
                # Listed out of order: split_shards sorts by file name.
                "train": {"train-1.tfrecord": [b"c"], "train-0.tfrecord": [b"a", b"b"]},
                "test": {"test-0.tfrecord": [b"t"]},
            },
        )
        self.metadata_path = os.path.join(self.data_dir, schema.METADATA_FILE)

    def _edit(self, change):
        with open(self.metadata_path) as f:
            metadata = json.load(f)
        change(metadata)
        with open(self.metadata_path, "w") as f:
            json.dump(metadata, f)

    def test_dataset_info_returns_the_checked_metadata(self):
        info = manifest.dataset_info(self.data_dir)
        self.assertEqual(info["labels"], ["a", "b"])
        self.assertEqual(info["num_classes"], 2)
        self.assertEqual(sorted(info["splits"]), ["test", "train"])

    def test_split_shards_sorted_with_counts(self):
        info = manifest.dataset_info(self.data_dir)
        files, counts = manifest.split_shards(info, self.data_dir, "train")
        self.assertEqual(
            files,
            [
                os.path.join(self.data_dir, "train-0.tfrecord"),
                os.path.join(self.data_dir, "train-1.tfrecord"),
            ],
        )
        self.assertEqual(counts, [2, 1])

    def test_unknown_split_names_the_available_ones(self):
        info = manifest.dataset_info(self.data_dir)
        with self.assertRaisesRegex(
            ValueError, r"no split 'val'; available: \['test', 'train'\]\.$"
        ):
            manifest.split_shards(info, self.data_dir, "val")

    def test_labels_and_num_classes_must_agree(self):
        self._edit(lambda m: m.update(num_classes=3))
        with self.assertRaisesRegex(
            ValueError, r"num_classes is 3 but 2 labels are listed\.$"
        ):
            manifest.dataset_info(self.data_dir)

    def test_split_count_must_be_the_sum_of_its_shards(self):
        self._edit(lambda m: m["splits"]["train"].update(num_records=4))
        with self.assertRaisesRegex(
            ValueError, r"split 'train' lists 4 records but its shards add up to 3\."
        ):
            manifest.dataset_info(self.data_dir)

    def test_a_missing_shard_is_named(self):
        os.remove(os.path.join(self.data_dir, "test-0.tfrecord"))
        with self.assertRaisesRegex(
            FileNotFoundError, r"lists shards that do not exist: \[.*test-0.tfrecord'\]"
        ):
            manifest.dataset_info(self.data_dir)

    def test_metadata_is_checked_by_the_schema(self):
        self._edit(lambda m: m.update(schema_version=0))
        with self.assertRaisesRegex(ValueError, "schema_version 0"):
            manifest.dataset_info(self.data_dir)


class ReadShardTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        self.path = os.path.join(self.create_tempdir().full_path, "s.tfrecord")
        self.records = [b"first", b"second", b"third"]
        _write_shard(self.path, self.records)

    def test_reads_every_record_in_order(self):
        self.assertEqual(_read(self.path, 3), self.records)

    def test_fewer_records_than_listed_fail_naming_the_shard(self):
        with self.assertRaisesRegex(
            tf.errors.InvalidArgumentError,
            r"Shard \W*\S*s\.tfrecord\W*: metadata\.json lists 5 records but 3 could be read",
        ):
            _read(self.path, 5)

    def test_more_records_than_listed_fail_at_the_first_extra_one(self):
        read = []
        with self.assertRaisesRegex(
            tf.errors.InvalidArgumentError, "lists 2 records but 3 could be read"
        ):
            for record in manifest.read_shard(self.path, 2):
                read.append(record.numpy())
        self.assertEqual(read, self.records[:2])

    def test_an_empty_shard_of_no_records(self):
        empty = os.path.join(os.path.dirname(self.path), "empty.tfrecord")
        _write_shard(empty, [])
        self.assertEqual(_read(empty, 0), [])

    def test_a_truncated_shard_fails_with_the_count_check(self):
        with open(self.path, "rb") as f:
            data = f.read()
        with open(self.path, "wb") as f:
            f.write(data[:-4])  # cuts into the last record's checksum
        with self.assertRaisesRegex(
            tf.errors.InvalidArgumentError,
            r"Shard \W*\S*s\.tfrecord\W*: metadata\.json lists 3 records but 2 could be read",
        ):
            _read(self.path, 3)

    def test_works_in_a_graph(self):
        dataset = tf.data.Dataset.from_tensor_slices([self.path]).interleave(
            lambda path: manifest.read_shard(path, tf.constant(3, tf.int64))
        )
        self.assertEqual([r.numpy() for r in dataset], self.records)


class RequireTest(absltest.TestCase):
    def test_passes_or_fails_with_message_and_data(self):
        manifest.require(tf.constant(True), "never shown")
        with self.assertRaisesRegex(
            tf.errors.InvalidArgumentError, r"too short[\s\S]*video7[\s\S]*3"
        ):
            manifest.require(
                tf.constant(False), "too short", tf.constant("video7"), tf.constant(3)
            )


if __name__ == "__main__":
    absltest.main()
