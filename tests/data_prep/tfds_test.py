"""A prepared dataset loads as a TensorFlow Datasets dataset (data_prep/tfds_info.py)."""

import collections
import os
from unittest import mock

from absl.testing import absltest
import tensorflow as tf
import tensorflow_datasets as tfds

from avlad_tf.data import manifest
from avlad_tf.data import schema
from data_prep import shards
from data_prep import tfds_info
from data_prep import toy
from tests import testing

CONTEXT_KEYS = sorted(schema.CONTEXT_FEATURES)


def _reader_records(data_dir, split):
    """(video id, labels) of every record of `split`, in shard order, as the
    project's reader reads them."""
    metadata = manifest.dataset_info(data_dir)
    files, counts = manifest.split_shards(metadata, data_dir, split)
    records = []
    for path, count in zip(files, counts):
        for serialized in manifest.read_shard(path, count):
            parsed = schema.parse_sequence_example(serialized)
            records.append(
                (
                    parsed[schema.VIDEO_ID_KEY].numpy().decode(),
                    parsed[schema.LABEL_INDEX_KEY].numpy().tolist(),
                )
            )
    return records


def _tfds_records(builder, split):
    """(video id, labels) of `split` through TFDS, files read one by one."""
    dataset = builder.as_dataset(
        split=split,
        shuffle_files=False,
        read_config=tfds.ReadConfig(interleave_cycle_length=1),
    )
    return [
        (
            example["video"]["id"].decode(),
            example["clip"]["label"]["index"].tolist(),
        )
        for example in dataset.as_numpy_iterator()
    ]


class PreparedToyDatasetTest(absltest.TestCase):
    """data_prep writes the TFDS metadata of the toy dataset it prepares."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.data_dir = os.path.join(testing.class_tempdir(cls), "toy")
        with (
            mock.patch.object(toy, "CLASSES", toy.CLASSES[:3]),
            mock.patch.object(toy, "NUM_TRAIN", 2),
            mock.patch.object(toy, "NUM_TEST", 1),
            mock.patch.object(toy, "NUM_FRAMES", 12),
        ):
            toy.ensure_toy_dataset(cls.data_dir, workers=1)
        cls.metadata = schema.read_metadata(cls.data_dir)
        cls.builder = tfds.builder_from_directory(cls.data_dir)

    def test_info_describes_the_dataset(self):
        info = self.builder.info
        self.assertEqual(info.name, "toy")
        self.assertEqual(str(info.version), f"{schema.SCHEMA_VERSION}.0.0")
        self.assertEqual(
            info.features["clip"]["label"]["index"].feature.names,
            self.metadata["labels"],
        )
        self.assertIn("ActionVLAD", info.citation)
        self.assertIn("feature lists", info.description)

    def test_split_counts_are_the_record_counts(self):
        splits = self.builder.info.splits
        self.assertCountEqual(splits, self.metadata["splits"])
        for split, entry in self.metadata["splits"].items():
            with self.subTest(split=split):
                files = [shard["file"] for shard in entry["shards"]]
                self.assertEqual([path.name for path in splits[split].filepaths], files)
                on_disk = sum(
                    1
                    for name in files
                    for _ in tf.data.TFRecordDataset(os.path.join(self.data_dir, name))
                )
                self.assertEqual(splits[split].num_examples, entry["num_records"])
                self.assertEqual(splits[split].num_examples, on_disk)

    def test_tfds_reads_what_the_projects_reader_reads(self):
        for split in ("train", "test"):
            with self.subTest(split=split):
                expected = _reader_records(self.data_dir, split)
                self.assertLen(expected, self.metadata["splits"][split]["num_records"])
                self.assertEqual(_tfds_records(self.builder, split), expected)
        # TFDS's split slicing reads the shards as they are.
        self.assertEqual(
            _tfds_records(self.builder, "train[1:3]"),
            _reader_records(self.data_dir, "train")[1:3],
        )

    def test_as_dataframe_has_a_column_per_context_key(self):
        dataset = self.builder.as_dataset(split="train", shuffle_files=False)
        frame = tfds.as_dataframe(dataset.take(3), self.builder.info)
        self.assertLen(frame, 3)
        self.assertEqual(sorted(frame.columns), CONTEXT_KEYS)
        self.assertTrue((frame[schema.LENGTH_KEY] == 12).all())

    def test_statistics_hold_the_class_counts(self):
        labels = self.metadata["labels"]
        for split in ("train", "test"):
            with self.subTest(split=split):
                stats = self.builder.info.splits[split].statistics
                counts = collections.Counter(
                    labels[label]
                    for _, video_labels in _reader_records(self.data_dir, split)
                    for label in video_labels
                )
                (feature,) = stats.features
                self.assertEqual("/".join(feature.path.step), schema.LABEL_INDEX_KEY)
                self.assertEqual(
                    {v.value: v.frequency for v in feature.string_stats.top_values},
                    dict(counts),
                )
                self.assertEqual(
                    stats.num_examples, self.metadata["splits"][split]["num_records"]
                )


class HandWrittenShardsTest(absltest.TestCase):
    """Multi-label and unlabelled records over several shards (Charades)."""

    def setUp(self):
        super().setUp()
        self.data_dir = self.create_tempdir().full_path
        videos = [("a/0", [0, 2]), ("b/1", []), ("c/2", [1])]
        files = [shards.shard_name("test", i, 2) for i in range(2)]
        for name, part in zip(files, (videos[:2], videos[2:])):
            with tf.io.TFRecordWriter(os.path.join(self.data_dir, name)) as out:
                for video_id, labels in part:
                    out.write(
                        schema.make_sequence_example(
                            video_id=video_id,
                            labels=labels,
                            rgb_jpegs=[b"not decoded", b"by TFDS"],
                            flow_x_jpegs=[b"x"],
                            flow_y_jpegs=[b"y"],
                        )
                    )
        self.videos = videos
        self.splits = {
            "test": {
                "num_records": 3,
                "shards": [
                    {"file": files[0], "num_records": 2},
                    {"file": files[1], "num_records": 1},
                ],
            }
        }

    def test_labels_of_any_number_load(self):
        tfds_info.write(
            self.data_dir,
            dataset="charades",
            labels=["c0", "c1", "c2"],
            multi_label=True,
            splits=self.splits,
            label_counts={"test": {0: 1, 1: 1, 2: 1}},
        )
        builder = tfds.builder_from_directory(self.data_dir)
        self.assertIn("Sigurdsson", builder.info.citation)
        self.assertEqual(builder.info.splits["test"].num_shards, 2)
        self.assertEqual(_tfds_records(builder, "test"), self.videos)
        self.assertEqual(_tfds_records(builder, "test[1:]"), self.videos[1:])
        # The frames are not TFDS features; they are in the files it lists.
        paths = [os.fspath(p) for p in builder.info.splits["test"].filepaths]
        first = next(iter(tf.data.TFRecordDataset(paths)))
        self.assertEqual(
            schema.parse_sequence_example(first)[schema.RGB_KEY].numpy().tolist(),
            [b"not decoded", b"by TFDS"],
        )

    def test_shard_names_outside_the_pattern_are_refused(self):
        self.splits["test"]["shards"][1]["file"] = "test-1-of-2.tfrecord"
        with self.assertRaisesRegex(ValueError, "split 'test' has shards"):
            tfds_info.write(
                self.data_dir,
                dataset="charades",
                labels=["c0", "c1", "c2"],
                multi_label=True,
                splits=self.splits,
                label_counts={},
            )
        self.assertFalse(
            os.path.exists(os.path.join(self.data_dir, "dataset_info.json"))
        )


if __name__ == "__main__":
    absltest.main()
