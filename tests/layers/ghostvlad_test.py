"""Tests of GhostVLAD against NumPy references and against NetVLAD."""

import functools

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np
import pytest

from avlad_tf.layers import ghostvlad
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


def built_layer(depth=DEPTH, num_clusters=3, num_ghost_clusters=2, seed=10, **kwargs):
    """A built layer with soft, decoupled assignment, as after training."""
    layer = ghostvlad.GhostVLAD(
        num_clusters=num_clusters, num_ghost_clusters=num_ghost_clusters, **kwargs
    )
    layer.build((None, None, None, None, depth))
    rng = np.random.default_rng(seed)
    total = num_clusters + num_ghost_clusters
    layer.centers.assign(rng.normal(size=(num_clusters, depth)))
    layer.assignment_kernel.assign(rng.normal(size=(depth, total)))
    layer.assignment_bias.assign(rng.normal(size=(total,)))
    return layer


def netvlad_like(layer, ghost_centers):
    """A NetVLAD over K + G clusters with `layer`'s assignment weights, its
    real centres and `ghost_centers` `(G, D)` for the ghost rows."""
    total = layer.num_clusters + layer.num_ghost_clusters
    reference = netvlad.NetVLAD(num_clusters=total)
    reference.build((None, None, None, None, layer.centers.shape[-1]))
    reference.centers.assign(
        np.concatenate([numpy_of(layer.centers), ghost_centers], axis=0)
    )
    reference.assignment_kernel.assign(layer.assignment_kernel)
    reference.assignment_bias.assign(layer.assignment_bias)
    return reference


class GhostVLADTest(testing.TestCase):
    @parameterized.parameters(0, 1, 2)
    def test_matches_numpy_reference(self, num_ghost_clusters):
        x = np.random.default_rng(0).normal(size=(2, 3, 2, 2, 4)).astype(np.float32)
        layer = built_layer(num_ghost_clusters=num_ghost_clusters)
        expected = vlad_checks.numpy_vlad(
            x,
            *(
                numpy_of(w)
                for w in (layer.assignment_kernel, layer.assignment_bias, layer.centers)
            ),
        )
        np.testing.assert_allclose(numpy_of(layer(x)), expected, atol=1e-5)

    @parameterized.parameters(1, 2)
    def test_is_netvlad_over_all_clusters_with_ghost_rows_removed(self, num_ghosts):
        layer, video = built_layer(num_ghost_clusters=num_ghosts), make_video()
        # The ghost centres only enter rows that are dropped: any value works.
        ghost_centers = np.full((num_ghosts, DEPTH), 7.0, np.float32)
        reference = netvlad_like(layer, ghost_centers)
        sums = reference.update(reference.initial_state(2), video)
        s1, s0 = numpy_of(sums["s1"])[:, :3], numpy_of(sums["s0"])[:, :3]
        # Removed before normalisation, then NetVLAD's two norms.
        vlad = s1 - s0[..., None] * numpy_of(layer.centers)
        vlad /= np.linalg.norm(vlad, axis=-1, keepdims=True)
        expected = vlad.reshape(2, -1) / np.sqrt(3.0)
        np.testing.assert_allclose(numpy_of(layer(video)), expected, atol=1e-5)

    def test_no_ghosts_is_netvlad(self):
        layer, video = built_layer(num_ghost_clusters=0), make_video()
        reference = netvlad_like(layer, np.zeros((0, DEPTH), np.float32))
        np.testing.assert_allclose(
            numpy_of(layer(video)), numpy_of(reference(video)), **TOLERANCE
        )

    def test_descriptors_at_a_ghost_contribute_nothing(self):
        rng = np.random.default_rng(1)
        layer = built_layer(num_ghost_clusters=1, alpha=1000.0)
        ghost = np.eye(DEPTH, dtype=np.float32)[:1]  # the unit vector e_0
        # Real centres away from e_0, so that e_0 lies at the ghost.
        centers = rng.normal(size=(3, DEPTH)).astype(np.float32)
        centers[:, 0] = -1.0
        layer.set_centers(centers, ghost_centers=ghost)
        video = make_video()
        with_ghostly = video.copy()
        with_ghostly[:, 4] = 5.0 * ghost  # any scale: inputs are normalised
        maps = numpy_of(layer.assignments(with_ghostly))
        np.testing.assert_allclose(maps[:, 4, ..., -1], 1.0)
        np.testing.assert_allclose(
            numpy_of(layer(with_ghostly)),
            numpy_of(layer(np.delete(video, 4, axis=1))),
            **TOLERANCE,
        )

    def test_starts_as_netvlad_over_all_clusters(self):
        # One draw of K + G centres from the initializer, as NetVLAD's K + G.
        layer = ghostvlad.GhostVLAD(
            num_clusters=3,
            num_ghost_clusters=2,
            alpha=3.0,
            centers_initializer=keras.initializers.RandomNormal(seed=5),
        )
        layer.build((None, None, None, None, DEPTH))
        reference = netvlad.NetVLAD(
            num_clusters=5,
            alpha=3.0,
            centers_initializer=keras.initializers.RandomNormal(seed=5),
        )
        reference.build((None, None, None, None, DEPTH))
        for name in ("assignment_kernel", "assignment_bias"):
            np.testing.assert_array_equal(
                numpy_of(getattr(layer, name)), numpy_of(getattr(reference, name))
            )
        np.testing.assert_array_equal(
            numpy_of(layer.centers), numpy_of(reference.centers)[:3]
        )

    def test_kmeans_centres_set_weights_and_ghosts_at_origin(self):
        centers = np.random.default_rng(1).normal(size=(3, 4))
        layer = built_layer(alpha=1000.0)
        layer.set_centers(centers.astype(np.float32))
        kernel = numpy_of(layer.assignment_kernel)
        bias = numpy_of(layer.assignment_bias)
        np.testing.assert_allclose(kernel[:, :3], 2000.0 * centers.T, rtol=1e-6)
        np.testing.assert_allclose(
            bias[:3], -1000.0 * np.sum(centers**2, axis=1), rtol=1e-6
        )
        np.testing.assert_array_equal(kernel[:, 3:], 0.0)
        np.testing.assert_array_equal(bias[3:], 0.0)
        np.testing.assert_allclose(numpy_of(layer.centers), centers, rtol=1e-6)

    def test_assignment_after_set_centers_is_softmax_of_distances(self):
        rng = np.random.default_rng(2)
        centers = rng.normal(size=(3, 4)).astype(np.float32)
        ghosts = rng.normal(size=(2, 4)).astype(np.float32)
        layer = built_layer(alpha=3.0)
        layer.set_centers(centers, ghost_centers=ghosts)
        x = rng.normal(size=(1, 1, 1, 2, 4))
        unit = x / np.linalg.norm(x, axis=-1, keepdims=True)
        every = np.concatenate([centers, ghosts])
        distances = np.sum((unit[..., None, :] - every) ** 2, axis=-1)
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

    def test_assignment_maps_include_ghosts_last(self):
        layer = ghostvlad.GhostVLAD(num_clusters=5, num_ghost_clusters=2)
        x = np.random.default_rng(5).normal(size=(2, 3, 4, 4, 6))
        vlad, assignments = layer(x, return_assignments=True)
        self.assertEqual(tuple(vlad.shape), (2, 30))
        self.assertEqual(tuple(assignments.shape), (2, 3, 4, 4, 7))
        np.testing.assert_allclose(numpy_of(assignments).sum(-1), 1.0, atol=1e-5)

    def test_build_creates_three_trainable_weights(self):
        layer = built_layer(depth=6, num_clusters=5, num_ghost_clusters=2)
        shapes = {
            w.path.split("/")[-1]: tuple(w.shape) for w in layer.trainable_weights
        }
        self.assertEqual(
            shapes,
            {"centers": (5, 6), "assignment_kernel": (6, 7), "assignment_bias": (7,)},
        )

    def test_symbolic_and_eager_calls(self):
        self.assert_symbolic_call(
            ghostvlad.GhostVLAD(num_clusters=4), (None, 25, 7, 7, 8), (None, 32)
        )
        vlad, maps = ghostvlad.GhostVLAD(num_clusters=4, num_ghost_clusters=2)(
            keras.KerasTensor((None, 25, 7, 7, 8)), return_assignments=True
        )
        self.assertEqual((vlad.shape, maps.shape), ((None, 32), (None, 25, 7, 7, 6)))
        out = ghostvlad.GhostVLAD(num_clusters=4)(np.ones((3, 2, 1, 1, 8)))
        self.assertEqual(tuple(out.shape), (3, 32))

    def test_serialization_round_trip(self):
        layer = ghostvlad.GhostVLAD(
            num_clusters=7,
            num_ghost_clusters=3,
            alpha=12.5,
            name="ghost",
            trainable=False,
        )
        self.assert_serialization_round_trip(layer)
        config = layer.get_config()
        self.assertEqual(
            (
                config["num_clusters"],
                config["num_ghost_clusters"],
                config["alpha"],
                config["trainable"],
            ),
            (7, 3, 12.5, False),
        )

    def test_keras_file_round_trip(self):
        vlad_checks.assert_keras_file_round_trip(
            self, ghostvlad.GhostVLAD(num_clusters=3)
        )

    @parameterized.parameters(True, False)
    def test_fit_step(self, jit_compile):
        model = vlad_checks.fit_step(
            self, lambda: ghostvlad.GhostVLAD(num_clusters=3), jit_compile
        )
        self.assertEqual(model.layers[1].assignment_kernel.shape, (4, 4))

    def test_computes_in_float32_under_mixed_precision(self):
        vlad_checks.assert_computes_in_float32(
            self, lambda: ghostvlad.GhostVLAD(num_clusters=3)
        )


class GhostVLADStreamingTest(testing.TestCase):
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

    def test_state_covers_real_clusters_only(self):
        layer, video = built_layer(), make_video()
        state = layer.initial_state(2)
        self.assertEqual(
            {key: tuple(value.shape) for key, value in state.items()},
            {"s1": (2, 3, DEPTH), "s0": (2, 3)},
        )
        # The ghosts take weight: the real clusters' mass is below the count
        # of descriptors (11 frames of 2 x 3 positions).
        mass = numpy_of(layer.update(state, video)["s0"]).sum(-1)
        self.assertTrue(np.all(mass < NUM_FRAMES * 6))
        np.testing.assert_array_equal(numpy_of(state["s0"]), 0.0)


class GhostVLADErrorTest(testing.TestCase):
    @parameterized.parameters(0, -3, 2.5, True)
    def test_bad_num_clusters(self, value):
        with self.assertRaisesRegex(ValueError, "num_clusters must be a positive int"):
            ghostvlad.GhostVLAD(num_clusters=value)

    @parameterized.parameters(-1, 1.5, True, None)
    def test_bad_num_ghost_clusters(self, value):
        with self.assertRaisesRegex(
            ValueError, "num_ghost_clusters must be a non-negative int"
        ):
            ghostvlad.GhostVLAD(num_ghost_clusters=value)

    def test_bad_alpha(self):
        with self.assertRaisesRegex(ValueError, "alpha must be a positive"):
            ghostvlad.GhostVLAD(alpha=0.0)

    def test_wrong_rank(self):
        with self.assertRaisesRegex(ValueError, r"GhostVLAD.*rank 5.*\(2, 7, 512\)"):
            ghostvlad.GhostVLAD().build((2, 7, 512))

    def test_unknown_channels(self):
        with self.assertRaisesRegex(ValueError, "known channel dimension.*None"):
            ghostvlad.GhostVLAD().build((2, 25, 7, 7, None))

    def test_centres_of_wrong_shape(self):
        # K + G rows are not the real centres.
        with self.assertRaisesRegex(
            ValueError, r"centers must have shape \(3, 4\).*centers.shape=\(5, 4\)"
        ):
            built_layer().set_centers(np.zeros((5, 4), np.float32))

    def test_ghost_centres_of_wrong_shape(self):
        with self.assertRaisesRegex(
            ValueError,
            r"ghost_centers must have shape \(2, 4\).*ghost_centers.shape=\(1, 4\)",
        ):
            built_layer().set_centers(
                np.zeros((3, 4), np.float32), ghost_centers=np.zeros((1, 4))
            )

    def test_centres_before_build(self):
        with self.assertRaisesRegex(ValueError, "set_centers needs a built layer"):
            ghostvlad.GhostVLAD().set_centers(np.zeros((64, 4)))

    def test_unbuilt_streaming(self):
        with self.assertRaisesRegex(ValueError, r"initial_state needs a built layer"):
            ghostvlad.GhostVLAD().initial_state(1)

    def test_chunk_of_wrong_rank(self):
        layer = built_layer()
        with self.assertRaisesRegex(ValueError, r"rank 5.*chunk.shape=\(2, 3, 4\)"):
            layer.update(layer.initial_state(2), np.zeros((2, 3, 4)))

    def test_mask_shape_mismatch(self):
        layer = built_layer()
        with self.assertRaisesRegex(ValueError, r"mask must have shape \(2, 3\)"):
            layer.update(
                layer.initial_state(2), make_video(num_frames=3), np.ones((2, 4))
            )

    def test_netvlad_state_over_all_clusters_does_not_fit(self):
        # A NetVLAD over K + G clusters has K + G rows; the ghosts have none.
        reference = netvlad.NetVLAD(num_clusters=5)
        reference.build((None, None, None, None, DEPTH))
        with self.assertRaisesRegex(ValueError, r"state\['s1'\].*\(None, 3, 4\)"):
            built_layer().finalize(reference.initial_state(2))


# Runs once under KERAS_BACKEND=jax (TensorFlow unimportable) and once under
# tensorflow; under JAX, update and finalize are also compiled with jax.jit.
_BACKEND_SCRIPT = r"""
import json
import keras
import numpy as np
from tests.layers import ghostvlad_test as gt
from tests.layers import vlad_checks

layer, video = gt.built_layer(), gt.make_video()
vlad, maps = layer(video, return_assignments=True)
result = {"backend": keras.backend.backend(),
          "vlad": np.asarray(keras.ops.convert_to_numpy(vlad)).tolist(),
          "maps": np.asarray(keras.ops.convert_to_numpy(maps)).tolist()}
if result["backend"] == "jax":
    result["masked_error"] = vlad_checks.jit_masked_stream_error(layer, video, 7)
print(json.dumps(result))
"""


class GhostVLADBackendTest(absltest.TestCase):
    @pytest.mark.slow
    def test_jax_matches_tensorflow_and_streams_under_jit(self):
        jax_out = testing.run_on_backend(_BACKEND_SCRIPT, "jax")
        tf_out = testing.run_on_backend(_BACKEND_SCRIPT, "tensorflow")
        self.assertEqual((jax_out["backend"], tf_out["backend"]), ("jax", "tensorflow"))
        np.testing.assert_allclose(jax_out["vlad"], tf_out["vlad"], atol=1e-5)
        np.testing.assert_allclose(jax_out["maps"], tf_out["maps"], atol=1e-5)
        self.assertLess(jax_out["masked_error"], 1e-5)


if __name__ == "__main__":
    absltest.main()
