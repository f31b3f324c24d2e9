"""Tests for the restricted k-means pickle reader and its command."""

import os
import pickle
import shutil
import sys
import tempfile
import types

from absl.testing import absltest
import numpy as np

from avlad_tf import convert_kmeans_pickle
from avlad_tf import kmeans
from avlad_tf.release import kmeans_pickle

_SKLEARN_MODULES = ("sklearn", "sklearn.cluster", "sklearn.cluster.k_means_")


def _write_python3_pickle(path, centers):
    """Pickles (protocol 0) a stub whose class is named like sklearn's KMeans.

    The fake `sklearn.cluster.k_means_` module only exists while pickling, so
    the reader must resolve the class without scikit-learn.
    """
    saved = {name: sys.modules.get(name) for name in _SKLEARN_MODULES}
    module = types.ModuleType("sklearn.cluster.k_means_")

    class KMeans:  # pylint: disable=too-few-public-methods
        pass

    KMeans.__module__ = module.__name__
    KMeans.__qualname__ = "KMeans"
    module.KMeans = KMeans
    sys.modules.update(
        {
            "sklearn": types.ModuleType("sklearn"),
            "sklearn.cluster": types.ModuleType("sklearn.cluster"),
            "sklearn.cluster.k_means_": module,
        }
    )
    try:
        obj = KMeans()
        obj.__dict__.update(
            {
                "n_clusters": len(centers),
                "init": "k-means++",
                "n_init": 10,
                "random_state": None,
                "cluster_centers_": centers,
                "labels_": np.arange(5, dtype=np.int32),
                "inertia_": np.float64(12.5),
                "n_iter_": 7,
            }
        )
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=0)
    finally:
        for name, value in saved.items():
            if value is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = value


def _py2_string(raw):
    """A Python 2 protocol-0 STRING literal for `raw` bytes (repr escaping)."""
    chars = (
        chr(b) if 32 <= b < 127 and b not in b"'\\" else "\\x%02x" % b for b in raw
    )
    return "S'" + "".join(chars) + "'\n"


def _write_python2_pickle(path, centers):
    """Writes the opcodes Python 2 cPickle (protocol 0) emits for a KMeans."""
    centers = np.ascontiguousarray(centers, dtype="<f8")
    rows, cols = centers.shape
    text = (
        "ccopy_reg\n_reconstructor\n(csklearn.cluster.k_means_\nKMeans\n"
        "c__builtin__\nobject\nNtR(dS'n_clusters'\nI%d\ns"
        % rows
        + "S'init'\nS'k-means++'\nsS'cluster_centers_'\n"
        "cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(I0\ntS'b'\n"
        "tR(I1\n(I%d\nI%d\ntcnumpy\ndtype\n(S'f8'\nI0\nI1\ntR"
        % (rows, cols)
        + "(I3\nS'<'\nNNNI-1\nI-1\nI0\ntbI00\n"
        + _py2_string(centers.tobytes())
        + "tbsS'inertia_'\n"
        "cnumpy.core.multiarray\nscalar\n(cnumpy\ndtype\n(S'f8'\nI0\nI1\ntR"
        "(I3\nS'<'\nNNNI-1\nI-1\nI0\ntb"
        + _py2_string(np.float64(3.25).tobytes())
        + "tRsb."
    )
    with open(path, "wb") as f:
        f.write(text.encode("latin1"))


class KMeansPickleTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        # Not create_tempdir: absl flags are unparsed under pytest.
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        rng = np.random.default_rng(0)
        # Include bytes that need escaping in a Python 2 string literal.
        self.centers = rng.normal(size=(4, 6))
        self.centers[0, 0] = np.frombuffer(b"'\\\n\x00\xff'\\\n", "<f8")[0]

    def test_python3_protocol0_pickle(self):
        path = os.path.join(self.dir, "kmeans.pkl")
        _write_python3_pickle(path, self.centers)
        self.assertNotIn("sklearn.cluster.k_means_", sys.modules)
        centers = kmeans_pickle.load_kmeans_centers(path)
        self.assertEqual(centers.dtype, np.float32)
        np.testing.assert_array_equal(centers, self.centers.astype(np.float32))

    def test_python2_cpickle_bytes(self):
        path = os.path.join(self.dir, "py2.pkl")
        _write_python2_pickle(path, self.centers)
        centers = kmeans_pickle.load_kmeans_centers(path)
        np.testing.assert_array_equal(centers, self.centers.astype(np.float32))

    def test_command_writes_npy_and_warns(self):
        in_path = os.path.join(self.dir, "kmeans.pkl")
        out_path = os.path.join(self.dir, "out", "centers.npy")
        _write_python3_pickle(in_path, self.centers)
        with tempfile.TemporaryFile("w+") as err:
            saved, sys.stderr = sys.stderr, err
            try:
                convert_kmeans_pickle.main(["prog", in_path, out_path])
            finally:
                sys.stderr = saved
            err.seek(0)
            self.assertRegex(err.read(), r"WARNING: .*pickle.*only on the")
        np.testing.assert_array_equal(
            kmeans.load_centers(out_path, num_clusters=4, depth=6),
            self.centers.astype(np.float32),
        )

    def test_command_usage(self):
        with self.assertRaisesRegex(Exception, "IN.pkl OUT.npy"):
            convert_kmeans_pickle.main(["prog", "only_one.pkl"])

    def test_refuses_os_system(self):
        marker = os.path.join(self.dir, "pwned")

        class Evil:
            def __reduce__(self):
                return (os.system, (f"touch {marker}",))

        path = os.path.join(self.dir, "evil.pkl")
        with open(path, "wb") as f:
            pickle.dump(Evil(), f, protocol=0)
        with self.assertRaisesRegex(
            kmeans_pickle.UnsafePickleError,
            r"evil.pkl: refusing to load global "
            r"(posix|os|nt)\.system",
        ):
            kmeans_pickle.load_kmeans_centers(path)
        self.assertFalse(os.path.exists(marker))

    def test_refuses_reconstructing_other_classes(self):
        # Allowed helper, forbidden target: _reconstructor(ndarray, object, None).
        path = os.path.join(self.dir, "other.pkl")
        with open(path, "wb") as f:
            f.write(
                b"ccopy_reg\n_reconstructor\n(cnumpy\nndarray\n"
                b"c__builtin__\nobject\nNtR."
            )
        with self.assertRaisesRegex(
            kmeans_pickle.UnsafePickleError, "refusing to reconstruct"
        ):
            kmeans_pickle.load_kmeans_centers(path)

    def test_refuses_non_latin1_codec(self):
        path = os.path.join(self.dir, "codec.pkl")
        with open(path, "wb") as f:
            f.write(b"c_codecs\nencode\n(Vx\nVrot13\ntR.")
        with self.assertRaisesRegex(kmeans_pickle.UnsafePickleError, "rot13"):
            kmeans_pickle.load_kmeans_centers(path)

    def test_rejects_pickle_without_kmeans(self):
        path = os.path.join(self.dir, "array.pkl")
        with open(path, "wb") as f:
            pickle.dump(np.zeros((2, 2)), f, protocol=0)
        with self.assertRaisesRegex(ValueError, "expected a pickled scikit"):
            kmeans_pickle.load_kmeans_centers(path)


if __name__ == "__main__":
    absltest.main()
