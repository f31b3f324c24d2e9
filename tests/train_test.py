"""`python -m avlad_tf.train` as a program, from a directory outside the repo."""

import os
import subprocess
import sys

from absl.testing import absltest
import pytest

from tests.training import tiny

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TrainMainTest(absltest.TestCase):
    @pytest.mark.slow
    def test_entry_point_from_another_directory(self):
        data_dir = tiny.write_data(self.create_tempdir().full_path)
        cwd = self.create_tempdir().full_path
        bindings = [line for line in tiny.BINDINGS.strip().splitlines()] + [
            f"DATA_DIR = '{data_dir}'",
            "train.evaluate_split = None",
            "train_stream.stage_steps = (1, 1)",
            "build_model.weights = None",
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
        workdir = os.path.join(cwd, "run")
        operative = open(os.path.join(workdir, "operative_config.gin")).read()
        self.assertIn("train_stream.stage_steps = (1, 1)", operative)
        self.assertIn("build_model.backbone = 'tiny'", operative)
        command_txt = open(os.path.join(workdir, "command.txt")).read()
        self.assertIn("--gin_file=rgb.gin", command_txt)
        self.assertIn("-m avlad_tf.train", command_txt)
        self.assertTrue(os.path.exists(os.path.join(workdir, "rgb", "model.keras")))

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
