"""data_prep on Beam with every path a URL, and no local mount: videos, plan
and dataset on TensorFlow's in-memory `ram://`, which a Beam FileSystem
registered here serves to the pipeline, as Beam's GCS filesystem and
tf.io.gfile both serve one bucket on Dataflow (docs/DATA_PREP.md, "On
Dataflow", which cannot run here: this test stands in for it)."""

import contextlib
import io
import posixpath
import uuid

from absl.testing import absltest
from apache_beam.io import filesystem
import tensorflow as tf

from avlad_tf import storage
from avlad_tf.data import schema
from data_prep import beam_plan
from data_prep import beam_writer
from data_prep import local_pool
from data_prep import records
from data_prep import shards
from tests.data_prep import prep_fixtures

OPTIONS = records.Options(
    height=24, width=32, flow_backend="opencv", flow_preset="opencv"
)
gfile = tf.io.gfile


class RamFileSystem(filesystem.FileSystem):
    """Beam's FileSystems on `ram://` through tf.io.gfile. Defining the class
    registers it: Beam picks a FileSystem subclass by its scheme. Only what
    the pipeline calls does anything; the rest is Beam's required surface."""

    opened = []  # every path the pipeline opened, to see it used

    @classmethod
    def scheme(cls):
        return "ram"

    def join(self, basepath, *paths):
        return posixpath.join(basepath, *paths)

    def split(self, path):
        return posixpath.split(path)

    def mkdirs(self, path):
        gfile.makedirs(path)

    def has_dirs(self):
        return True

    def _list(self, dir_or_prefix):
        raise NotImplementedError("not used by data_prep")

    def create(self, path, mime_type=None, compression_type=None):
        return gfile.GFile(path, "wb")

    def open(self, path, mime_type=None, compression_type=None):
        RamFileSystem.opened.append(path)
        return gfile.GFile(path, "rb")

    def copy(self, source_file_names, destination_file_names):
        for source, target in zip(source_file_names, destination_file_names):
            gfile.copy(source, target, overwrite=True)

    def rename(self, source_file_names, destination_file_names):
        for source, target in zip(source_file_names, destination_file_names):
            gfile.rename(source, target, overwrite=True)

    def exists(self, path):
        return gfile.exists(path)

    def size(self, path):
        return gfile.stat(path).length

    def last_updated(self, path):
        return gfile.stat(path).mtime_nsec / 1e9

    def checksum(self, path):
        return str(self.size(path))

    def metadata(self, path):
        return filesystem.FileMetadata(path, self.size(path), self.last_updated(path))

    def delete(self, paths):
        for path in paths:
            gfile.remove(path)


def _ram_dir():
    return f"ram://beam_storage_test/{uuid.uuid4().hex}"


def _files(root):
    """`{relative path: bytes}` of every file under `root`."""
    return {
        storage.join(folder, name)[len(root) + 1 :]: storage.read_bytes(
            storage.join(folder, name)
        )
        for folder, _, names in storage.walk(root)
        for name in names
    }


class BeamOnUrlsTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.videos = storage.join(_ram_dir(), "videos")
        for i in range(5):
            path = storage.join(cls.videos, "ab"[i % 2], f"{i}.avi")
            storage.makedirs(storage.dirname(path))
            with storage.local_output(path) as local:  # OpenCV writes here
                prep_fixtures.write_video(local, 12, first=i, height=24, width=32)
        with storage.local_output(storage.join(cls.videos, "a", "bad.avi")) as local:
            prep_fixtures.write_corrupt(local)

    def _prepare(self, output_dir, executor):
        return prep_fixtures.prepare_folders(
            self.videos,
            output_dir,
            executor,
            options=OPTIONS,
            records_per_shard=2,
        )

    def test_beam_on_urls_equals_the_process_pool_and_leaves_no_temporary_file(self):
        pool_dir, beam_dir = _ram_dir(), _ram_dir()
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            self._prepare(pool_dir, local_pool.LocalPool(2))
        self.assertIn("Inputs on ram:// exist only in this process", stderr.getvalue())
        # What a killed attempt leaves: removed by the next run.
        storage.makedirs(storage.join(beam_dir, shards.PROGRESS_DIR))
        leftover = storage.temporary_name(storage.join(beam_dir, "test-00000.tfrecord"))
        with storage.open_file(leftover, "wb") as f:
            f.write(b"half")
        RamFileSystem.opened.clear()
        executor = beam_writer.BeamPipeline(["--runner=DirectRunner"])
        summary = self._prepare(beam_dir, executor)

        self.assertEqual(summary.written, 5)
        self.assertEqual(
            [(e["video_id"], e["reason"]) for e in summary.left_out],
            [("a/bad", "unreadable: OpenCV cannot open the video")],
        )
        written = _files(beam_dir)
        self.assertEqual(written, _files(pool_dir))  # byte for byte
        self.assertEmpty([name for name in written if storage.TEMPORARY in name])
        # Each shard's worker read its own line of the plan, through Beam's
        # FileSystems; the plan is gone once the pipeline has succeeded.
        self.assertLen(RamFileSystem.opened, 4)
        self.assertEqual(
            {
                posixpath.basename(p).split(storage.TEMPORARY)[0]
                for p in RamFileSystem.opened
            },
            {beam_plan.NAME},
        )
        metadata = schema.read_metadata(beam_dir)
        paths = [
            storage.join(beam_dir, shard["file"])
            for split in metadata["splits"].values()
            for shard in split["shards"]
        ]
        self.assertLen(list(tf.data.TFRecordDataset(paths)), 5)

    def test_the_plan_file_holds_the_items_the_graph_only_offsets(self):
        output_dir = _ram_dir()
        storage.makedirs(storage.join(output_dir, shards.PROGRESS_DIR))
        todo = [
            (
                "train",
                "train-00000-of-00002.tfrecord",
                [
                    records.Item("a/1", (0, 2), "ram://v/a/1.avi", start_frame=3),
                    records.Item("a/2", (1,), "ram://v/a/2", flow_path="ram://f/a/2"),
                ],
            ),
            ("train", "train-00001-of-00002.tfrecord", []),
            ("test", "test-00000-of-00001.tfrecord", [records.Item("é", (0,), "x")]),
        ]
        plan = beam_plan.write(output_dir, todo)
        self.assertTrue(
            plan.path.startswith(
                storage.join(
                    output_dir, ".progress", beam_plan.NAME + storage.TEMPORARY
                )
            )
        )
        self.assertEqual([shard for shard, _, _ in plan.shards], [t[1] for t in todo])
        for (split, shard, items), (_, offset, length) in zip(todo, plan.shards):
            self.assertEqual(
                beam_plan.read(plan.path, shard, offset, length), (split, items)
            )
        _, offset, length = plan.shards[0]
        with self.assertRaisesRegex(RuntimeError, "the file changed under the job"):
            beam_plan.read(plan.path, "other.tfrecord", offset, length)
        beam_plan.remove(plan)
        self.assertFalse(storage.exists(plan.path))


if __name__ == "__main__":
    absltest.main()
