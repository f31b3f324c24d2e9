"""`python -m avlad_tf.train` as a program, from a directory outside the repo."""

import os
import subprocess
import sys

from absl.testing import absltest
import numpy as np
import pytest
import tensorflow as tf

from avlad_tf.training import checkpointing
from tests.training import tiny

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _final_weights(workdir):
    """Every variable of the last stage-2 checkpoint of `workdir`'s RGB stream."""
    stage2 = checkpointing.stage_directory(workdir, "rgb", 2)
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(stage2))
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if name.startswith("model_variables/")
    }


class TrainMainTest(absltest.TestCase):
    def _train(self, cwd, data_dir, *extra):
        """Runs the tiny RGB configuration as a fresh process in `cwd`."""
        bindings = [line for line in tiny.BINDINGS.strip().splitlines()] + [
            f"DATA_DIR = '{data_dir}'",
            "train.evaluate_split = None",
            "build_model.weights = None",
            *extra,
        ]
        command = [
            sys.executable,
            "-m",
            "avlad_tf.train",
            "--gin_file=rgb.gin",
            "--workdir=run",
        ]
        command += [f"--gin_bindings={b}" for b in bindings]
        env = dict(os.environ, PYTHONPATH=_REPO, TF_CPP_MIN_LOG_LEVEL="2")
        result = subprocess.run(
            command, cwd=cwd, env=env, text=True, capture_output=True, timeout=500
        )
        self.assertEqual(result.returncode, 0, result.stderr[-5000:])
        return os.path.join(cwd, "run")

    @pytest.mark.slow
    def test_entry_point_from_another_directory(self):
        data_dir = tiny.write_data(self.create_tempdir().full_path)
        cwd = self.create_tempdir().full_path
        workdir = self._train(cwd, data_dir, "train_stream.stage_steps = (1, 1)")
        operative = open(os.path.join(workdir, "operative_config.gin")).read()
        self.assertIn("train_stream.stage_steps = (1, 1)", operative)
        self.assertIn("build_model.backbone = 'tiny'", operative)
        command_txt = open(os.path.join(workdir, "command.txt")).read()
        self.assertIn("--gin_file=rgb.gin", command_txt)
        self.assertIn("-m avlad_tf.train", command_txt)
        self.assertTrue(os.path.exists(os.path.join(workdir, "rgb", "model.keras")))

    @pytest.mark.slow
    def test_two_fresh_processes_train_bit_identical_weights(self):
        # The same command twice, as a newcomer would run it, without op
        # determinism (as the toy's commands run): every weight equal.
        data_dir = tiny.write_data(self.create_tempdir().full_path)
        runs = [
            self._train(self.create_tempdir().full_path, data_dir) for _ in range(2)
        ]
        weights = [_final_weights(workdir) for workdir in runs]
        self.assertEqual(sorted(weights[0]), sorted(weights[1]))
        self.assertIn(
            "model_variables/logits.Skernel/.ATTRIBUTES/VARIABLE_VALUE", weights[0]
        )
        for name, value in weights[0].items():
            np.testing.assert_array_equal(weights[1][name], value, err_msg=name)

    @pytest.mark.slow
    def test_typo_in_a_binding_fails(self):
        command = [
            sys.executable,
            "-m",
            "avlad_tf.train",
            "--gin_file=rgb.gin",
            "--workdir=run",
            "--gin_bindings=train_stream.batch_sise = 2",
        ]
        env = dict(os.environ, PYTHONPATH=_REPO, TF_CPP_MIN_LOG_LEVEL="2")
        result = subprocess.run(
            command,
            cwd=self.create_tempdir().full_path,
            env=env,
            text=True,
            capture_output=True,
            timeout=300,
        )
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("batch_sise", result.stderr)


if __name__ == "__main__":
    absltest.main()
