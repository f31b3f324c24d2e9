"""A run interrupted anywhere and restarted ends bit-identical to one that was not.

Under op determinism, a run stopped after update 3 of stage 1 (the last
checkpoint is at update 2, so update 3 is redone from the restored model,
Adam state and tf.data position) and again after update 1 of stage 2 (before
any stage-2 checkpoint) must give exactly the weights of an uninterrupted run.
"""

import glob
import json
import os

from absl.testing import absltest
import gin
import keras
import numpy as np
import pytest
import tensorflow as tf

from avlad_tf.training import checkpointing
from avlad_tf.training import experiment
from tests.training import tiny


class Interrupted(Exception):
    pass


def interrupt_at(stops):
    """A step callback raising once at each `(stage, step)` in `stops`."""
    pending = set(stops)

    def callback(*, stream, stage, step):
        del stream
        if (stage, step) in pending:
            pending.discard((stage, step))
            raise Interrupted(f"stage {stage} step {step}")

    return callback


class ResumeTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        tf.config.experimental.enable_op_determinism()
        self.data_dir = tiny.write_data(self.create_tempdir().full_path)

    def tearDown(self):
        gin.clear_config()
        super().tearDown()

    def run_to_end(self, workdir, callback=None):
        tiny.configure(
            "train_stream.stage_steps = (4, 3)\ntrain_stream.checkpoint_every = 2"
        )
        experiment.train(
            workdir=workdir, data_dir=self.data_dir, step_callback=callback
        )
        model = keras.saving.load_model(os.path.join(workdir, "rgb", "model.keras"))
        return {v.path: v.numpy() for v in model.variables}

    @pytest.mark.slow
    def test_resume_is_bit_identical(self):
        reference = self.run_to_end(self.create_tempdir().full_path)

        workdir = self.create_tempdir().full_path
        callback = interrupt_at({(1, 3), (2, 1)})
        with self.assertRaisesRegex(Interrupted, "stage 1 step 3"):
            self.run_to_end(workdir, callback)
        stage1 = checkpointing.stage_directory(workdir, "rgb", 1)
        self.assertEqual(os.path.basename(tf.train.latest_checkpoint(stage1)), "ckpt-2")
        with self.assertRaisesRegex(Interrupted, "stage 2 step 1"):
            self.run_to_end(workdir, callback)
        resumed = self.run_to_end(workdir, callback)

        self.assertEqual(sorted(resumed), sorted(reference))
        for path, value in reference.items():
            np.testing.assert_array_equal(resumed[path], value, err_msg=path)
        # Training moved the weights at all (the comparison is not vacuous).
        first = tf.train.load_checkpoint(os.path.join(stage1, "ckpt-2"))
        logits = first.get_tensor(
            "model_variables/logits.Skernel/.ATTRIBUTES/VARIABLE_VALUE"
        )
        self.assertFalse(np.array_equal(logits, reference["logits/kernel"]))
        # Each step logged once, although updates after a checkpoint ran twice.
        with open(os.path.join(workdir, "rgb", "train_metrics.jsonl")) as f:
            steps = [json.loads(line)["global_step"] for line in f]
        self.assertEqual(steps, list(range(1, 8)))
        events = glob.glob(
            os.path.join(workdir, "tensorboard", "rgb", "events.out.tfevents.*")
        )
        loss_steps = sorted(
            e.step
            for path in events
            for e in tf.compat.v1.train.summary_iterator(path)
            for v in e.summary.value
            if v.tag == "train/loss"
        )
        self.assertEqual(loss_steps, list(range(1, 8)))


class RerunTest(absltest.TestCase):
    """A rerun in a finished workdir never disagrees with what was asked."""

    def setUp(self):
        super().setUp()
        self.data_dir = tiny.write_data(self.create_tempdir().full_path)
        self.workdir = self.create_tempdir().full_path
        self.addCleanup(gin.clear_config)

    def _train(self, extra=""):
        tiny.configure("train_stream.stage_steps = (2, 1)\n" + extra)
        experiment.train(
            workdir=self.workdir,
            data_dir=self.data_dir,
            command="python -m avlad_tf.train ...",
        )

    @pytest.mark.slow
    def test_changed_settings_are_refused_before_anything_is_written(self):
        self._train()
        record = os.path.join(self.workdir, "run.json")
        with open(record) as f:
            before = f.read()
        os.remove(os.path.join(self.workdir, "command.txt"))
        with self.assertRaisesRegex(
            ValueError,
            r"trained with other settings \(rgb/build_model\.num_clusters:"
            r" 4 -> 5; rgb/train_stream\.learning_rates: \[0\.01, 0\.0001\] "
            r"-> \[0\.02, 0\.0001\]\)\. Use a new --workdir",
        ):
            self._train(
                "build_model.num_clusters = 5\n"
                "train_stream.learning_rates = (0.02, 1e-4)"
            )
        with open(record) as f:
            self.assertEqual(f.read(), before)
        self.assertFalse(os.path.exists(os.path.join(self.workdir, "command.txt")))

    @pytest.mark.slow
    def test_more_updates_in_the_last_stage_extend_the_run(self):
        self._train()
        stage2 = checkpointing.stage_directory(self.workdir, "rgb", 2)
        self.assertTrue(tf.train.latest_checkpoint(stage2).endswith("ckpt-1"))
        tiny.configure("train_stream.stage_steps = (2, 3)")
        experiment.train(workdir=self.workdir, data_dir=self.data_dir)
        self.assertTrue(tf.train.latest_checkpoint(stage2).endswith("ckpt-3"))
        with open(os.path.join(self.workdir, "run.json")) as f:
            recorded = json.load(f)["streams"]["rgb"]["training"]
        self.assertEqual(recorded["train_stream"]["stage_steps"], [2, 3])


if __name__ == "__main__":
    absltest.main()
