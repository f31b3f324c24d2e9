"""k-means initialisation: frame sampling, centre file reuse, NetVLAD set-up."""

import os

from absl.testing import absltest
import keras
import numpy as np

from avlad_tf import kmeans
from avlad_tf import layers
from avlad_tf.training import kmeans_init

NUM_VIDEOS = 3


def dataset_fn(pass_seed):
    """One pass: 3 videos, each one 'frame' of 2x2 positions x 2 channels
    whose value is 10 * pass + video, so kept frames can be identified."""
    batch = np.stack(
        [
            np.full((1, 2, 2, 2), 10 * pass_seed + v, np.float32)
            for v in range(NUM_VIDEOS)
        ]
    )  # (B, 1, h, w, D)
    return [({"rgb": batch[:2]}, None), ({"rgb": batch[2:]}, None)]


def netvlad_model(num_clusters=4, depth=2):
    inputs = keras.Input((None, 2, 2, depth), name="rgb")
    pooled = layers.NetVLAD(num_clusters=num_clusters, name="netvlad")(inputs)
    return keras.Model({"rgb": inputs}, keras.layers.Dense(3, name="logits")(pooled))


class CollectDescriptorsTest(absltest.TestCase):
    def test_whole_passes_then_a_uniform_subset(self):
        descriptors = kmeans_init.collect_descriptors(
            feature_fn=lambda f: f["rgb"],
            dataset_fn=dataset_fn,
            num_random_frames=5,
            seed=0,
        )
        self.assertEqual(descriptors.shape, (5 * 4, 2))
        frames = descriptors.reshape(5, 4, 2)[:, 0, 0]
        # Two passes (6 visits) were needed; 5 distinct visits were kept.
        self.assertLen(set(frames), 5)
        self.assertTrue(set(frames) <= {0, 1, 2, 10, 11, 12})
        again = kmeans_init.collect_descriptors(
            feature_fn=lambda f: f["rgb"],
            dataset_fn=dataset_fn,
            num_random_frames=5,
            seed=0,
        )
        np.testing.assert_array_equal(descriptors, again)

    def test_empty_split_raises(self):
        with self.assertRaisesRegex(ValueError, "no frames"):
            kmeans_init.collect_descriptors(
                feature_fn=lambda f: f,
                dataset_fn=lambda seed: [],
                num_random_frames=2,
                seed=0,
            )


class InitCentersTest(absltest.TestCase):
    def test_computes_saves_and_reuses(self):
        directory = self.create_tempdir().full_path
        model = netvlad_model()
        rng = np.random.default_rng(0)

        def random_dataset(pass_seed):
            del pass_seed
            return [
                ({"rgb": rng.normal(size=(4, 1, 2, 2, 2)).astype(np.float32)}, None)
            ]

        centers = kmeans_init.init_centers(
            model=model,
            directory=directory,
            feature_fn=lambda f: f["rgb"],
            dataset_fn=random_dataset,
            num_random_frames=8,
            num_init=1,
        )
        path = os.path.join(directory, kmeans_init.CENTERS_FILE)
        np.testing.assert_array_equal(kmeans.load_centers(path), centers)
        vlad = model.get_layer("netvlad")
        np.testing.assert_array_equal(vlad.centers.numpy(), centers)
        # Descriptors were L2-normalised before clustering.
        self.assertLess(np.abs(np.linalg.norm(centers, axis=1)).max(), 1.0001)

        def must_not_run(pass_seed):
            raise AssertionError("centres should have been reused")

        other = netvlad_model()
        reused = kmeans_init.init_centers(
            model=other,
            directory=directory,
            feature_fn=lambda f: f["rgb"],
            dataset_fn=must_not_run,
        )
        np.testing.assert_array_equal(reused, centers)
        np.testing.assert_array_equal(
            other.get_layer("netvlad").centers.numpy(), centers
        )

    def test_model_without_netvlad_is_left_alone(self):
        inputs = keras.Input((None, 2, 2, 2), name="rgb")
        model = keras.Model(
            {"rgb": inputs},
            layers.SpatioTemporalAveragePooling(name="avg_pool")(inputs),
        )
        self.assertIsNone(
            kmeans_init.init_centers(
                model=model,
                directory=self.create_tempdir().full_path,
                feature_fn=None,
                dataset_fn=None,
            )
        )


if __name__ == "__main__":
    absltest.main()
