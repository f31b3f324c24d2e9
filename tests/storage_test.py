"""avlad_tf.storage on a local directory and on TensorFlow's in-memory
`ram://` filesystem, the stand-in for object storage."""

import os
import uuid

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from avlad_tf import settings
from avlad_tf import storage


def _ram_dir():
    path = f"ram://storage_test/{uuid.uuid4().hex}"
    tf.io.gfile.makedirs(path)
    return path


class StorageTest(parameterized.TestCase):
    def _directory(self, kind):
        return self.create_tempdir().full_path if kind == "local" else _ram_dir()

    @parameterized.parameters("local", "ram")
    def test_files_and_directories(self, kind):
        root = self._directory(kind)
        folder = storage.join(root, "a", "b")
        storage.makedirs(folder)
        storage.makedirs(folder)  # exists: nothing
        self.assertTrue(storage.isdir(folder))
        path = storage.join(folder, "x.txt")
        with storage.open_file(path, "w") as f:
            f.write("héllo")
        self.assertEqual(storage.read_text(path), "héllo")
        self.assertEqual(storage.size(path), len("héllo".encode()))
        self.assertEqual(storage.listdir(storage.join(root, "a")), ["b"])
        self.assertEqual(storage.glob(storage.join(folder, "*.txt")), [path])
        storage.copy(path, storage.join(folder, "y.txt"))
        self.assertEqual(
            storage.read_bytes(storage.join(folder, "y.txt")), b"h\xc3\xa9llo"
        )
        storage.remove(path)
        storage.remove(path)  # missing: nothing
        self.assertFalse(storage.exists(path))
        storage.rmtree(storage.join(root, "a"))
        self.assertFalse(storage.exists(folder))

    @parameterized.parameters("local", "ram")
    def test_stat_and_a_missing_path(self, kind):
        root = self._directory(kind)
        path = storage.join(root, "v.avi")
        with storage.open_file(path, "wb") as f:
            f.write(b"abc")
        self.assertEqual((storage.stat(path).size, storage.stat(path)[2]), (3, False))
        self.assertTrue(storage.stat(root).is_directory)
        with self.assertRaisesRegex(FileNotFoundError, "none"):
            storage.stat(storage.join(root, "none"))
        self.assertEqual(storage.process_local(path), kind == "ram")

    @parameterized.parameters("local", "ram")
    def test_write_json_replaces_whole_and_leaves_no_temporary_file(self, kind):
        root = self._directory(kind)
        path = storage.join(root, "a.json")
        settings.write_json(path, {"b": (1, 2)})
        settings.write_json(path, {"b": (3,)})
        self.assertEqual(settings.read_json(path), {"b": [3]})
        self.assertEqual(storage.listdir(root), ["a.json"])

    @parameterized.parameters("local", "ram")
    def test_replacing_keeps_the_old_file_on_error(self, kind):
        root = self._directory(kind)
        path = storage.join(root, "a.txt")
        with storage.open_file(path, "w") as f:
            f.write("old")
        with self.assertRaisesRegex(RuntimeError, "disk full"):
            with storage.replacing(path) as tmp:
                with storage.open_file(tmp, "w") as f:
                    f.write("half")
                raise RuntimeError("disk full")
        self.assertEqual(storage.read_text(path), "old")
        self.assertEqual(storage.listdir(root), ["a.txt"])

    def test_two_attempts_at_one_file_write_apart_and_one_wins_whole(self):
        # A speculative runner's two attempts: interleaved, neither sees the
        # other's bytes, and the final file is one attempt's, complete.
        root = _ram_dir()
        path = storage.join(root, "shard")
        first, second = storage.replacing(path), storage.replacing(path)
        tmp1, tmp2 = first.__enter__(), second.__enter__()
        self.assertNotEqual(tmp1, tmp2)
        self.assertIn(storage.TEMPORARY, tmp1)
        with storage.open_file(tmp1, "wb") as f1, storage.open_file(tmp2, "wb") as f2:
            f1.write(b"1" * 1000)
            f2.write(b"2" * 10)
            f1.write(b"1" * 1000)
        second.__exit__(None, None, None)
        first.__exit__(None, None, None)
        self.assertEqual(storage.read_bytes(path), b"1" * 2000)
        self.assertEqual(storage.listdir(root), ["shard"])

    @parameterized.parameters("local", "ram")
    def test_local_input_and_output_for_libraries_that_need_a_file(self, kind):
        root = self._directory(kind)
        path = storage.join(root, "c.npy")
        with storage.local_output(path) as local:
            self.assertTrue(storage.is_local(local))
            self.assertTrue(local.endswith(".npy"))
            np.save(local, np.arange(3))
        with storage.local_input(path) as local:
            np.testing.assert_array_equal(np.load(local), np.arange(3))
            staged = local
        self.assertEqual(os.path.exists(staged), kind == "local")
        self.assertEqual(storage.listdir(root), ["c.npy"])

    def test_paths(self):
        self.assertTrue(storage.is_local("/a/b"))
        self.assertTrue(storage.is_local("file:///a/b"))
        self.assertFalse(storage.is_local("gs://bucket/a"))
        self.assertEqual(storage.join("gs://bucket", "a", "b"), "gs://bucket/a/b")
        self.assertEqual(storage.dirname("gs://bucket/a/b"), "gs://bucket/a")


class WorkdirHelpersTest(parameterized.TestCase):
    """The helpers avlad_tf's call sites use (docs/STORAGE.md)."""

    def _directory(self, kind):
        return self.create_tempdir().full_path if kind == "local" else _ram_dir()

    def test_absolute_paths_and_extensions(self):
        self.assertEqual(storage.absolute("gs://b/data"), "gs://b/data")
        self.assertEqual(storage.absolute("data"), os.path.abspath("data"))
        self.assertEqual(storage.extensions("gs://b/rgb.weights.h5"), ".weights.h5")
        self.assertEqual(storage.extensions("a.b/video"), "")
        self.assertEqual(storage.extensions("x/.hidden"), "")

    @parameterized.parameters("local", "ram")
    def test_write_text_walk_and_isfile(self, kind):
        root = self._directory(kind)
        path = storage.join(root, "a", "b", "c.txt")
        storage.make_parent(path)
        storage.write_text(path, "é\n")
        self.assertEqual(storage.read_text(path), "é\n")
        self.assertTrue(storage.isfile(path))
        self.assertFalse(storage.isfile(storage.dirname(path)))
        walked = [
            (folder[len(root) :], subfolders, files)
            for folder, subfolders, files in storage.walk(root)
        ]
        self.assertEqual(
            walked, [("", ["a"], []), ("/a", ["b"], []), ("/a/b", [], ["c.txt"])]
        )

    @parameterized.parameters("local", "ram")
    def test_replacing_directory_swaps_whole_and_keeps_it_on_error(self, kind):
        root = self._directory(kind)
        path = storage.join(root, "export")
        for version in ("1", "2"):
            with storage.replacing_directory(path) as tmp:
                storage.makedirs(storage.join(tmp, "variables"))
                storage.write_text(storage.join(tmp, "variables", "v"), version)
                storage.write_text(storage.join(tmp, "saved_model.pb"), version)
        self.assertEqual(storage.listdir(root), ["export"])
        self.assertEqual(storage.read_text(storage.join(path, "variables", "v")), "2")
        with self.assertRaisesRegex(RuntimeError, "disk full"):
            with storage.replacing_directory(path) as tmp:
                storage.makedirs(tmp)
                storage.write_text(storage.join(tmp, "saved_model.pb"), "3")
                raise RuntimeError("disk full")
        self.assertEqual(storage.listdir(root), ["export"])
        self.assertEqual(storage.read_text(storage.join(path, "saved_model.pb")), "2")

    def test_rmtree_leaves_a_ram_sibling_whose_name_begins_alike(self):
        root = _ram_dir()
        for name in ("run", "run2"):
            storage.makedirs(storage.join(root, name))
            storage.write_text(storage.join(root, name, "a"), name)
        storage.rmtree(storage.join(root, "run"))
        self.assertEqual(storage.read_text(storage.join(root, "run2", "a")), "run2")
        self.assertEqual(storage.glob(storage.join(root, "run", "*")), [])


if __name__ == "__main__":
    absltest.main()
