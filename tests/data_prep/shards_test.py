"""One shard's writing (data_prep/shards.py) at any path: two attempts at one
shard never mix, and a rerun removes what a killed one left."""

import contextlib
import io
import uuid

from absl.testing import absltest
from absl.testing import parameterized
import tensorflow as tf

from avlad_tf import storage
from data_prep import records
from data_prep import resume
from data_prep import shards

SHARD = "train-00000-of-00001.tfrecord"


def _ram_dir():
    path = f"ram://shards_test/{uuid.uuid4().hex}"
    storage.makedirs(storage.join(path, shards.PROGRESS_DIR))
    return path


def _items(n):
    return [records.Item(f"a/{i}", (0,), f"ram://videos/a/{i}.avi") for i in range(n)]


def _results(tag, n, *, midway=None):
    """`encode_task` results `(record, reason, note)` of attempt `tag`;
    `midway()` runs after the first record."""
    for i in range(n):
        yield f"{tag}-{i}".encode(), "", ""
        if i == 0 and midway:
            midway()


class ShardsTest(parameterized.TestCase):
    def _directory(self, kind):
        if kind == "ram":
            return _ram_dir()
        path = self.create_tempdir().full_path
        storage.makedirs(storage.join(path, shards.PROGRESS_DIR))
        return path

    def test_two_attempts_at_one_shard_write_apart_and_one_complete_file_wins(self):
        # A speculative runner's second attempt at the shard runs entirely
        # while the first is writing: each writes its own temporary file.
        out, items = _ram_dir(), _items(3)

        def second_attempt():
            count = shards.write_shard(
                out, "train", SHARD, items, _results("second", 3), flow_backend="x"
            )
            self.assertEqual(count, 3)

        first = _results("first", 3, midway=second_attempt)
        shards.write_shard(out, "train", SHARD, items, first, flow_backend="x")
        path = storage.join(out, SHARD)
        written = [r.numpy() for r in tf.data.TFRecordDataset(path)]
        self.assertEqual(written, [b"first-0", b"first-1", b"first-2"])
        note = resume.read_json(shards.note_path(out, SHARD))
        self.assertEqual(note["sha256"], resume.checksum(path))
        self.assertEqual(
            resume.shard_state(path, shards.note_path(out, SHARD)), "finished"
        )
        self.assertEqual(storage.listdir(out), [".progress", SHARD])
        self.assertEqual(
            storage.listdir(storage.join(out, shards.PROGRESS_DIR)), [SHARD + ".json"]
        )

    @parameterized.parameters("local", "ram")
    def test_a_rerun_removes_the_temporary_files_a_killed_run_left(self, kind):
        out = self._directory(kind)
        progress = storage.join(out, shards.PROGRESS_DIR)
        left = [
            storage.temporary_name(storage.join(out, SHARD)),
            storage.temporary_name(storage.join(progress, SHARD + ".json")),
        ]
        kept = [storage.join(out, SHARD), storage.join(progress, "options.json")]
        for path in left + kept:
            with storage.open_file(path, "w") as f:
                f.write("x")
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            shards.remove_leftovers(out)
        self.assertEqual([storage.exists(p) for p in left + kept], [0, 0, 1, 1])
        self.assertIn(
            "Removed 2 temporary file(s) that an interrupted", stderr.getvalue()
        )
        with contextlib.redirect_stderr(io.StringIO()) as quiet:
            shards.remove_leftovers(out)
        self.assertEqual(quiet.getvalue(), "")


if __name__ == "__main__":
    absltest.main()
