"""The programs as a person runs them: one-line errors, Ctrl-C, a quiet console.

Every configuration or input error is one line naming the binding, file or
record and what to do (no traceback unless --verbosity asks for it); values
are checked before k-means starts; Ctrl-C says where the run stopped and
that the same command resumes.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

from absl.testing import absltest
from absl.testing import parameterized
import pytest

from avlad_tf.data import schema
from tests import fake_data
from tests import testing
from tests.training import tiny

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env():
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the programs' own default
    env.pop("AVLAD_TRACEBACK", None)
    return env


def run_program(module, *args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=timeout,
        check=False,
    )


class ProgramsTest(parameterized.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        root = testing.class_tempdir(cls)
        cls.root = root
        cls.data_dir = fake_data.write_fake_dataset(
            os.path.join(root, "data"), num_videos=4, content="pattern"
        )
        cls.config = os.path.join(root, "tiny.gin")
        with open(cls.config, "w") as f:
            f.write(
                "include 'base.gin'\n"
                + tiny.BINDINGS
                + f"DATA_DIR = '{cls.data_dir}'\n"
                "TRAIN_SPLIT = 'train'\nTEST_SPLIT = 'test'\n"
            )

    def _train(self, *bindings, workdir=None):
        workdir = workdir or self.create_tempdir().full_path
        args = [f"--gin_file={self.config}", f"--workdir={workdir}"]
        args += [f"--gin_bindings={b}" for b in bindings]
        return run_program("avlad_tf.train", *args), workdir

    def assert_one_line_error(self, result, pattern, program="train"):
        self.assertEqual(result.returncode, 1, result.stderr[-3000:])
        self.assertNotIn("Traceback", result.stderr)
        lines = result.stderr.strip().splitlines()
        self.assertLen(lines, 1, result.stderr)
        self.assertRegex(lines[0], rf"^{program}: error: {pattern}")

    @pytest.mark.slow
    def test_help_lists_the_three_flags(self):
        result = run_program("avlad_tf.train", "--help")
        self.assertEqual(result.returncode, 0, result.stderr)
        for flag in ("--gin_file", "--gin_bindings", "--workdir"):
            self.assertIn(flag, result.stdout)

    @pytest.mark.slow
    def test_data_prep_help_names_docs_that_exist(self):
        result = run_program("data_prep.prepare", "--help")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("docs/DATA_PREP.md", result.stdout)
        self.assertTrue(os.path.exists(os.path.join(REPO, "docs", "DATA_PREP.md")))

    @pytest.mark.slow
    def test_a_gin_typo_names_the_binding(self):
        result, _ = self._train("train_stram.batch_size = 2")
        self.assert_one_line_error(
            result,
            r".*No configurable matching 'train_stram'.*"
            r"train_stram\.batch_size = 2",
        )

    @pytest.mark.slow
    def test_a_gin_syntax_error_names_the_binding_text(self):
        result, _ = self._train("train_stream.stage_steps = (1, 2")
        self.assert_one_line_error(
            result,
            r"gin syntax error in binding 'train_stream\.stage_steps "
            r"= \(1, 2': EOF in multi-line statement",
        )

    @pytest.mark.slow
    def test_a_missing_gin_file_is_named(self):
        result = run_program(
            "avlad_tf.train", "--gin_file=nope.gin", "--workdir=/tmp/unused"
        )
        self.assert_one_line_error(result, r"gin file 'nope\.gin' is neither")

    @parameterized.parameters(
        (
            "train_stream.batch_size = -1",
            r"rgb/train_stream\.batch_size = -1: "
            r"must be a positive integer",
        ),
        (
            "train_stream.kmeans_batch_size = 0",
            r"rgb/train_stream\.kmeans_batch_size = 0: must be a positive integer",
        ),
        (
            "build_model.num_clusters = 0",
            r"rgb/build_model\.num_clusters = 0: must be a positive integer",
        ),
        (
            "train_stream.train_split = 'train_split9'",
            r"rgb/train_stream\.train_split = 'train_split9': .* has the splits "
            r"\['test', 'train'\]",
        ),
    )
    @pytest.mark.slow
    def test_bad_values_fail_before_kmeans(self, binding, pattern):
        result, workdir = self._train(binding)
        self.assert_one_line_error(result, pattern)
        self.assertFalse(os.path.exists(os.path.join(workdir, "rgb", "centers.npy")))

    @pytest.mark.slow
    def test_an_empty_split_is_named(self):
        empty = fake_data.write_fake_dataset(
            os.path.join(self.create_tempdir().full_path, "empty"),
            num_videos=0,
            splits=("train", "test"),
        )
        result, _ = self._train(f"DATA_DIR = '{empty}'")
        self.assert_one_line_error(
            result, r"rgb/train_stream\.train_split = 'train': .* holds no video"
        )

    @pytest.mark.slow
    def test_usage_errors_are_one_line_pointing_to_help(self):
        # absl's own handling printed the whole flag list before the message.
        no_config = run_program("avlad_tf.train", "--workdir=/tmp/unused")
        self.assert_one_line_error(
            no_config, r"--gin_file is required: .*toy/late_fuse\.gin.*\(see --help\)$"
        )
        stray = run_program(
            "avlad_tf.export", "--workdir=/tmp/unused", "extra_argument"
        )
        self.assert_one_line_error(
            stray,
            r"Unexpected arguments: \['extra_argument'\] \(see --help\)$",
            "export",
        )
        no_model = run_program("avlad_tf.predict", "video.mp4")
        self.assert_one_line_error(
            no_model, r"--model EXPORT_DIR is required\. \(see --help\)$", "predict"
        )

    @pytest.mark.slow
    def test_an_operating_system_error_is_one_line(self):
        # A workdir name longer than the filesystem allows (ENAMETOOLONG).
        root = self.create_tempdir().full_path
        result, _ = self._train(workdir=os.path.join(root, "x" * 300))
        self.assert_one_line_error(result, r".*File name too long.*xxxx")

    def _data_copy(self):
        copy = os.path.join(self.create_tempdir().full_path, "data")
        shutil.copytree(self.data_dir, copy)
        with open(os.path.join(copy, schema.METADATA_FILE)) as f:
            return copy, json.load(f)

    @pytest.mark.slow
    def test_a_corrupt_shard_read_by_training_is_one_line(self):
        copy, metadata = self._data_copy()
        shard = os.path.join(copy, metadata["splits"]["train"]["shards"][0]["file"])
        with open(shard, "r+b") as f:
            f.truncate(os.path.getsize(shard) // 2)
        result, _ = self._train(f"DATA_DIR = '{copy}'")
        self.assert_one_line_error(
            result,
            rf'Shard "{re.escape(shard)}": metadata.json lists \d+ records but '
            r"\d+ could be read: .* into a new --output_dir",
        )

    @pytest.mark.slow
    def test_toy_data_of_another_generator_version_is_one_line(self):
        copy, metadata = self._data_copy()
        with open(os.path.join(copy, schema.METADATA_FILE), "w") as f:
            json.dump(dict(metadata, toy_version=1), f)
        result, _ = self._train(
            f"DATA_DIR = '{copy}'", "train.prepare_toy_dataset = True"
        )
        self.assert_one_line_error(
            result,
            rf"{re.escape(copy)} holds toy data of generator version 1; .* Remove",
        )

    @pytest.mark.slow
    def test_an_unwritable_workdir_is_one_line(self):
        blocker = os.path.join(self.create_tempdir().full_path, "a_file")
        with open(blocker, "w") as f:
            f.write("not a directory")
        result, _ = self._train(workdir=os.path.join(blocker, "run"))
        self.assert_one_line_error(result, r".*a_file/run")

    @pytest.mark.slow
    def test_a_run_prints_one_screen_and_ctrl_c_says_where_it_stopped(self):
        workdir = self.create_tempdir().full_path
        result, _ = self._train("train.evaluate_split = None", workdir=workdir)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        lines = result.stderr.splitlines()
        self.assertLess(len(lines), 25, result.stderr)
        for noise in ("I0000", "W0000", "E0000", "Sharding callback", "cuInit"):
            self.assertNotIn(noise, result.stderr)
        self.assertTrue(any(line.startswith("rgb stage 1 [") for line in lines))

        # A long stage, interrupted once a checkpoint exists.
        workdir = self.create_tempdir().full_path
        process = testing.popen_interruptible(
            [
                sys.executable,
                "-m",
                "avlad_tf.train",
                f"--gin_file={self.config}",
                f"--workdir={workdir}",
                "--gin_bindings=train_stream.stage_steps = (100000, 1)",
            ],
            cwd=REPO,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.addCleanup(process.kill)
        stage1 = os.path.join(workdir, "rgb", "checkpoints", "stage1")
        # The stage cannot end first (100000 updates); the deadline only
        # ends a hang, failing rather than interrupting too early.
        deadline = time.monotonic() + 600
        while not (
            os.path.isdir(stage1)
            and any(n.startswith("ckpt-2") for n in os.listdir(stage1))
        ):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                self.fail(f"no ckpt-2 written:\n{process.communicate()[1][-3000:]}")
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
            self.fail(f"train did not stop within 120 s of Ctrl-C:\n{stderr[-3000:]}")
        self.assertEqual(process.returncode, 130, stderr[-3000:])
        self.assertNotIn("Traceback", stderr)
        self.assertRegex(
            stderr.strip().splitlines()[-1],
            r"^train: interrupted \(rgb stage 1 at update \d+ of "
            r"100000, last checkpoint .*ckpt-\d+\); run the same "
            r"command again to resume\.$",
        )

    @pytest.mark.slow
    def test_verbosity_brings_the_traceback_back(self):
        result = run_program(
            "avlad_tf.train",
            f"--gin_file={self.config}",
            f"--workdir={self.create_tempdir().full_path}",
            "--gin_bindings=train_stream.batch_size = -1",
            "--verbosity=1",
        )
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("Traceback", result.stderr)
        self.assertIn("rgb/train_stream.batch_size = -1", result.stderr)


if __name__ == "__main__":
    absltest.main()
