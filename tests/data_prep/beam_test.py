"""data_prep on Apache Beam gives the local process pool's dataset, byte for
byte, and drops nothing: left-out and crashed videos are dead letters that
land in report.json (docs/DATA_PREP.md, "On Apache Beam")."""

import os
import re
import shutil
import signal
import subprocess
import time

from absl.testing import absltest
import apache_beam as beam
from apache_beam.options import pipeline_options
from apache_beam.testing import test_pipeline
from apache_beam.testing import util as beam_util
import numpy as np
import pytest
import tensorflow as tf

from avlad_tf import storage
from avlad_tf.data import schema
from avlad_tf.data import video_input
from data_prep import beam_plan
from data_prep import beam_writer
from data_prep import local_pool
from data_prep import records
from data_prep import shards
from tests import testing
from tests.data_prep import gated_prepare
from tests.data_prep import prep_fixtures
from tests.data_prep import prepare_test

OPTIONS = records.Options(height=24, width=32)
RECORDS_PER_SHARD = 2
CRASHING_VIDEO = "b/3"


def _shard_counts(data_dir):
    """`[(shard, record count)]` of a prepared dataset, from its metadata."""
    metadata = schema.read_metadata(data_dir)
    return [
        (shard["file"], shard["num_records"])
        for split in metadata["splits"].values()
        for shard in split["shards"]
    ]


def _shards(data_dir):
    """The finished shard files in `data_dir` (none if it does not exist)."""
    if not os.path.isdir(data_dir):
        return []
    return sorted(n for n in os.listdir(data_dir) if n.endswith(".tfrecord"))


def _shard_of(data_dir, video_id):
    """The shard file of a prepared dataset that holds `video_id`."""
    for shard, _ in _shard_counts(data_dir):
        for record in tf.data.TFRecordDataset(os.path.join(data_dir, shard)):
            parsed = schema.parse_sequence_example(record)
            if parsed[schema.VIDEO_ID_KEY].numpy().decode() == video_id:
                return shard
    raise AssertionError(f"{video_id} is in no shard of {data_dir}")


class _SegfaultOn:
    """`shards.encode_task`, except that one video crashes its process hard,
    as a decoder's segfault would (a class: it travels to a spawned process)."""

    def __init__(self, video_id):
        self.video_id = video_id

    def __call__(self, item, options):
        if item.video_id == self.video_id:
            os.kill(os.getpid(), signal.SIGSEGV)
        return shards.encode_task(item, options)


class _TestPipelineExecutor:
    """`BeamPipeline` on a `TestPipeline`, asserting on its outputs."""

    description = "in a TestPipeline"

    def __init__(self, expected_shards, expected_dead, encode_fn=shards.encode_task):
        self.expected_shards, self.expected_dead = expected_shards, expected_dead
        self.encode_fn = encode_fn

    def write(self, output_dir, todo, options):
        beam_options = pipeline_options.PipelineOptions(["--runner=DirectRunner"])
        plan = beam_plan.write(output_dir, todo)
        with test_pipeline.TestPipeline(options=beam_options) as pipeline:
            out = beam_writer.build(
                pipeline, output_dir, plan, options, encode_fn=self.encode_fn
            )
            beam_util.assert_that(
                out["shards"], beam_util.equal_to(self.expected_shards)
            )
            dead = out["dead_letters"] | beam.Map(
                lambda d: (d["video_id"], d["reason"].split(":")[0])
            )
            beam_util.assert_that(
                dead, beam_util.equal_to(self.expected_dead), label="DeadLetters"
            )
        beam_plan.remove(plan)
        return shards.finished_records(output_dir, [s for _, s, _ in todo])


class BeamWriterTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = testing.class_tempdir(cls)
        cls.videos = os.path.join(cls.tmp, "videos")
        for i in range(6):
            prep_fixtures.write_video(
                os.path.join(cls.videos, "ab"[i % 2], f"{i}.avi"),
                12,
                first=i,
                height=24,
                width=32,
            )
        prep_fixtures.write_corrupt(os.path.join(cls.videos, "a", "bad.avi"))
        cls.local = os.path.join(cls.tmp, "local")
        cls._prepare(cls.local, executor=local_pool.LocalPool(1))

    @classmethod
    def _prepare(cls, output_dir, executor):
        return prep_fixtures.prepare_folders(
            cls.videos,
            output_dir,
            executor,
            options=OPTIONS,
            records_per_shard=RECORDS_PER_SHARD,
        )

    def assertSameDataset(self, output_dir):
        """Shards, metadata, labels, report and shard notes, byte for byte."""
        names = sorted(n for n in os.listdir(self.local) if not n.startswith("."))
        self.assertEqual(
            sorted(n for n in os.listdir(output_dir) if not n.startswith(".")), names
        )
        self.assertLen([n for n in names if n.endswith(".tfrecord")], 4)
        notes = [n for n in names if n.endswith(".tfrecord")]
        for name in names + [os.path.join(".progress", n + ".json") for n in notes]:
            with open(os.path.join(self.local, name), "rb") as a:
                with open(os.path.join(output_dir, name), "rb") as b:
                    self.assertEqual(a.read(), b.read(), name)

    @pytest.mark.slow
    def test_test_pipeline_output_equals_the_local_pool(self):
        out = self.create_tempdir().full_path
        executor = _TestPipelineExecutor(
            _shard_counts(self.local), [("a/bad", "unreadable")]
        )
        summary = self._prepare(out, executor)
        self.assertEqual(summary.written, 6)
        self.assertSameDataset(out)

    @pytest.mark.slow
    def test_a_crashing_decoder_is_a_dead_letter_not_a_dead_job(self):
        out = self.create_tempdir().full_path
        counts = _shard_counts(self.local)
        crashed_in = _shard_of(self.local, CRASHING_VIDEO)
        executor = _TestPipelineExecutor(
            [(s, n - (s == crashed_in)) for s, n in counts],
            [("a/bad", "unreadable"), (CRASHING_VIDEO, "crashed")],
            encode_fn=_SegfaultOn(CRASHING_VIDEO),
        )
        summary = self._prepare(out, executor)
        reasons = {e["video_id"]: e["reason"] for e in summary.left_out}
        self.assertEqual(sorted(reasons), ["a/bad", CRASHING_VIDEO])
        self.assertIn("its process died 2 time(s)", reasons[CRASHING_VIDEO])
        # The crash cost one video: the rest of its shard was written.
        self.assertEqual(summary.written, 5)
        self.assertEqual(summary.splits["test"]["num_records"], 2)

    def _cli_args(self, output_dir, records_per_shard):
        """`data_prep.prepare` on the test videos, on Beam's DirectRunner."""
        return [
            "--dataset=folders",
            f"--input_dir={self.videos}",
            f"--output_dir={output_dir}",
            "--test_fraction=0.5",
            "--frame_size=24,32",
            f"--records_per_shard={records_per_shard}",
            "--runner=DirectRunner",
        ]

    @pytest.mark.slow
    def test_cli_on_two_workers_equals_the_local_pool_and_reads_back(self):
        out = os.path.join(self.create_tempdir().full_path, "beam")
        args = self._cli_args(out, RECORDS_PER_SHARD) + [
            "--direct_num_workers=2",
            "--direct_running_mode=multi_processing",
        ]
        result = prepare_test._run(*args)  # pylint: disable=protected-access
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("on Beam's DirectRunner", result.stderr)
        self.assertIn("left out test a/bad: unreadable", result.stderr)
        self.assertSameDataset(out)

        rerun = prepare_test._run(*args, "--allow_missing")  # pylint: disable=protected-access
        self.assertEqual(rerun.returncode, 0, rerun.stderr)
        self.assertIn("4 finished shards verified and skipped", rerun.stderr)
        changed = prepare_test._run(*args, "--jpeg_quality=80")  # pylint: disable=protected-access
        self.assertEqual(changed.returncode, 1)
        self.assertIn("jpeg_quality: 95 -> 80", changed.stderr)

        dataset = video_input.make_dataset(
            data_dir=out,
            split="test",
            training=False,
            modalities=("rgb", "flow"),
            batch_size=4,
            num_frames=2,
            flow_stack=2,
            image_size=16,
            resize_to=(24, 32),
            with_ids=True,
        )
        ids = np.concatenate([f["video_id"].numpy() for f, _ in dataset])
        self.assertEqual(sorted(i.decode() for i in ids), ["a/4", "b/3", "b/5"])

    @pytest.mark.slow
    def test_a_killed_run_keeps_the_shards_it_finished(self):
        out = os.path.join(self.create_tempdir().full_path, "beam")
        args = self._cli_args(out, 1)  # 7 shards, written one by one
        # One video encodes, then the rest wait at a gate: its shard (the
        # runner picks which) can finish, no other, whatever the load.
        gate = os.path.join(self.create_tempdir().full_path, "gate")
        process = subprocess.Popen(
            gated_prepare.command(gate, *args, passes=1),
            cwd=prepare_test.REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.addCleanup(process.kill)
        deadline = time.monotonic() + 600  # a hang, not a slow machine
        while not _shards(out):
            self.assertIsNone(process.poll(), "prepare ended before a shard")
            self.assertLess(time.monotonic(), deadline, "no shard in 600 s")
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)  # no cleanup of any kind
        process.wait()
        kept = _shards(out)
        self.assertNotEmpty(kept)
        self.assertLess(len(kept), 7)  # killed midway, shards already written
        result = prepare_test._run(*args)  # pylint: disable=protected-access
        self.assertRegex(result.stderr, rf"\({len(kept)} finished shards verified")
        self.assertLen(_shards(out), 7)
        # The killed run's temporary files (its plan, a half shard) are gone.
        left = os.listdir(out) + os.listdir(os.path.join(out, shards.PROGRESS_DIR))
        self.assertEmpty([name for name in left if storage.TEMPORARY in name])

    def test_finished_records_needs_each_shard_whole_with_its_note(self):
        output_dir = os.path.join(self.create_tempdir().full_path, "copy")
        shutil.copytree(self.local, output_dir)
        written = sorted(n for n in os.listdir(output_dir) if n.endswith(".tfrecord"))
        total = shards.finished_records(output_dir, written)
        metadata = schema.read_metadata(output_dir)
        self.assertEqual(
            total, sum(s["num_records"] for s in metadata["splits"].values())
        )
        self.assertEqual(total, 6)  # all but the corrupt video
        with open(os.path.join(output_dir, written[0]), "ab") as f:
            f.write(b"x")  # not the file its note describes
        with self.assertRaisesRegex(RuntimeError, f"{written[0]} was not written"):
            shards.finished_records(output_dir, written)
        os.remove(os.path.join(output_dir, written[0]))
        with self.assertRaisesRegex(RuntimeError, f"{written[0]} was not written"):
            shards.finished_records(output_dir, written)

    @pytest.mark.slow
    def test_a_flag_neither_program_nor_beam_takes_is_refused(self):
        result = prepare_test._run(  # pylint: disable=protected-access
            "--dataset=folders",
            f"--input_dir={self.videos}",
            f"--output_dir={self.create_tempdir().full_path}",
            "--runner=DirectRunner",
            "--direct_num_workerz=2",
        )
        self.assertEqual(result.returncode, 1)
        # One line: no flag list, and none of Beam's import-time warnings
        # (TensorFlow's C++ start-up lines, which this test's environment
        # lets through, aside).
        lines = result.stderr.strip().splitlines()
        self.assertEqual(
            [line for line in lines if not re.match(r"[IWE]0000 00:00:", line)],
            [
                "prepare: error: unknown flag(s) --direct_num_workerz: neither "
                "data_prep.prepare nor Beam's pipeline options take them (see "
                "--help)"
            ],
        )


if __name__ == "__main__":
    absltest.main()
