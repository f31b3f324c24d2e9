"""Tests of the ActionVLAD layer against a loop-based NumPy transcription."""

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np

from avlad_tf.layers import netvlad
from tests import testing
from tests.layers import vlad_checks


def built_layer(depth=4, num_clusters=3, **kwargs):
    layer = netvlad.NetVLAD(num_clusters=num_clusters, **kwargs)
    layer.build((None, None, None, None, depth))
    return layer


class NetVLADTest(testing.TestCase):
    def test_matches_numpy_reference(self):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(2, 3, 2, 2, 4)).astype(np.float32)
        layer = built_layer(alpha=2.0)
        layer.set_centers(rng.normal(size=(3, 4)).astype(np.float32))
        # Decouple assignment from centres, as after training.
        layer.assignment_kernel.assign(rng.normal(size=(4, 3)))
        layer.assignment_bias.assign(rng.normal(size=(3,)))
        expected = vlad_checks.numpy_vlad(
            x,
            *(
                keras.ops.convert_to_numpy(w)
                for w in (layer.assignment_kernel, layer.assignment_bias, layer.centers)
            ),
        )
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(layer(x)), expected, atol=1e-5
        )

    def test_kmeans_centres_set_assignment_parameters(self):
        centers = np.random.default_rng(1).normal(size=(3, 4))
        layer = built_layer(alpha=1000.0)
        layer.set_centers(centers.astype(np.float32))
        np.testing.assert_allclose(
            layer.assignment_kernel.numpy(), 2000.0 * centers.T, rtol=1e-6
        )
        np.testing.assert_allclose(
            layer.assignment_bias.numpy(),
            -1000.0 * np.sum(centers**2, axis=1),
            rtol=1e-6,
        )
        np.testing.assert_allclose(layer.centers.numpy(), centers, rtol=1e-6)

    def test_initial_assignment_is_softmax_of_distances(self):
        layer = built_layer(alpha=3.0)
        centers = keras.ops.convert_to_numpy(layer.centers)
        x = np.random.default_rng(2).normal(size=(1, 1, 1, 2, 4))
        unit = x / np.linalg.norm(x, axis=-1, keepdims=True)
        distances = np.sum((unit[..., None, :] - centers) ** 2, axis=-1)
        expected = np.exp(-3.0 * distances)
        expected /= expected.sum(axis=-1, keepdims=True)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(layer.assignments(x)), expected, atol=1e-5
        )

    def test_unit_norms(self):
        x = np.random.default_rng(3).normal(size=(2, 2, 3, 3, 4))
        layer = built_layer()
        out = keras.ops.convert_to_numpy(layer(x))
        np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, atol=1e-5)
        # Before the global norm every cluster block had unit norm, so each
        # block now has norm 1 / sqrt(K).
        blocks = out.reshape(2, 3, 4)
        np.testing.assert_allclose(
            np.linalg.norm(blocks, axis=-1), 1.0 / np.sqrt(3.0), atol=1e-5
        )

    def test_one_cluster_with_zero_centre_is_normalised_sum(self):
        x = np.random.default_rng(4).normal(size=(2, 3, 2, 2, 4))
        layer = built_layer(num_clusters=1)
        layer.set_centers(np.zeros((1, 4), np.float32))
        unit = x / np.linalg.norm(x, axis=-1, keepdims=True)
        total = unit.sum(axis=(1, 2, 3))
        expected = total / np.linalg.norm(total, axis=-1, keepdims=True)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(layer(x)), expected, atol=1e-5
        )

    def test_one_cluster_assignment_gradients_are_zero_not_missing(self):
        import tensorflow as tf

        layer = built_layer(num_clusters=1)
        x = tf.random.normal((1, 2, 2, 2, 4), seed=0)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x) * tf.range(4, dtype=tf.float32))
        grads = dict(
            zip(
                (w.path.split("/")[-1] for w in layer.weights),
                tape.gradient(loss, layer.weights),
            )
        )
        # Training stage 2 clips every gradient: None would break it.
        for name in ("assignment_kernel", "assignment_bias"):
            self.assertIsNotNone(grads[name], name)
            np.testing.assert_array_equal(grads[name].numpy(), 0.0)

    def test_zero_input_gives_finite_output_and_gradients(self):
        vlad_checks.assert_finite_at_zero_input(self, built_layer())

    def test_assignment_maps_shape_and_sum(self):
        layer = netvlad.NetVLAD(num_clusters=5)
        x = np.random.default_rng(5).normal(size=(2, 3, 4, 4, 6))
        vlad, assignments = layer(x, return_assignments=True)
        self.assertEqual(tuple(vlad.shape), (2, 30))
        self.assertEqual(tuple(assignments.shape), (2, 3, 4, 4, 5))
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(assignments).sum(-1), 1.0, atol=1e-5
        )

    def test_build_creates_three_trainable_weights(self):
        layer = built_layer(depth=6, num_clusters=5)
        shapes = {
            w.path.split("/")[-1]: tuple(w.shape) for w in layer.trainable_weights
        }
        self.assertEqual(
            shapes,
            {"centers": (5, 6), "assignment_kernel": (6, 5), "assignment_bias": (5,)},
        )

    def test_symbolic_and_eager_calls(self):
        self.assert_symbolic_call(
            netvlad.NetVLAD(num_clusters=4), (None, 25, 7, 7, 8), (None, 32)
        )
        out = netvlad.NetVLAD(num_clusters=4)(np.ones((3, 2, 1, 1, 8)))
        self.assertEqual(tuple(out.shape), (3, 32))

    def test_serialization_round_trip(self):
        layer = netvlad.NetVLAD(
            num_clusters=7, alpha=12.5, name="vlad", trainable=False
        )
        self.assert_serialization_round_trip(layer)
        config = layer.get_config()
        self.assertEqual(
            (config["num_clusters"], config["alpha"], config["trainable"]),
            (7, 12.5, False),
        )

    def test_keras_file_round_trip(self):
        vlad_checks.assert_keras_file_round_trip(self, netvlad.NetVLAD(num_clusters=3))

    @parameterized.parameters(True, False)
    def test_fit_step(self, jit_compile):
        model = vlad_checks.fit_step(
            self, lambda: netvlad.NetVLAD(num_clusters=3), jit_compile
        )
        self.assertEqual(model.layers[1].centers.shape, (3, 4))

    def test_computes_in_float32_under_mixed_precision(self):
        vlad_checks.assert_computes_in_float32(
            self, lambda: netvlad.NetVLAD(num_clusters=3)
        )


class NetVLADErrorTest(testing.TestCase):
    @parameterized.parameters(0, -3, 2.5, True)
    def test_bad_num_clusters(self, value):
        with self.assertRaisesRegex(ValueError, "num_clusters must be a positive int"):
            netvlad.NetVLAD(num_clusters=value)

    def test_bad_alpha(self):
        with self.assertRaisesRegex(ValueError, "alpha must be a positive"):
            netvlad.NetVLAD(alpha=0.0)

    def test_wrong_rank(self):
        with self.assertRaisesRegex(ValueError, r"rank 5.*\(2, 7, 7, 512\)"):
            netvlad.NetVLAD().build((2, 7, 7, 512))

    def test_unknown_channels(self):
        with self.assertRaisesRegex(ValueError, "known channel dimension.*None"):
            netvlad.NetVLAD().build((2, 25, 7, 7, None))

    def test_centres_of_wrong_shape(self):
        layer = built_layer(depth=4, num_clusters=3)
        with self.assertRaisesRegex(
            ValueError, r"shape \(3, 4\).*Received: centers.shape=\(4, 3\)"
        ):
            layer.set_centers(np.zeros((4, 3), np.float32))

    def test_centres_before_build(self):
        with self.assertRaisesRegex(ValueError, "needs a built layer"):
            netvlad.NetVLAD().set_centers(np.zeros((64, 4)))


if __name__ == "__main__":
    absltest.main()
