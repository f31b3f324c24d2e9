"""Reruns of data preparation never keep output that disagrees with the input.

Each case gave wrong data with exit code 0 before: a video added after a
finished run, another --test_fraction, a corrupt shard, two files with one
id, a video whose container promises more frames than decode.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time

from absl.testing import absltest
import pytest
import tensorflow as tf

from avlad_tf.data import schema
from data_prep import sources
from tests import testing
from tests.data_prep import gated_prepare
from tests.data_prep import prep_fixtures
from tests.data_prep import prepare_test


def _last_line(result):
    return result.stderr.strip().splitlines()[-1]


class RerunTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        self.tmp = self.create_tempdir().full_path
        self.videos = os.path.join(self.tmp, "videos")
        for i in range(4):
            prep_fixtures.write_video(
                os.path.join(self.videos, "ab"[i % 2], f"{i}.avi"),
                12,
                first=i,
                height=24,
                width=32,
            )
        self.out = os.path.join(self.tmp, "out")
        self.args = [
            "--dataset=folders",
            f"--input_dir={self.videos}",
            f"--output_dir={self.out}",
            "--test_fraction=0.5",
            "--frame_size=24,32",
            "--workers=1",
            "--records_per_shard=1",
        ]

    def _prepare(self, *extra):
        return prepare_test._run(*self.args, *extra)  # pylint: disable=protected-access

    @pytest.mark.slow
    def test_an_added_video_is_refused_by_name(self):
        self.assertEqual(self._prepare().returncode, 0)
        prep_fixtures.write_video(
            os.path.join(self.videos, "a", "new.avi"), 12, height=24, width=32
        )
        result = self._prepare()
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertRegex(
            _last_line(result),
            r"^prepare: error: .*another input: .*1 added \(a/new\)"
            r".*new --output_dir",
        )

    @pytest.mark.slow
    def test_another_test_fraction_is_refused(self):
        self.assertEqual(self._prepare().returncode, 0)
        self.args[3] = "--test_fraction=0.25"
        result = self._prepare()
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertRegex(
            _last_line(result), r"other settings \(test_fraction: 0\.5 -> 0\.25\)"
        )

    @pytest.mark.slow
    def test_a_corrupt_shard_is_rebuilt(self):
        self.assertEqual(self._prepare().returncode, 0)
        shard = os.path.join(self.out, "train-00000-of-00002.tfrecord")
        with open(shard, "rb") as f:
            original = f.read()
        with open(shard, "r+b") as f:
            f.seek(len(original) // 2)
            f.write(b"\xff\x00\xff")
        result = self._prepare()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("1 damaged shards rebuilt", result.stderr)
        with open(shard, "rb") as f:
            self.assertEqual(f.read(), original)

    @pytest.mark.slow
    def test_two_files_with_one_id_stop_the_run(self):
        shutil.copy(
            os.path.join(self.videos, "a", "0.avi"),
            os.path.join(self.videos, "a", "0.mp4"),
        )
        result = self._prepare()
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertRegex(
            _last_line(result),
            r"a/0\.(avi|mp4) and .*a/0\.(avi|mp4) would both be "
            r"stored as video id 'a/0'",
        )
        self.assertFalse(os.path.exists(os.path.join(self.out, "metadata.json")))

    @pytest.mark.slow
    def test_a_truncated_video_is_reported_or_kept_under_a_flag(self):
        whole = os.path.join(self.tmp, "whole.avi")
        prep_fixtures.write_video(whole, 60, height=24, width=32)
        with open(whole, "rb") as f:
            data = f.read()
        with open(os.path.join(self.videos, "b", "trunc.avi"), "wb") as f:
            f.write(data[: len(data) * 8 // 10])  # the header still says 60
        result = self._prepare()
        self.assertEqual(result.returncode, 1, result.stderr)
        with open(os.path.join(self.out, "report.json")) as f:
            left_out = json.load(f)["left_out"]
        self.assertLen(left_out, 1)
        promised, decoded = map(
            int,
            re.match(
                r"^truncated: the container promises (\d+) frames but only (\d+) "
                r"decode",
                left_out[0]["reason"],
            ).groups(),
        )
        self.assertLess(decoded, promised - 1)

        kept = os.path.join(self.tmp, "kept")
        self.args[2] = f"--output_dir={kept}"
        result = self._prepare("--keep_truncated")
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(os.path.join(kept, "report.json")) as f:
            report = json.load(f)
        self.assertEqual(report["num_left_out"], 0)
        self.assertRegex(
            report["notes"][0]["note"], r"promises \d+ frames; kept the \d+ that decode"
        )
        ids = []
        for split in schema.read_metadata(kept)["splits"].values():
            for shard in split["shards"]:
                for record in tf.data.TFRecordDataset(
                    os.path.join(kept, shard["file"])
                ):
                    ids.append(
                        schema.parse_sequence_example(record)[schema.VIDEO_ID_KEY]
                        .numpy()
                        .decode()
                    )
        self.assertIn("b/trunc", ids)

    @pytest.mark.slow
    def test_ctrl_c_says_where_it_stopped_and_the_rerun_resumes(self):
        for i in range(4, 12):  # enough work to interrupt
            prep_fixtures.write_video(
                os.path.join(self.videos, "ab"[i % 2], f"{i}.avi"),
                12,
                first=i,
                height=24,
                width=32,
            )
        self.args[5] = "--workers=2"
        env = dict(os.environ)
        env.pop("TF_CPP_MIN_LOG_LEVEL", None)
        # The test split's videos wait at a gate: the train shards, planned
        # first, can finish; the test shards cannot, whatever the load.
        _, splits = sources.class_folder_items(self.videos, test_fraction=0.5)
        gate = os.path.join(self.tmp, "gate")
        process = testing.popen_interruptible(
            gated_prepare.command(
                gate,
                *self.args,
                held=[item.video_id for item in splits["test"]],
            ),
            cwd=prepare_test.REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.addCleanup(process.kill)
        first = os.path.join(self.out, "train-00000-of-00006.tfrecord")
        deadline = time.monotonic() + 600  # a hang, not a slow machine
        while not os.path.exists(first):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                self.fail(f"no shard written:\n{process.communicate()[1][-3000:]}")
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        # The workers go on as in an ungated run until prepare ends them.
        gated_prepare.open_gate(gate)
        try:
            _, stderr = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
            self.fail(f"prepare did not stop within 120 s of Ctrl-C:\n{stderr[-3000:]}")
        self.assertEqual(process.returncode, 130, stderr[-3000:])
        self.assertNotIn("Traceback", stderr)
        self.assertRegex(
            stderr.strip().splitlines()[-1],
            r"^prepare: interrupted \(\d+ of 12 shards finished in .*out\); "
            r"run the same command again to resume\.$",
        )
        result = self._prepare()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stderr, r"[1-9]\d* finished shards verified")

    @pytest.mark.slow
    def test_an_empty_class_is_named(self):
        os.makedirs(os.path.join(self.videos, "c"))
        prep_fixtures.write_video(
            os.path.join(self.videos, "c", "9.avi"), 12, height=24, width=32
        )
        shutil.rmtree(os.path.join(self.videos, "b"))
        # Class c has one video: it lands in train, and test has none of it.
        result = self._prepare()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("Warning: test has no video of 1 class(es): c", result.stderr)
        with open(os.path.join(self.out, "report.json")) as f:
            self.assertEqual(json.load(f)["empty_classes"], {"test": ["c"]})


if __name__ == "__main__":
    absltest.main()
