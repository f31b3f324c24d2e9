"""Training batches mix classes as the release's per-epoch full shuffle did.

The dataset has the real HMDB51 `train_split1` structure (the shipped list:
51 classes x 70 videos, sorted by class), laid out in shards exactly as
`data_prep` plans them, with tiny frames. With list-ordered shards, 4
interleaved shards and a 64-record buffer give about 7.5 distinct classes per
16-video update; the release's full reshuffle gives about 13.9.
"""

import os

from absl.testing import absltest
import numpy as np
import pytest
import tensorflow as tf

from avlad_tf.data import schema
from avlad_tf.data import video_input
from data_prep import sources
from data_prep import writer
from tests import testing

VIDEOS_PER_UPDATE = 16  # 4 sub-batches of 4, the default composition
UPDATES = 40


def write_hmdb51_like(data_dir, *, shuffle_seed, records_per_shard=32):
    """The shipped HMDB51 split-1 training list as a tiny prepared dataset."""
    os.makedirs(data_dir)
    labels, splits = sources.release_list_items(
        "hmdb51",
        list_dir=os.path.join(sources.LISTS_DIR, "hmdb51"),
        root=data_dir,
        split_names=["train_split1"],
    )
    ordered, order = writer.record_order(splits, shuffle_seed=shuffle_seed)
    rgb = tf.io.encode_jpeg(tf.zeros((8, 8, 3), tf.uint8)).numpy()
    flow = tf.io.encode_jpeg(tf.zeros((8, 8, 1), tf.uint8)).numpy()
    shards = []
    for name, items in writer.plan_shards(ordered, records_per_shard)["train_split1"]:
        with tf.io.TFRecordWriter(os.path.join(data_dir, name)) as out:
            for item in items:
                out.write(
                    schema.make_sequence_example(
                        video_id=item.video_id,
                        labels=item.labels,
                        rgb_jpegs=[rgb] * 3,
                        flow_x_jpegs=[flow] * 2,
                        flow_y_jpegs=[flow] * 2,
                        source=item.path,
                    )
                )
        shards.append({"file": name, "num_records": len(items)})
    schema.write_metadata(
        data_dir,
        {
            "dataset": "hmdb51",
            "labels": labels,
            "num_classes": len(labels),
            "multi_label": False,
            "frame_height": 8,
            "frame_width": 8,
            "record_order": order,
            "splits": {
                "train_split1": {
                    "num_records": sum(s["num_records"] for s in shards),
                    "shards": shards,
                }
            },
        },
    )
    return data_dir


def classes_per_update(data_dir, *, updates=UPDATES, seed=0):
    """Distinct classes in each of the first `updates` 16-video updates."""
    dataset = video_input.make_dataset(
        data_dir=data_dir,
        split="train_split1",
        training=True,
        batch_size=VIDEOS_PER_UPDATE,
        num_frames=1,
        image_size=8,
        resize_to=(8, 8),
        seed=seed,
    )
    counts = []
    for _, labels in dataset.take(updates):
        counts.append(len(set(np.argmax(labels.numpy(), axis=1))))
    return np.asarray(counts)


class ClassMixTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        root = testing.class_tempdir(cls)
        cls.shuffled = write_hmdb51_like(os.path.join(root, "shuffled"), shuffle_seed=0)
        cls.list_order = write_hmdb51_like(
            os.path.join(root, "list"), shuffle_seed=None
        )

    def test_the_shipped_list_is_sorted_by_class(self):
        # The premise: without a shuffled write, shards hold one or two classes.
        _, splits = sources.release_list_items(
            "hmdb51",
            list_dir=os.path.join(sources.LISTS_DIR, "hmdb51"),
            root=self.list_order,
            split_names=["train_split1"],
        )
        labels = [item.labels[0] for item in splits["train_split1"]]
        self.assertLen(labels, 51 * 70)
        self.assertEqual(labels, sorted(labels))

    def test_shuffled_shards_mix_classes_like_a_full_shuffle(self):
        counts = classes_per_update(self.shuffled)
        # A uniform draw of 16 of 3570 videos (70 per class) averages 14.1
        # classes; the release measured about 13.9.
        self.assertGreater(counts.mean(), 13.0)
        self.assertGreaterEqual(counts.min(), 10)

    @pytest.mark.slow
    def test_list_ordered_shards_do_not(self):
        counts = classes_per_update(self.list_order)
        self.assertLess(counts.mean(), 10.0)

    def test_metadata_records_the_order(self):
        metadata = schema.read_metadata(self.shuffled)
        self.assertEqual(
            metadata["record_order"]["train_split1"], {"order": "shuffled", "seed": 0}
        )

    def test_record_order_is_a_seeded_permutation_of_training_splits_only(self):
        splits = {"train_split1": list(range(100)), "test_split1": list(range(100))}
        first, how = writer.record_order(splits, shuffle_seed=3)
        again, _ = writer.record_order(splits, shuffle_seed=3)
        other, _ = writer.record_order(splits, shuffle_seed=4)
        self.assertEqual(first, again)
        self.assertNotEqual(first["train_split1"], other["train_split1"])
        self.assertEqual(sorted(first["train_split1"]), list(range(100)))
        self.assertEqual(first["test_split1"], list(range(100)))
        self.assertEqual(how["test_split1"], {"order": "list"})


if __name__ == "__main__":
    absltest.main()
