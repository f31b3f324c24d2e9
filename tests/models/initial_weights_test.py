"""Tests for avlad_tf.models.initial_weights: backbone weights per split.

The overlaps are counted over the release's real HMDB51 split lists
(`data_prep/lists/hmdb51/`): 1175 of test_split2's 1530 videos are in
train_split1 (docs/RELEASE_MODELS.md, "Initialisation per split").
"""

import os

from absl.testing import absltest
from absl.testing import parameterized
import gin
import keras
import numpy as np
import pytest

from avlad_tf import run_record
from avlad_tf.data import schema
from avlad_tf.models import action_vlad
from avlad_tf.models import backbones
from avlad_tf.models import initial_weights
from avlad_tf.training import experiment
from tests import testing
from tests.training import tiny

_FLOW_CHANNELS = 4  # tiny.BINDINGS: flow_stack = 2


def write_tiny_weights(path, *, seed, dataset=None, train_split=None):
    """A tiny flow backbone's weights file (random, from `seed`), recording
    `train_split` of `dataset` when given; returns the backbone."""
    keras.utils.set_random_seed(seed)
    backbone = backbones.build_tiny(input_channels=_FLOW_CHANNELS, image_size=16)
    backbone.save_weights(path)
    if train_split is not None:
        initial_weights.record_training_split(
            path, dataset=dataset, train_split=train_split
        )
    return backbone


def flow_conv1(model):
    """The flow backbone's first kernel: no training stage changes it."""
    backbone = model.get_layer("flow_backbone")
    return backbone.get_layer("block1_conv1").kernel.numpy()


class ResolveTest(parameterized.TestCase):
    def test_split_is_filled_from_the_training_split(self):
        self.assertEqual(
            initial_weights.resolve(
                "w/flow_split{split}.weights.h5", train_split="train_split2"
            ),
            "w/flow_split2.weights.h5",
        )

    @parameterized.parameters(None, "imagenet", "w/flow.weights.h5")
    def test_weights_without_placeholder_are_kept(self, weights):
        self.assertEqual(initial_weights.resolve(weights, train_split="train"), weights)

    @parameterized.parameters("train", None)
    def test_placeholder_without_split_number_is_refused(self, train_split):
        with self.assertRaisesRegex(
            ValueError,
            r"^flow/build_model\.weights = 'x\{split\}\.weights\.h5': \{split\} "
            rf"is filled from .*the split is {train_split!r}; bind a file",
        ):
            initial_weights.resolve(
                "x{split}.weights.h5",
                train_split=train_split,
                binding="flow/build_model.weights",
            )


class BuildModelTest(absltest.TestCase):
    """`build_model` resolves `{split}` itself (train_stream passes its split)."""

    def setUp(self):
        super().setUp()
        self.dir = self.create_tempdir().full_path
        self.template = os.path.join(self.dir, "flow_split{split}.weights.h5")
        self.files = {
            k: write_tiny_weights(self.template.replace("{split}", str(k)), seed=k)
            for k in (1, 2)
        }

    def build(self, train_split):
        return action_vlad.build_model(
            num_classes=3,
            modality="flow",
            backbone="tiny",
            image_size=16,
            flow_stack=_FLOW_CHANNELS // 2,
            weights=self.template,
            train_split=train_split,
        )

    def test_backbone_starts_from_the_split_file(self):
        model = self.build("train_split2")
        np.testing.assert_array_equal(
            flow_conv1(model), self.files[2].get_layer("block1_conv1").kernel.numpy()
        )

    def test_placeholder_outside_a_run_is_refused(self):
        with self.assertRaisesRegex(
            ValueError, r"^build_model\.weights = .*the split is None"
        ):
            self.build(None)


class TrainingSplitTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        self.path = os.path.join(self.create_tempdir().full_path, "w.weights.h5")

    def test_recorded_split_is_read_back_and_the_file_still_loads(self):
        backbone = write_tiny_weights(
            self.path, seed=0, dataset="hmdb51", train_split="train_split2"
        )
        self.assertEqual(
            initial_weights.training_split(self.path),
            {"dataset": "hmdb51", "train_split": "train_split2"},
        )
        loaded = backbones.build_tiny(
            input_channels=_FLOW_CHANNELS, image_size=16, weights=self.path
        )
        for a, b in zip(backbone.get_weights(), loaded.get_weights()):
            np.testing.assert_array_equal(a, b)

    def test_no_record(self):
        write_tiny_weights(self.path, seed=0)
        self.assertIsNone(initial_weights.training_split(self.path))
        self.assertIsNone(initial_weights.training_split("imagenet"))
        self.assertIsNone(initial_weights.training_split(None))


class CheckTestOverlapTest(parameterized.TestCase):
    """Real overlaps, counted over the release's HMDB51 lists."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = testing.class_tempdir(cls)
        cls.files = {}
        for k in (1, 2):
            path = os.path.join(cls.dir, f"overlap_split{k}.weights.h5")
            write_tiny_weights(
                path, seed=k, dataset="hmdb51", train_split=f"train_split{k}"
            )
            cls.files[k] = path
        cls.unrecorded = os.path.join(cls.dir, "imagenet_like.weights.h5")
        write_tiny_weights(cls.unrecorded, seed=0)

    def check(self, weights, *, dataset="hmdb51", test_split="test_split2"):
        initial_weights.check_test_overlap(
            weights,
            dataset=dataset,
            test_split=test_split,
            binding="flow/build_model.weights",
        )

    def test_the_lists_overlap_as_documented(self):
        train = initial_weights.split_videos("hmdb51", "train_split1")
        test = initial_weights.split_videos("hmdb51", "test_split2")
        self.assertLen(train, 3570)
        self.assertLen(test, 1530)
        self.assertLen(train & test, 1175)

    def test_weights_of_another_split_are_refused(self):
        with self.assertRaisesRegex(
            ValueError,
            rf"^flow/build_model\.weights = '{self.files[1]}' was fine-tuned on "
            r"hmdb51 train_split1, which holds 1175 of the 1530 videos of the "
            r"run's test split test_split2, .*bind the file trained on the "
            r"run's own split, e.g. a path with \{split\}",
        ):
            self.check(self.files[1])

    @parameterized.named_parameters(
        ("split_matched", 2, "hmdb51", "test_split2"),
        ("no_recorded_split", None, "hmdb51", "test_split2"),
        ("other_dataset", 1, "ucf101", "test_split2"),
        ("split_not_in_the_lists", 1, "hmdb51", "test"),
        ("imagenet", "imagenet", "hmdb51", "test_split2"),
    )
    def test_accepted(self, which, dataset, test_split):
        weights = {None: self.unrecorded, "imagenet": "imagenet"}.get(which)
        self.check(weights or self.files[which], dataset=dataset, test_split=test_split)

    def test_check_record_reads_the_evaluated_split(self):
        # Split 2's own file, but the run evaluates test_split1 (1165 of
        # its videos are in train_split2).
        entry = {
            "train_split": "train_split2",
            "training": {"build_model": {"weights": self.files[2]}},
        }
        record = {
            "data": {"evaluate_split": "test_split1"},
            "streams": {"flow": entry},
        }
        with self.assertRaisesRegex(ValueError, "1165 of the 1530 .* test_split1"):
            initial_weights.check_record(record, {"dataset": "hmdb51"})


class TrainRunTest(absltest.TestCase):
    """Through `experiment.train`: resolved in the run's scope, checked
    before any slow work, and the model built from the split's own file."""

    def setUp(self):
        super().setUp()
        self.dir = self.create_tempdir().full_path
        self.workdir = os.path.join(self.dir, "run")
        self.data_dir = tiny.write_data(os.path.join(self.dir, "data"))
        self.template = os.path.join(self.dir, "flow_split{split}.weights.h5")
        self.files = {
            k: write_tiny_weights(
                self.template.replace("{split}", str(k)),
                seed=k,
                dataset="hmdb51",
                train_split=f"train_split{k}",
            )
            for k in (1, 2)
        }
        self.addCleanup(gin.clear_config)

    def name_splits_as_hmdb51(self):
        """The fake dataset as a prepared HMDB51 split 2 (its names only)."""
        metadata = schema.read_metadata(self.data_dir)
        splits = metadata["splits"]
        splits = {"train_split2": splits["train"], "test_split2": splits["test"]}
        metadata.update(dataset="hmdb51", splits=splits)
        schema.write_metadata(self.data_dir, metadata)

    def train(self, weights, train_split="train_split2"):
        tiny.configure(
            f"train_stream.train_split = '{train_split}'\n"
            f"flow/build_model.weights = '{weights}'\n"
        )
        return experiment.train(
            workdir=self.workdir, data_dir=self.data_dir, streams=("flow",)
        )

    def test_split1_weights_in_a_split2_run_are_refused(self):
        self.name_splits_as_hmdb51()
        with self.assertRaisesRegex(
            ValueError,
            r"^flow/build_model\.weights = .*flow_split1\.weights\.h5' was "
            r"fine-tuned on hmdb51 train_split1, which holds 1175 of the 1530 "
            r"videos of the run's test split test_split2",
        ):
            self.train(self.template.replace("{split}", "1"))
        self.assertFalse(os.path.exists(run_record.path(self.workdir)))

    def test_placeholder_needs_a_numbered_split(self):
        # The fake dataset's own splits, 'train' and 'test', have no number.
        with self.assertRaisesRegex(
            ValueError, r"^flow/build_model\.weights = .*the split is 'train'"
        ):
            self.train(self.template, train_split="train")
        self.assertFalse(os.path.exists(run_record.path(self.workdir)))

    @pytest.mark.slow
    def test_split2_run_starts_from_the_split2_file(self):
        self.name_splits_as_hmdb51()
        self.train(self.template)
        model = keras.saving.load_model(
            os.path.join(self.workdir, "flow", "model.keras")
        )
        np.testing.assert_array_equal(
            flow_conv1(model), self.files[2].get_layer("block1_conv1").kernel.numpy()
        )
        record = run_record.read(self.workdir)["streams"]["flow"]
        self.assertEqual(record["train_split"], "train_split2")
        self.assertEqual(record["training"]["build_model"]["weights"], self.template)


if __name__ == "__main__":
    absltest.main()
