"""Tests of k-means initialisation and the safe centre loader."""

import os
import pickle

from absl.testing import absltest
import numpy as np

from avlad_tf import kmeans


def blobs(seed=0, num_per_cluster=50):
    """Three well-separated clusters of directions in 4-D."""
    rng = np.random.default_rng(seed)
    directions = np.eye(4)[:3] * 5.0
    points = [d + rng.normal(scale=0.05, size=(num_per_cluster, 4)) for d in directions]
    return np.concatenate(points).astype(np.float32), directions


class FitCentersTest(absltest.TestCase):
    def test_recovers_normalised_cluster_means(self):
        x, directions = blobs()
        centers = kmeans.fit_centers(x, num_clusters=3, num_init=2)
        unit = directions / np.linalg.norm(directions, axis=1, keepdims=True)
        # Each true direction has exactly one centre within 0.05.
        distances = np.linalg.norm(centers[:, None] - unit[None], axis=-1)
        np.testing.assert_array_less(distances.min(axis=0), 0.05)
        self.assertEqual(sorted(distances.argmin(axis=0)), [0, 1, 2])

    def test_normalises_descriptors_not_centres(self):
        x, _ = blobs(num_per_cluster=20)
        centers = kmeans.fit_centers(x, num_clusters=3, num_init=1)
        # Means of unit vectors are slightly shorter than unit length.
        norms = np.linalg.norm(centers, axis=1)
        self.assertTrue(np.all(norms < 1.0) and np.all(norms > 0.99))

    def test_fixed_seed_is_reproducible(self):
        x = np.random.default_rng(1).normal(size=(300, 8))
        first = kmeans.fit_centers(x, num_clusters=5, num_init=2, seed=3)
        second = kmeans.fit_centers(x, num_clusters=5, num_init=2, seed=3)
        np.testing.assert_array_equal(first, second)

    def test_too_few_descriptors(self):
        with self.assertRaisesRegex(ValueError, "at least 64 rows"):
            kmeans.fit_centers(np.zeros((10, 4)), num_clusters=64)


class CentersFileTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        self.dir = self.create_tempdir().full_path

    def test_round_trip(self):
        path = os.path.join(self.dir, "centers.npy")
        centers = np.random.default_rng(0).normal(size=(3, 4))
        kmeans.save_centers(path, centers)
        loaded = kmeans.load_centers(path, num_clusters=3, depth=4)
        self.assertEqual(loaded.dtype, np.float32)
        np.testing.assert_allclose(loaded, centers, rtol=1e-6)

    def test_refuses_pickle(self):
        path = os.path.join(self.dir, "centers.pkl")
        with open(path, "wb") as f:
            pickle.dump({"cluster_centers_": np.zeros((3, 4))}, f)
        with self.assertRaisesRegex(ValueError, "pickles and object arrays"):
            kmeans.load_centers(path)

    def test_refuses_object_array(self):
        path = os.path.join(self.dir, "objects.npy")
        np.save(path, np.array([None, 1], dtype=object), allow_pickle=True)
        with self.assertRaisesRegex(ValueError, "objects.npy.*refused"):
            kmeans.load_centers(path)

    def test_wrong_shape(self):
        path = os.path.join(self.dir, "centers.npy")
        kmeans.save_centers(path, np.zeros((3, 4)))
        with self.assertRaisesRegex(ValueError, r"shape \(64, 4\).*shape=\(3, 4\)"):
            kmeans.load_centers(path, num_clusters=64)

    def test_non_finite(self):
        path = os.path.join(self.dir, "centers.npy")
        kmeans.save_centers(path, np.full((3, 4), np.nan))
        with self.assertRaisesRegex(ValueError, "NaN or inf"):
            kmeans.load_centers(path)


if __name__ == "__main__":
    absltest.main()
