"""Videos and frame folders at a URL: OpenCV reads a local copy, removed
after use, and the records equal those of the same files on local disk.
`ram://` (TensorFlow's in-memory filesystem) stands in for a bucket."""

import os
import tempfile
from unittest import mock
import uuid

from absl.testing import absltest
import numpy as np

from avlad_tf import storage
from avlad_tf.data import schema
from data_prep import records
from data_prep import video_io
from tests.data_prep import prep_fixtures

OPTIONS = records.Options(
    height=24, width=32, min_frames=5, flow_backend="opencv", flow_preset="opencv"
)


def _upload(local_root, url_root):
    """Copies a local folder tree to `url_root`."""
    for folder, _, files in os.walk(local_root):
        inside = os.path.relpath(folder, local_root)
        target = storage.join(url_root, inside) if inside != "." else url_root
        storage.makedirs(target)
        for name in files:
            storage.copy(os.path.join(folder, name), storage.join(target, name))


def _features(serialized):
    parsed = schema.parse_sequence_example(serialized)
    keys = (schema.RGB_KEY, schema.FLOW_X_KEY, schema.FLOW_Y_KEY)
    return [[bytes(x) for x in parsed[key].numpy()] for key in keys]


class UrlSourcesTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        self.local = self.create_tempdir().full_path
        prep_fixtures.write_video(
            os.path.join(self.local, "a.avi"), 6, height=24, width=32
        )
        prep_fixtures.write_frame_folder(
            os.path.join(self.local, "frames"), 6, height=24, width=32
        )
        self.url = f"ram://url_sources_test/{uuid.uuid4().hex}"
        _upload(self.local, self.url)
        # Where the local copies go, to see them removed.
        self.staging = self.create_tempdir().full_path
        self.enter_context(mock.patch.object(tempfile, "tempdir", self.staging))

    def test_a_video_is_read_from_a_local_copy_removed_after_use(self):
        url = storage.join(self.url, "a.avi")
        expected = video_io.read_video(
            os.path.join(self.local, "a.avi"), height=24, width=32
        )
        got = video_io.read_video(url, height=24, width=32)
        np.testing.assert_array_equal(np.stack(got), np.stack(expected))
        self.assertEqual(video_io.count_frames(url), 6)
        fps, frames = video_io.stream_video(url, height=24, width=32)
        self.assertEqual(fps, 25.0)
        self.assertLen(os.listdir(self.staging), 1)  # the copy, while streaming
        np.testing.assert_array_equal(np.stack(list(frames)), np.stack(expected))
        self.assertEqual(os.listdir(self.staging), [])

    def test_a_missing_empty_or_folder_url_is_a_source_error(self):
        with storage.open_file(storage.join(self.url, "empty.avi"), "wb") as f:
            f.write(b"")  # GFile makes the file at its first write
        for name, reason in (
            ("none.avi", "missing: no such file"),
            ("empty.avi", "empty: the file has 0 bytes"),
            ("frames", "a directory, not a video file"),
        ):
            with self.assertRaisesWithLiteralMatch(video_io.SourceError, reason):
                video_io.read_video(storage.join(self.url, name), height=24, width=32)
        self.assertEqual(os.listdir(self.staging), [])

    def test_records_from_a_url_equal_those_from_local_disk(self):
        for name in ("a.avi", "frames"):
            here, there = (
                records.Item(f"c/{name}", (0,), storage.join(root, name))
                for root in (self.local, self.url)
            )
            serialized, num_frames, _ = records.encode_item(there, OPTIONS)
            self.assertEqual(num_frames, 6)
            expected = records.encode_item(here, OPTIONS).serialized
            self.assertEqual(_features(serialized), _features(expected), name)
        self.assertEqual(os.listdir(self.staging), [])


if __name__ == "__main__":
    absltest.main()
