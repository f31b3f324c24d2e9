"""`python -m data_prep.prepare` end to end: report, exit status, resume."""

import json
import os
import signal
import subprocess
import sys
import time

from absl.testing import absltest
import pytest

from avlad_tf.data import schema
from data_prep import sources
from tests.data_prep import gated_prepare
from tests.data_prep import prep_fixtures

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _command(*args):
    return [sys.executable, "-m", "data_prep.prepare", *args]


def _run(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        _command(*args), cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


class PrepareTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        self.tmp = self.create_tempdir().full_path

    @pytest.mark.slow
    def test_a_split_name_cannot_leave_the_output_dir(self):
        root = os.path.join(self.tmp, "videos")
        prep_fixtures.write_video(
            os.path.join(root, "A", "a.avi"), 4, height=24, width=32
        )
        out = os.path.join(self.tmp, "nested", "out")
        result = _run(
            "--dataset=folders",
            f"--input_dir={root}",
            f"--output_dir={out}",
            "--splits=../escaped,test",
        )
        self.assertEqual(result.returncode, 1, result.stderr)
        last = result.stderr.strip().splitlines()[-1]
        self.assertRegex(last, r"--splits name '\.\./escaped': use letters")
        self.assertEqual(os.listdir(self.tmp), ["videos"])  # nothing written

    @pytest.mark.slow
    def test_left_out_videos_are_reported_and_fail_the_run(self):
        root, lists = (os.path.join(self.tmp, d) for d in ("videos", "lists"))
        prep_fixtures.write_video(
            os.path.join(root, "A", "v_A_1.avi"), 12, height=24, width=32
        )
        prep_fixtures.write_video(
            os.path.join(root, "B", "v_B_1.avi"), 3, height=24, width=32
        )
        prep_fixtures.write_corrupt(os.path.join(root, "B", "v_B_2.avi"))
        os.makedirs(lists)
        with open(os.path.join(lists, "train_split1.txt"), "w") as f:
            f.write("A/v_A_1.avi 12 0\nB/v_B_1.avi 3 1\n")
        with open(os.path.join(lists, "test_split1.txt"), "w") as f:
            f.write("A/v_A_gone.avi 12 0\nB/v_B_2.avi 12 1\n")
        out = os.path.join(self.tmp, "out")
        args = [
            "--dataset=ucf101",
            f"--input_dir={root}",
            f"--list_dir={lists}",
            f"--output_dir={out}",
            "--frame_size=24,32",
            "--workers=1",
        ]
        result = _run(*args)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("3 videos left out", result.stderr)
        with open(os.path.join(out, "report.json")) as f:
            report = json.load(f)
        reasons = {e["video_id"]: e["reason"] for e in report["left_out"]}
        self.assertEqual(report["num_left_out"], 3)
        self.assertStartsWith(reasons["B/v_B_1.avi"], "too short: 3 frames")
        self.assertStartsWith(reasons["A/v_A_gone.avi"], "missing")
        self.assertStartsWith(reasons["B/v_B_2.avi"], "unreadable")
        metadata = schema.read_metadata(out)
        self.assertEqual(metadata["labels"], ["A", "B"])
        self.assertEqual(metadata["splits"]["train_split1"]["num_records"], 1)
        self.assertEqual(metadata["splits"]["test_split1"]["num_records"], 0)
        # Accepting the losses: the re-run resumes and exits 0.
        result = _run(*args, "--allow_missing")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("3 videos left out", result.stderr)
        self.assertIn("2 finished shards verified and skipped", result.stderr)

    @pytest.mark.slow
    def test_wrong_input_dir_fails_at_once(self):
        result = _run(
            "--dataset=hmdb51", "--input_dir=/nonexistent", f"--output_dir={self.tmp}/o"
        )
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("none of the 5100 listed videos exists", result.stderr)

    @pytest.mark.slow
    def test_interrupted_run_resumes_to_identical_shards(self):
        root = os.path.join(self.tmp, "videos")
        for i in range(6):
            prep_fixtures.write_video(
                os.path.join(root, "ab"[i % 2], f"{i}.avi"),
                12,
                first=i,
                height=24,
                width=32,
            )
        args = [
            "--dataset=folders",
            f"--input_dir={root}",
            "--test_fraction=0.34",
            "--records_per_shard=1",
            "--frame_size=24,32",
            "--workers=1",
        ]
        whole = os.path.join(self.tmp, "whole")
        self.assertEqual(_run(*args, f"--output_dir={whole}").returncode, 0)
        cut = os.path.join(self.tmp, "cut")
        # The test split's videos wait at a gate: the train shards, planned
        # first, can finish; the test shards cannot, whatever the load.
        _, splits = sources.class_folder_items(root, test_fraction=0.34)
        process = subprocess.Popen(
            gated_prepare.command(
                os.path.join(self.tmp, "gate"),
                *args,
                f"--output_dir={cut}",
                held=[item.video_id for item in splits["test"]],
            ),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        )
        self.addCleanup(process.kill)
        first = os.path.join(cut, "train-00000-of-00004.tfrecord")
        deadline = time.monotonic() + 600  # a hang, not a slow machine
        while not os.path.exists(first):
            self.assertIsNone(process.poll(), "prepare ended before a shard")
            self.assertLess(time.monotonic(), deadline, "no shard in 600 s")
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()
        done = [f for f in os.listdir(cut) if f.endswith(".tfrecord")]
        self.assertNotEmpty(done)
        self.assertLess(len(done), 6, "the run finished before the kill")
        self.assertFalse(os.path.exists(os.path.join(cut, "metadata.json")))
        result = _run(*args, f"--output_dir={cut}")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(
            f"{len(done)} finished shards verified and skipped", result.stderr
        )
        names = sorted(f for f in os.listdir(whole) if f.endswith(".tfrecord"))
        self.assertLen(names, 6)
        self.assertEqual(
            names, sorted(f for f in os.listdir(cut) if f.endswith(".tfrecord"))
        )
        for name in names:
            with (
                open(os.path.join(whole, name), "rb") as a,
                open(os.path.join(cut, name), "rb") as b,
            ):
                self.assertEqual(a.read(), b.read(), name)
        self.assertEqual(
            schema.read_metadata(whole)["splits"], schema.read_metadata(cut)["splits"]
        )


if __name__ == "__main__":
    absltest.main()
