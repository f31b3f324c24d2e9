"""Cluster-usage counts and assignment-map images for TensorBoard."""

from absl.testing import absltest
import numpy as np

from avlad_tf.training import summaries


class SummariesTest(absltest.TestCase):
    def test_cluster_usage_counts_argmax_assignments(self):
        assignments = np.zeros((2, 3, 2, 2, 4), np.float32)  # (B, T, H, W, K)
        assignments[..., 1] = 0.6
        assignments[0, 0, 0, 0] = [0.1, 0.2, 0.3, 0.9]
        usage = summaries.cluster_usage(assignments)
        np.testing.assert_array_equal(usage, [0, 23, 0, 1])

    def test_assignment_map_images(self):
        assignments = np.zeros((2, 5, 2, 3, 4), np.float32)
        assignments[0, :, :, :, 2] = 1.0
        assignments[0, 0, 1, 2] = [0, 0, 0, 1]
        images = summaries.assignment_map_images(assignments, max_frames=4, scale=2)
        self.assertEqual(images.shape, (4, 4, 6, 3))
        self.assertEqual(images.dtype, np.uint8)
        # The one pixel assigned to cluster 3 differs in colour from the rest.
        self.assertFalse(np.array_equal(images[0, 2, 4], images[0, 0, 0]))
        np.testing.assert_array_equal(images[0, 3, 5], images[0, 2, 4])
        np.testing.assert_array_equal(images[1, 3, 5], images[0, 0, 0])


if __name__ == "__main__":
    absltest.main()
