"""End-to-end run of `avlad_tf.training.experiment.train` on tiny fake data."""

import glob
import json
import os
import re

from absl.testing import absltest
import gin
import numpy as np
import pytest
import tensorflow as tf

from avlad_tf import run_record
from avlad_tf.data import video_input
from avlad_tf.training import checkpointing
from avlad_tf.training import experiment
from tests import testing
from tests.training import tiny


def read_checkpoint(path):
    reader = tf.train.load_checkpoint(path)
    return {
        name: reader.get_tensor(name)
        for name, _ in tf.train.list_variables(path)
        if name.startswith("model_variables/")
    }


def changed(before, after, layer):
    # Keys are model_variables/[<nested model>.S]<layer>.S<variable>/...
    keys = [k for k in before if re.match(rf"model_variables/(\w+\.S)?{layer}\.S", k)]
    assert keys, (layer, sorted(before))
    return any(not np.array_equal(before[k], after[k]) for k in keys)


class TrainSmokeTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        self.data_dir = tiny.write_data(self.create_tempdir().full_path)
        self.workdir = self.create_tempdir().full_path

    def tearDown(self):
        gin.clear_config()
        super().tearDown()

    @pytest.mark.slow
    def test_two_stages_write_the_workdir(self):
        tiny.configure(
            "train_stream.stage_steps = (3, 2)\ntrain_stream.checkpoint_every = 2"
        )
        experiment.train(workdir=self.workdir, data_dir=self.data_dir)
        stream = os.path.join(self.workdir, "rgb")
        for path in (
            "labels.txt",
            "operative_config.gin",
            "rgb/model.keras",
            "rgb/centers.npy",
            "rgb/train_metrics.jsonl",
        ):
            self.assertTrue(os.path.exists(os.path.join(self.workdir, path)), path)
        self.assertEqual(
            open(os.path.join(self.workdir, "labels.txt")).read().split(),
            ["class_00", "class_01", "class_02"],
        )
        self.assertIn(
            "train_stream.stage_steps = (3, 2)",
            open(os.path.join(self.workdir, "operative_config.gin")).read(),
        )
        events = glob.glob(
            os.path.join(self.workdir, "tensorboard", "rgb", "events.out.tfevents.*")
        )
        tags = {
            value.tag
            for path in events
            for event in tf.compat.v1.train.summary_iterator(path)
            for value in event.summary.value
        }
        self.assertContainsSubset(
            {
                "train/loss",
                "train/accuracy",
                "train/learning_rate",
                "train/grad_norm",
                "train/steps_per_second",
                "clusters/usage",
                "clusters/assignment_maps",
                "gin/operative_config",
            },
            tags,
        )
        records = [
            json.loads(line)
            for line in open(os.path.join(stream, "train_metrics.jsonl"))
        ]
        self.assertEqual(
            [(r["stage"], r["step"]) for r in records],
            [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2)],
        )
        self.assertEqual([r["global_step"] for r in records], [1, 2, 3, 4, 5])
        # Each stage restarts its own schedule at its base learning rate.
        self.assertAlmostEqual(records[0]["learning_rate"], 1e-2, places=6)
        self.assertAlmostEqual(records[3]["learning_rate"], 1e-4, places=8)
        for record in records:
            self.assertTrue(np.isfinite(record["loss"]))
            self.assertLessEqual(record["grad_norm"], 5.0 * 12)

        # Stage 1 trains only the classifier; stage 2 also NetVLAD and conv5.
        stage1 = checkpointing.stage_directory(self.workdir, "rgb", 1)
        stage2 = checkpointing.stage_directory(self.workdir, "rgb", 2)
        s1_first = read_checkpoint(os.path.join(stage1, "ckpt-2"))
        s1_last = read_checkpoint(os.path.join(stage1, "ckpt-3"))
        s2_last = read_checkpoint(os.path.join(stage2, "ckpt-2"))
        self.assertTrue(changed(s1_first, s1_last, "logits"))
        for frozen in ("netvlad", "block5_conv3", "block1_conv1"):
            self.assertFalse(changed(s1_first, s1_last, frozen), frozen)
        for trained in ("logits", "netvlad", "block5_conv3"):
            self.assertTrue(changed(s1_last, s2_last, trained), trained)
        for frozen in ("block1_conv1", "block4_conv3"):
            self.assertFalse(changed(s1_last, s2_last, frozen), frozen)
        # NetVLAD started from the saved k-means centres.
        centers = np.load(os.path.join(stream, "centers.npy"))
        np.testing.assert_array_equal(
            s1_last["model_variables/netvlad.Scenters/.ATTRIBUTES/VARIABLE_VALUE"],
            centers,
        )

    @pytest.mark.slow
    def test_one_model_over_both_modalities(self):
        # Concat fusion nests two backbones whose layers share names.
        tiny.configure(
            "build_model.fusion = 'concat'\ntrain_stream.stage_steps = (1, 1)"
        )
        experiment.train(
            workdir=self.workdir, data_dir=self.data_dir, streams=("fused",)
        )
        stage2 = checkpointing.stage_directory(self.workdir, "fused", 2)
        names = set(read_checkpoint(tf.train.latest_checkpoint(stage2)))
        for backbone in ("rgb_backbone", "flow_backbone"):
            self.assertIn(
                f"model_variables/{backbone}.Sblock1_conv1.Skernel/"
                ".ATTRIBUTES/VARIABLE_VALUE",
                names,
            )
        self.assertTrue(
            os.path.exists(os.path.join(self.workdir, "fused", "model.keras"))
        )

    @pytest.mark.slow
    def test_nan_loss_stops_and_names_the_last_good_checkpoint(self):
        tiny.configure("train_stream.stage_steps = (4, 2)")

        def poisoned(**kwargs):
            dataset = video_input.make_dataset(**kwargs)
            if not kwargs["training"]:
                return dataset

            # NaN labels from the 5th sub-batch on, i.e. in update 3 (two
            # sub-batches per update): the cross-entropy becomes NaN.
            def poison(index, batch):
                features, labels = batch
                return features, labels * tf.where(index >= 4, np.nan, 1.0)

            return dataset.enumerate().map(poison)

        with self.assertRaisesRegex(
            checkpointing.NonFiniteLossError,
            r"stage 1, update 3.*last good checkpoint is .*stage1/ckpt-2",
        ):
            experiment.train(
                workdir=self.workdir, data_dir=self.data_dir, make_dataset_fn=poisoned
            )
        stage1 = checkpointing.stage_directory(self.workdir, "rgb", 1)
        self.assertEqual(os.path.basename(tf.train.latest_checkpoint(stage1)), "ckpt-2")


@pytest.mark.slow
class RunRecordTest(absltest.TestCase):
    """One home per setting: a run records what it resolved, and the steps
    after training (evaluate, fuse, export) use that record."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        root = testing.class_tempdir(cls)
        cls.data_dir = tiny.write_data(os.path.join(root, "data"))
        cls.workdir = os.path.join(root, "run")
        tiny.configure(
            "train_stream.stage_steps = (1, 1)\n"
            "flow/evaluate.num_crops = 5\n"
            "flow/make_dataset.shuffle_buffer = 3\n"
        )
        cls.calls = []

        def counting(**kwargs):
            cls.calls.append(kwargs)
            return video_input.make_dataset(**kwargs)

        # Only train.data_dir is bound: evaluation must read the same data.
        cls.outcome = experiment.train(
            workdir=cls.workdir,
            data_dir=cls.data_dir,
            streams=("rgb", "flow"),
            evaluate_split="test",
            fuse_weights=(1, 1),
            export=True,
            make_dataset_fn=counting,
        )
        gin.clear_config()
        cls.record = run_record.read(cls.workdir)

    def test_record_holds_what_the_run_resolved(self):
        data = self.record["data"]
        self.assertEqual(data["data_dir"], os.path.abspath(self.data_dir))
        self.assertEqual(data["labels"], ["class_00", "class_01", "class_02"])
        self.assertEqual(data["evaluate_split"], "test")
        streams = self.record["streams"]
        self.assertEqual(list(streams), ["rgb", "flow"])
        self.assertEqual(
            (streams["rgb"]["num_crops"], streams["flow"]["num_crops"]), (1, 5)
        )
        self.assertEqual(
            (
                streams["rgb"]["input"]["shuffle_buffer"],
                streams["flow"]["input"]["shuffle_buffer"],
            ),
            (4, 3),
        )
        self.assertEqual(self.record["fusion"]["weights"], {"rgb": 1.0, "flow": 1.0})
        self.assertEqual(streams["rgb"]["input_rule"], "release_vgg")
        self.assertEqual(streams["flow"]["training"]["build_model"]["backbone"], "tiny")

    def test_injected_dataset_factory_reaches_evaluation(self):
        evaluations = [c for c in self.calls if not c["training"] and c.get("with_ids")]
        self.assertEqual(sorted(c["num_crops"] for c in evaluations), [1, 5])
        for call in evaluations:
            self.assertEqual(call["data_dir"], os.path.abspath(self.data_dir))

    def test_evaluation_and_export_follow_the_record(self):
        self.assertEqual(self.outcome["flow"]["num_crops"], 5)
        self.assertTrue(
            self.outcome["flow"]["scores_path"].endswith("flow_test_5crop.h5")
        )
        with open(
            os.path.join(self.outcome["export_dir"], "assets", "avlad_export.json")
        ) as f:
            config = json.load(f)
        # Rebinding train.fuse_weights reaches the SavedModel; so do the
        # crops each stream was evaluated with.
        self.assertEqual(config["fusion_weights"], {"rgb": 0.5, "flow": 0.5})
        self.assertEqual(config["num_crops"], {"rgb": 1, "flow": 5})


if __name__ == "__main__":
    absltest.main()
