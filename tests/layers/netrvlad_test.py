"""Tests of NetRVLAD against NumPy references and against NetVLAD's sums."""

import functools

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np
import pytest

from avlad_tf.layers import netrvlad
from avlad_tf.layers import netvlad
from tests import testing
from tests.layers import vlad_checks
from tests.layers.vlad_checks import TOLERANCE
from tests.layers.vlad_checks import numpy_of

DEPTH = 4
NUM_FRAMES = 11
# (B, T, 2, 3, D) features; frame 2 is all zero (a black frame).
make_video = functools.partial(
    vlad_checks.make_video, num_frames=NUM_FRAMES, zero_frames=(2,)
)


def built_layer(depth=DEPTH, num_clusters=3, seed=10, **kwargs):
    """A built layer with a soft, random assignment, as after training."""
    layer = netrvlad.NetRVLAD(num_clusters=num_clusters, **kwargs)
    layer.build((None, None, None, None, depth))
    rng = np.random.default_rng(seed)
    layer.assignment_kernel.assign(rng.normal(size=(depth, num_clusters)))
    layer.assignment_bias.assign(rng.normal(size=(num_clusters,)))
    return layer


class NetRVLADTest(testing.TestCase):
    def test_matches_numpy_reference(self):
        x = np.random.default_rng(0).normal(size=(2, 3, 2, 2, 4)).astype(np.float32)
        layer = built_layer()
        expected = vlad_checks.numpy_vlad(
            x, numpy_of(layer.assignment_kernel), numpy_of(layer.assignment_bias)
        )
        np.testing.assert_allclose(numpy_of(layer(x)), expected, atol=1e-5)

    def test_is_assignment_weighted_sum_of_descriptors(self):
        x = make_video()
        layer = built_layer()
        vlad, maps = layer(x, return_assignments=True)
        unit = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-6)
        # No residual: sum_n a_k x_n, then intra- and global normalisation.
        sums = np.einsum("bthwk,bthwd->bkd", numpy_of(maps), unit)
        sums /= np.linalg.norm(sums, axis=-1, keepdims=True)
        expected = sums.reshape(2, -1) / np.sqrt(3.0)
        np.testing.assert_allclose(numpy_of(vlad), expected, atol=1e-5)

    def test_one_cluster_is_normalised_sum(self):
        x = np.random.default_rng(4).normal(size=(2, 3, 2, 2, 4))
        layer = built_layer(num_clusters=1)
        unit = x / np.linalg.norm(x, axis=-1, keepdims=True)
        total = unit.sum(axis=(1, 2, 3))
        expected = total / np.linalg.norm(total, axis=-1, keepdims=True)
        np.testing.assert_allclose(numpy_of(layer(x)), expected, atol=1e-5)

    def test_sums_equal_netvlads_weighted_sums(self):
        # The same assignment weights give NetVLAD's sum of a·x, its S1.
        layer, video = built_layer(), make_video()
        reference = netvlad.NetVLAD(num_clusters=3)
        reference.build((None, None, None, None, DEPTH))
        reference.assignment_kernel.assign(layer.assignment_kernel)
        reference.assignment_bias.assign(layer.assignment_bias)
        ours = layer.update(layer.initial_state(2), video)["s1"]
        theirs = reference.update(reference.initial_state(2), video)["s1"]
        np.testing.assert_allclose(numpy_of(ours), numpy_of(theirs), **TOLERANCE)

    def test_assignment_starts_as_netvlads(self):
        # Same initializer and seed: the same draw of centres, hence the same
        # assignment weights and maps as NetVLAD.
        x = make_video()
        layer = netrvlad.NetRVLAD(
            num_clusters=3,
            alpha=3.0,
            centers_initializer=keras.initializers.RandomNormal(seed=5),
        )
        reference = netvlad.NetVLAD(
            num_clusters=3,
            alpha=3.0,
            centers_initializer=keras.initializers.RandomNormal(seed=5),
        )
        reference.build(x.shape)  # NetVLAD.assignments needs a built layer
        np.testing.assert_allclose(
            numpy_of(layer.assignments(x)), numpy_of(reference.assignments(x))
        )

    def test_kmeans_centres_set_assignment_parameters(self):
        centers = np.random.default_rng(1).normal(size=(3, 4))
        layer = built_layer(alpha=1000.0)
        layer.set_centers(centers.astype(np.float32))
        np.testing.assert_allclose(
            numpy_of(layer.assignment_kernel), 2000.0 * centers.T, rtol=1e-6
        )
        np.testing.assert_allclose(
            numpy_of(layer.assignment_bias),
            -1000.0 * np.sum(centers**2, axis=1),
            rtol=1e-6,
        )

    def test_assignment_after_set_centers_is_softmax_of_distances(self):
        centers = np.random.default_rng(2).normal(size=(3, 4)).astype(np.float32)
        layer = built_layer(alpha=3.0)
        layer.set_centers(centers)
        x = np.random.default_rng(3).normal(size=(1, 1, 1, 2, 4))
        unit = x / np.linalg.norm(x, axis=-1, keepdims=True)
        distances = np.sum((unit[..., None, :] - centers) ** 2, axis=-1)
        expected = np.exp(-3.0 * distances)
        expected /= expected.sum(axis=-1, keepdims=True)
        np.testing.assert_allclose(numpy_of(layer.assignments(x)), expected, atol=1e-5)

    def test_unit_norms(self):
        out = numpy_of(built_layer()(make_video()))
        np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, atol=1e-5)
        blocks = out.reshape(2, 3, DEPTH)
        np.testing.assert_allclose(
            np.linalg.norm(blocks, axis=-1), 1.0 / np.sqrt(3.0), atol=1e-5
        )

    def test_zero_input_gives_finite_output_and_gradients(self):
        vlad_checks.assert_finite_at_zero_input(self, built_layer())

    def test_assignment_maps_shape_and_sum(self):
        layer = netrvlad.NetRVLAD(num_clusters=5)
        x = np.random.default_rng(5).normal(size=(2, 3, 4, 4, 6))
        vlad, assignments = layer(x, return_assignments=True)
        self.assertEqual(tuple(vlad.shape), (2, 30))
        self.assertEqual(tuple(assignments.shape), (2, 3, 4, 4, 5))
        np.testing.assert_allclose(numpy_of(assignments).sum(-1), 1.0, atol=1e-5)

    def test_build_creates_two_trainable_weights(self):
        layer = built_layer(depth=6, num_clusters=5)
        shapes = {
            w.path.split("/")[-1]: tuple(w.shape) for w in layer.trainable_weights
        }
        self.assertEqual(shapes, {"assignment_kernel": (6, 5), "assignment_bias": (5,)})

    def test_symbolic_and_eager_calls(self):
        self.assert_symbolic_call(
            netrvlad.NetRVLAD(num_clusters=4), (None, 25, 7, 7, 8), (None, 32)
        )
        vlad, maps = netrvlad.NetRVLAD(num_clusters=4)(
            keras.KerasTensor((None, 25, 7, 7, 8)), return_assignments=True
        )
        self.assertEqual((vlad.shape, maps.shape), ((None, 32), (None, 25, 7, 7, 4)))
        out = netrvlad.NetRVLAD(num_clusters=4)(np.ones((3, 2, 1, 1, 8)))
        self.assertEqual(tuple(out.shape), (3, 32))

    def test_serialization_round_trip(self):
        layer = netrvlad.NetRVLAD(
            num_clusters=7, alpha=12.5, name="rvlad", trainable=False
        )
        self.assert_serialization_round_trip(layer)
        config = layer.get_config()
        self.assertEqual(
            (config["num_clusters"], config["alpha"], config["trainable"]),
            (7, 12.5, False),
        )

    def test_keras_file_round_trip(self):
        vlad_checks.assert_keras_file_round_trip(
            self, netrvlad.NetRVLAD(num_clusters=3)
        )

    @parameterized.parameters(True, False)
    def test_fit_step(self, jit_compile):
        model = vlad_checks.fit_step(
            self, lambda: netrvlad.NetRVLAD(num_clusters=3), jit_compile
        )
        self.assertEqual(model.layers[1].assignment_kernel.shape, (4, 3))

    def test_computes_in_float32_under_mixed_precision(self):
        vlad_checks.assert_computes_in_float32(
            self, lambda: netrvlad.NetRVLAD(num_clusters=3)
        )


class NetRVLADStreamingTest(testing.TestCase):
    @parameterized.parameters(1, 4, NUM_FRAMES)
    def test_streamed_equals_one_shot(self, chunk_frames):
        vlad_checks.assert_streamed_equals_one_shot(
            built_layer(), make_video(), chunk_frames
        )

    @parameterized.parameters(1, 4, NUM_FRAMES)
    def test_masked_padding_contributes_nothing(self, chunk_frames):
        vlad_checks.assert_masked_padding_contributes_nothing(
            built_layer(), make_video(), chunk_frames, num_real=7
        )

    def test_all_masked_video_pools_to_zeros(self):
        vlad_checks.assert_all_masked_video_pools_to_zeros(built_layer(), make_video())

    def test_state_saved_mid_video_resumes(self):
        vlad_checks.assert_state_saved_mid_video_resumes(
            self, built_layer, make_video(), split=5
        )

    def test_state_is_s1_only_and_not_modified(self):
        layer = built_layer()
        state = layer.initial_state(5)
        self.assertEqual(
            {key: tuple(value.shape) for key, value in state.items()},
            {"s1": (5, 3, DEPTH)},
        )
        layer.update(state, make_video(batch=5))
        np.testing.assert_array_equal(numpy_of(state["s1"]), 0.0)


class NetRVLADErrorTest(testing.TestCase):
    @parameterized.parameters(0, -3, 2.5, True)
    def test_bad_num_clusters(self, value):
        with self.assertRaisesRegex(ValueError, "num_clusters must be a positive int"):
            netrvlad.NetRVLAD(num_clusters=value)

    def test_bad_alpha(self):
        with self.assertRaisesRegex(ValueError, "alpha must be a positive"):
            netrvlad.NetRVLAD(alpha=-1.0)

    def test_wrong_rank(self):
        with self.assertRaisesRegex(ValueError, r"NetRVLAD.*rank 5.*\(2, 7, 7, 512\)"):
            netrvlad.NetRVLAD().build((2, 7, 7, 512))

    def test_unknown_channels(self):
        with self.assertRaisesRegex(ValueError, "known channel dimension.*None"):
            netrvlad.NetRVLAD().build((2, 25, 7, 7, None))

    def test_centres_of_wrong_shape(self):
        with self.assertRaisesRegex(
            ValueError, r"shape \(3, 4\).*Received: centers.shape=\(4, 3\)"
        ):
            built_layer().set_centers(np.zeros((4, 3), np.float32))

    def test_centres_before_build(self):
        with self.assertRaisesRegex(ValueError, "set_centers needs a built layer"):
            netrvlad.NetRVLAD().set_centers(np.zeros((64, 4)))

    def test_unbuilt_streaming(self):
        with self.assertRaisesRegex(ValueError, r"initial_state needs a built layer"):
            netrvlad.NetRVLAD().initial_state(1)

    def test_chunk_of_wrong_depth(self):
        layer = built_layer()
        with self.assertRaisesRegex(ValueError, r"4 channels.*\(2, 1, 1, 1, 5\)"):
            layer.update(layer.initial_state(2), np.zeros((2, 1, 1, 1, 5)))

    def test_mask_shape_mismatch(self):
        layer = built_layer()
        with self.assertRaisesRegex(ValueError, r"mask must have shape \(2, 3\)"):
            layer.update(
                layer.initial_state(2), make_video(num_frames=3), np.ones((2, 4))
            )

    def test_netvlad_state_does_not_fit(self):
        reference = netvlad.NetVLAD(num_clusters=3)
        reference.build((None, None, None, None, DEPTH))
        with self.assertRaisesRegex(ValueError, r"NetRVLAD state must be.*\['s1'\]"):
            built_layer().finalize(reference.initial_state(2))


# Runs once under KERAS_BACKEND=jax (TensorFlow unimportable) and once under
# tensorflow; under JAX, update and finalize are also compiled with jax.jit.
_BACKEND_SCRIPT = r"""
import json
import keras
import numpy as np
from tests.layers import netrvlad_test as nt
from tests.layers import vlad_checks

layer, video = nt.built_layer(), nt.make_video()
result = {"backend": keras.backend.backend(),
          "vlad": np.asarray(keras.ops.convert_to_numpy(layer(video))).tolist()}
if result["backend"] == "jax":
    result["masked_error"] = vlad_checks.jit_masked_stream_error(layer, video, 7)
print(json.dumps(result))
"""


class NetRVLADBackendTest(absltest.TestCase):
    @pytest.mark.slow
    def test_jax_matches_tensorflow_and_streams_under_jit(self):
        jax_out = testing.run_on_backend(_BACKEND_SCRIPT, "jax")
        tf_out = testing.run_on_backend(_BACKEND_SCRIPT, "tensorflow")
        self.assertEqual((jax_out["backend"], tf_out["backend"]), ("jax", "tensorflow"))
        np.testing.assert_allclose(jax_out["vlad"], tf_out["vlad"], atol=1e-5)
        self.assertLess(jax_out["masked_error"], 1e-5)


if __name__ == "__main__":
    absltest.main()
