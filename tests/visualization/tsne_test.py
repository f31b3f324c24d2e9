"""Tests of the NumPy t-SNE."""

from absl.testing import absltest
import numpy as np

from avlad_tf.visualization import tsne


class TsneTest(absltest.TestCase):
    def test_conditional_probabilities_reach_the_perplexity(self):
        x = np.random.default_rng(0).normal(size=(60, 5))
        p = tsne.conditional_probabilities(x, perplexity=10.0)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
        np.testing.assert_array_equal(np.diag(p), 0.0)
        entropy = -np.sum(
            np.where(p > 0, p * np.log(np.maximum(p, 1e-300)), 0.0), axis=1
        )
        np.testing.assert_allclose(np.exp(entropy), 10.0, rtol=1e-3)

    def test_separates_clusters_and_keeps_neighbours(self):
        rng = np.random.default_rng(1)
        centres = rng.normal(scale=10.0, size=(3, 20))
        labels = np.repeat(np.arange(3), 30)
        x = centres[labels] + rng.normal(size=(90, 20))
        y = tsne.tsne(x, perplexity=15.0, num_iters=1000)
        self.assertEqual(y.shape, (90, 2))
        distances = np.sum((y[:, None] - y[None]) ** 2, axis=-1)
        np.fill_diagonal(distances, np.inf)
        nearest = np.argmin(distances, axis=1)
        self.assertEqual(np.mean(labels[nearest] == labels), 1.0)
        # Optimising must beat a random layout of the same points.
        random_y = rng.normal(size=y.shape)
        self.assertLess(
            tsne.kl_divergence(x, y, perplexity=15.0),
            0.5 * tsne.kl_divergence(x, random_y, perplexity=15.0),
        )

    def test_is_deterministic_for_a_seed(self):
        x = np.random.default_rng(2).normal(size=(20, 4))
        np.testing.assert_array_equal(
            tsne.tsne(x, num_iters=50, seed=3), tsne.tsne(x, num_iters=50, seed=3)
        )

    def test_rejects_bad_input(self):
        with self.assertRaisesRegex(ValueError, "N >= 2"):
            tsne.tsne(np.zeros((1, 3)))
        with self.assertRaisesRegex(ValueError, "non-finite"):
            tsne.tsne(np.array([[0.0, np.nan], [1.0, 2.0]]))


if __name__ == "__main__":
    absltest.main()
