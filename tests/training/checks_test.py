"""Tests for avlad_tf.training.checks: settings refused before slow work."""

import copy
import re

from absl.testing import absltest
from absl.testing import parameterized

from avlad_tf.training import checks

_INFO = {
    "splits": {
        "train_split1": {"num_records": 3},
        "test_split1": {"num_records": 2},
        "empty": {"num_records": 0},
    }
}


def _entry():
    return {
        "train_split": "train_split1",
        "training": {
            "train_stream": {
                "batch_size": 4,
                "accumulation_steps": [1, 2],
                "kmeans_batch_size": 8,
                "stage_steps": [10, 0],
                "learning_rates": [0.01, 1e-4],
            },
            "build_model": {"pooling": "netvlad", "num_clusters": 64},
            "init_centers": {"num_random_frames": 100, "num_init": 1},
        },
        "input": {"num_frames": 25, "flow_stack": 10, "image_size": 224},
    }


def _record(evaluate_split="test_split1"):
    return {
        "data": {"data_dir": "/data/hmdb", "evaluate_split": evaluate_split},
        "streams": {"rgb": _entry(), "flow": _entry()},
    }


def _set(record, path, value):
    entry = record
    *parents, leaf = path.split("/")
    for key in parents:
        entry = entry[key]
    entry[leaf] = value
    return record


class CheckRecordTest(parameterized.TestCase):
    def test_a_valid_record_passes(self):
        checks.check_record(_record(), _INFO)
        checks.check_record(_record(evaluate_split=None), _INFO)

    def test_other_pooling_needs_no_clusters(self):
        record = _set(_record(), "streams/rgb/training/build_model/pooling", "avg")
        _set(record, "streams/rgb/training/build_model/num_clusters", None)
        checks.check_record(record, _INFO)

    @parameterized.named_parameters(
        ("zero_batch", "train_stream/batch_size", 0, "train_stream.batch_size"),
        ("bool_batch", "train_stream/batch_size", True, "train_stream.batch_size"),
        ("float_batch", "train_stream/batch_size", 4.0, "train_stream.batch_size"),
        ("no_stages", "train_stream/batch_size", [], "train_stream.batch_size"),
        (
            "bad_stage_accumulation",
            "train_stream/accumulation_steps",
            [1, 0],
            "train_stream.accumulation_steps",
        ),
    )
    def test_per_stage_positive_integers(self, path, value, binding):
        record = _set(_record(), f"streams/flow/training/{path}", value)
        with self.assertRaisesRegex(
            ValueError,
            rf"^flow/{binding} = {re.escape(repr(value))}: must be a positive "
            r"integer, or one per stage\.$",
        ):
            checks.check_record(record, _INFO)

    def test_per_stage_values_may_be_a_tuple(self):
        record = _set(_record(), "streams/rgb/training/train_stream/batch_size", (2, 4))
        checks.check_record(record, _INFO)

    @parameterized.named_parameters(
        ("kmeans_batch", "train_stream/kmeans_batch_size", [8]),
        ("num_random_frames", "init_centers/num_random_frames", 0),
        ("num_init", "init_centers/num_init", -1),
    )
    def test_positive_integers(self, path, value):
        record = _set(_record(), f"streams/rgb/training/{path}", value)
        configurable, argument = path.split("/")
        with self.assertRaisesRegex(
            ValueError,
            rf"^rgb/{configurable}\.{argument} = .*: must be a positive integer\.$",
        ):
            checks.check_record(record, _INFO)

    def test_netvlad_needs_clusters(self):
        record = _set(_record(), "streams/rgb/training/build_model/num_clusters", 0)
        with self.assertRaisesRegex(
            ValueError,
            r"^rgb/build_model\.num_clusters = 0: must be a positive integer "
            r"\(K action words\)\.$",
        ):
            checks.check_record(record, _INFO)

    @parameterized.parameters((25,), ([],), ([10, -1],), ([10.0],), ([True, 5],))
    def test_stage_steps(self, steps):
        record = _set(_record(), "streams/rgb/training/train_stream/stage_steps", steps)
        with self.assertRaisesRegex(
            ValueError,
            r"^rgb/train_stream\.stage_steps = .*: must be one non-negative "
            r"number of updates per stage\.$",
        ):
            checks.check_record(record, _INFO)

    @parameterized.parameters(
        ([0.1],), ([0.1, 0.0],), ((0.1, 0.01),), ([0.1, "x"],), ([True, 0.1],)
    )
    def test_one_positive_rate_per_stage(self, rates):
        path = "streams/rgb/training/train_stream/learning_rates"
        record = _set(_record(), path, rates)
        with self.assertRaisesRegex(
            ValueError,
            r"^rgb/train_stream\.learning_rates = .*: must be one positive rate "
            r"per stage \(2\)\.$",
        ):
            checks.check_record(record, _INFO)

    @parameterized.parameters("num_frames", "flow_stack", "image_size")
    def test_input_sizes(self, name):
        record = _set(_record(), f"streams/flow/input/{name}", 0)
        with self.assertRaisesRegex(
            ValueError,
            rf"^flow/make_dataset\.{name} = 0: must be a positive integer\.$",
        ):
            checks.check_record(record, _INFO)

    def test_unknown_train_split_names_the_splits(self):
        record = _set(_record(), "streams/rgb/train_split", "train_split9")
        with self.assertRaisesRegex(
            ValueError,
            r"^rgb/train_stream\.train_split = 'train_split9': /data/hmdb has the "
            r"splits \['empty', 'test_split1', 'train_split1'\]\.$",
        ):
            checks.check_record(record, _INFO)

    def test_empty_train_split(self):
        record = _set(_record(), "streams/flow/train_split", "empty")
        with self.assertRaisesRegex(
            ValueError, r"^flow/train_stream\.train_split = 'empty': .*no video of it"
        ):
            checks.check_record(record, _INFO)

    def test_unknown_evaluate_split(self):
        with self.assertRaisesRegex(
            ValueError,
            r"^train\.evaluate_split = 'val': /data/hmdb has the splits \[",
        ):
            checks.check_record(_record(evaluate_split="val"), _INFO)

    def test_the_record_is_not_changed(self):
        record = _record()
        before = copy.deepcopy(record)
        checks.check_record(record, _INFO)
        self.assertEqual(record, before)


if __name__ == "__main__":
    absltest.main()
