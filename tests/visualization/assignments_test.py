"""Tests of receptive-field mapping, assignment images and contributions."""

import os

from absl.testing import absltest
from matplotlib import image as mpimg
import numpy as np

from avlad_tf.visualization import assignments
from avlad_tf.visualization import figures
from avlad_tf.visualization import plotting


def one_hot_assignments(words, num_clusters):
    """`[..., h, w]` int words -> `[..., h, w, K]` soft assignments."""
    return np.eye(num_clusters)[words] * 0.9 + 0.1 / num_clusters


class AssignmentsTest(absltest.TestCase):
    def test_receptive_field_centres_of_vgg_conv5(self):
        ys, xs = assignments.receptive_field_centers(
            grid_size=(14, 14), image_size=(224, 224)
        )
        # Stride 16: cell i covers pixels 16i .. 16i + 15.
        np.testing.assert_allclose(ys[:3], [7.5, 23.5, 39.5])
        np.testing.assert_allclose(xs[-1], 223 - 7.5)

    def test_tinted_assignment_frames_tint_the_cells_of_chosen_words(self):
        frames = np.zeros((1, 8, 8, 3), np.float32) - plotting.BGR_MEAN
        words = np.array([[[0, 1], [2, 0]]])  # [1, 2, 2]
        images = assignments.tinted_assignment_frames(
            frames, one_hot_assignments(words, 3), clusters=[1], opacity=1.0
        )
        self.assertEqual(images.shape, (1, 8, 8, 3))
        self.assertEqual(images.dtype, np.uint8)
        colors = plotting.cluster_colors(3)
        # Word 1 owns the top-right 4x4 pixels; the rest stay black.
        np.testing.assert_array_equal(
            images[0, :4, 4:], np.broadcast_to(colors[1], (4, 4, 3))
        )
        self.assertEqual(images[0, :4, :4].max(), 0)
        self.assertEqual(images[0, 4:].max(), 0)
        all_words = assignments.tinted_assignment_frames(
            frames, one_hot_assignments(words, 3), opacity=1.0
        )
        np.testing.assert_array_equal(all_words[0, 7, 0], colors[2])
        with self.assertRaisesRegex(ValueError, "assignments"):
            assignments.tinted_assignment_frames(frames, words)

    def test_flow_frames_are_displayable(self):
        flow = np.zeros((2, 4, 4, 20), np.float32)
        flow[..., 10] = 30.0  # the middle pair (x6) moves
        shown = plotting.displayable_frames(flow)
        self.assertEqual(shown.shape, (2, 4, 4, 3))
        self.assertGreater(shown.min(), 0)

    def test_contributions_sum_to_the_class_score(self):
        rng = np.random.default_rng(0)
        descriptor, kernel = rng.normal(size=12), rng.normal(size=(12, 5))
        contributions = assignments.cluster_contributions(
            descriptor, kernel, class_index=3, num_clusters=4
        )
        self.assertAlmostEqual(contributions.sum(), descriptor @ kernel[:, 3])
        # Cluster-major layout: cluster 1 owns descriptor entries 3..5.
        self.assertAlmostEqual(contributions[1], descriptor[3:6] @ kernel[3:6, 3])
        with self.assertRaisesRegex(ValueError, "does not match"):
            assignments.cluster_contributions(
                descriptor, kernel[:8], class_index=0, num_clusters=4
            )

    def test_best_frames_and_figures(self):
        rng = np.random.default_rng(1)
        words = rng.integers(0, 3, size=(3, 4, 2, 2))  # [V, T, h, w]
        words[1, 2] = 2  # video 1, frame 2 is all word 2
        soft = one_hot_assignments(words, 3)
        best, counts = assignments.best_frames(soft, 2)
        self.assertEqual((best[1], counts[1]), (2, 4))
        frames = rng.integers(0, 255, size=(3, 4, 16, 16, 3), dtype=np.uint8)
        tmp = self.create_tempdir().full_path
        path = figures.plot_action_words(
            frames,
            soft,
            ["a", "b", "c"],
            [2, 0],
            os.path.join(tmp, "w.png"),
            num_examples=2,
            width_px=400,
        )
        self.assertEqual(mpimg.imread(path).shape[:2], (420, 400))
        path = figures.plot_top_words(
            frames[0],
            soft[0],
            np.array([0.1, -0.2, 0.3]),
            os.path.join(tmp, "t.png"),
            top=2,
            width_px=300,
            height_px=200,
        )
        self.assertEqual(mpimg.imread(path).shape[:2], (200, 300))


if __name__ == "__main__":
    absltest.main()
