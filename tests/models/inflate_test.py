"""`backbones.inflate`: I3D's inflation of keras.applications networks.

The main check is Carreira & Zisserman's "boring video": a clip of one
repeated frame gives the 2-D network's output at every time step.
"""

import functools

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np
import pytest

from avlad_tf.models.backbones import inflate
from tests import testing

# (constructor, image size): the smallest sizes each network accepts.
NETWORKS = {
    "vgg16": (keras.applications.VGG16, 32),
    "resnet50": (keras.applications.ResNet50, 32),
    "inception_v3": (keras.applications.InceptionV3, 75),
}


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def network(name, *, cut=None):
    """A keras.applications network with random weights and random batch-norm
    statistics (the identity statistics would hide a misplaced axis),
    optionally cut at the layer `cut`."""
    constructor, size = NETWORKS[name]
    model = constructor(include_top=False, weights=None, input_shape=(size, size, 3))
    rng = np.random.default_rng(1)
    draws = {
        "gamma": lambda shape: rng.uniform(0.5, 1.5, shape),
        "beta": lambda shape: rng.normal(0, 0.5, shape),
        "moving_mean": lambda shape: rng.normal(0, 0.5, shape),
        "moving_variance": lambda shape: rng.uniform(0.5, 2.0, shape),
    }
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            for weight in layer.weights:
                weight.assign(draws[weight.name](weight.shape).astype("float32"))
    if cut is not None:
        model = keras.Model(model.input, model.get_layer(cut).output)
    return model


def boring_video(model_2d, *, frames, seed=0):
    """One random frame `(1, H, W, C)` and the clip `(1, frames, H, W, C)` that
    repeats it."""
    rng = np.random.default_rng(seed)
    frame = rng.uniform(-1, 1, (1, *model_2d.input.shape[1:])).astype("float32")
    return frame, np.repeat(frame[:, np.newaxis], frames, axis=1)


def layer_names(model, kind):
    return [l.name for l in model.layers if type(l) is kind]


class BoringVideoTest(testing.TestCase):
    def assert_steps_match(self, outputs_3d, output_2d, steps):
        """Each listed step of `(1, T, ...)` equals `(1, ...)`, to 1e-4 of the
        activations' scale."""
        scale = np.abs(output_2d).max()
        for step in steps:
            np.testing.assert_allclose(
                outputs_3d[:, step], output_2d, rtol=1e-4, atol=1e-4 * scale
            )

    @parameterized.parameters("vgg16", "resnet50", "inception_v3")
    def test_edge_padding_gives_the_2d_output_at_every_step(self, name):
        model_2d = network(name)
        frame, clip = boring_video(model_2d, frames=5)
        expected = numpy(model_2d(frame))
        outputs = numpy(inflate.inflate(model_2d)(clip))
        self.assertEqual(outputs.shape, (1, 5, *expected.shape[1:]))
        self.assert_steps_match(outputs, expected, range(5))

    # The max-pool strided in time: one outside any Inception block (a block
    # that pools one branch also strides the others).
    @parameterized.parameters(("vgg16", -1), ("resnet50", 0), ("inception_v3", 1))
    def test_temporal_strides_and_windows_keep_the_property(self, name, pool):
        model_2d = network(name)
        convs = layer_names(model_2d, keras.layers.Conv2D)
        pools = layer_names(model_2d, keras.layers.MaxPooling2D)
        windows = layer_names(model_2d, keras.layers.AveragePooling2D) or pools
        # Stride 2 on the first conv (3x3 'same' for VGG, 7x7 / 3x3 'valid'
        # for the others) and a max-pool; a 3-step window on a pool ('same'
        # average pools in InceptionV3).
        model_3d = inflate.inflate(
            model_2d,
            time_strides={convs[0]: 2, pools[pool]: 2},
            time_windows={windows[0]: 3},
        )
        frame, clip = boring_video(model_2d, frames=6)
        outputs = numpy(model_3d(clip))
        self.assertEqual(outputs.shape[1], 2)  # 6 -> 3 -> 2 steps
        self.assert_steps_match(outputs, numpy(model_2d(frame)), range(2))

    @parameterized.parameters(
        # Two 3x3 'same' convs: the 3-D layers' own SAME padding.
        ("vgg16", "block1_pool", 6, range(2, 4)),
        # A 7x7 'valid' conv behind ZeroPadding2D: explicit zero frames.
        ("resnet50", "pool1_pool", 8, range(3, 5)),
    )
    def test_zero_padding_holds_inside_the_clip_only(self, name, cut, frames, inside):
        model_2d = network(name, cut=cut)
        frame, clip = boring_video(model_2d, frames=frames)
        expected = numpy(model_2d(frame))
        outputs = numpy(inflate.inflate(model_2d, time_padding="zeros")(clip))
        self.assertEqual(outputs.shape[1], frames)
        self.assert_steps_match(outputs, expected, inside)
        first_step_error = np.abs(outputs[:, 0] - expected).max()
        self.assertGreater(first_step_error, 1e-2 * np.abs(expected).max())


class InflateTest(testing.TestCase):
    def small_model(self):
        """3x3, 7x7, 1x7 and 1x1 convolutions (random biases), then a pool."""
        conv = functools.partial(
            keras.layers.Conv2D, padding="same", bias_initializer="random_normal"
        )
        return keras.Sequential(
            [
                keras.Input((12, 12, 2)),
                conv(3, 3, name="c3x3"),
                conv(4, 7, name="c7x7"),
                conv(5, (1, 7), name="c1x7"),
                conv(6, (1, 7), name="c1x7_t3"),
                conv(7, 1, name="c1x1"),
                keras.layers.MaxPooling2D(2, name="pool"),
            ]
        )

    def test_kernels_are_repeated_over_time_and_divided_by_t(self):
        model_2d = self.small_model()
        model_3d = inflate.inflate(
            model_2d, time_kernels={"c1x7_t3": 3}, time_windows={"pool": 2}
        )
        expected_t = {"c3x3": 3, "c7x7": 7, "c1x7": 1, "c1x7_t3": 3, "c1x1": 1}
        for name, t in expected_t.items():
            kernel_2d, bias_2d = model_2d.get_layer(name).get_weights()
            kernel_3d, bias_3d = model_3d.get_layer(name).get_weights()
            self.assertEqual(kernel_3d.shape, (t, *kernel_2d.shape))
            for step in range(t):
                np.testing.assert_allclose(kernel_3d[step], kernel_2d / t, rtol=1e-6)
            np.testing.assert_array_equal(bias_3d, bias_2d)
        pool = model_3d.get_layer("pool")
        self.assertIsInstance(pool, keras.layers.MaxPooling3D)
        self.assertEqual(tuple(pool.pool_size), (2, 2, 2))
        self.assertEqual(tuple(model_3d.output.shape), (None, None, 6, 6, 7))

    def test_an_unsupported_layer_raises_one_line_naming_it(self):
        inputs = keras.Input((8, 8, 3))
        x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
        x = keras.layers.Flatten(name="flat")(x)
        model = keras.Model(inputs, keras.layers.Dense(2, name="logits")(x))
        with self.assertRaisesRegex(ValueError, r"^[^\n]*'flat'[^\n]*Flatten[^\n]*$"):
            inflate.inflate(model)

    def test_settings_must_name_a_layer_of_their_kind(self):
        with self.assertRaisesRegex(ValueError, "time_windows.*c3x3"):
            inflate.inflate(self.small_model(), time_windows={"c3x3": 3})
        with self.assertRaisesRegex(ValueError, "time_padding"):
            inflate.inflate(self.small_model(), time_padding="reflect")

    def test_branches_strided_differently_raise(self):
        inputs = keras.Input((8, 8, 3))
        pooled = keras.layers.MaxPooling2D(3, 2, name="pool")(inputs)
        conv = keras.layers.Conv2D(4, 3, strides=2, name="conv")(inputs)
        outputs = keras.layers.Concatenate(name="mixed")([pooled, conv])
        model = keras.Model(inputs, outputs)
        with self.assertRaisesRegex(ValueError, r"'mixed'.*strided \[1, 2\]"):
            inflate.inflate(model, time_strides={"pool": 2})
        model_3d = inflate.inflate(model, time_strides={"pool": 2, "conv": 2})
        self.assertEqual(model_3d(np.zeros((1, 5, 8, 8, 3))).shape, (1, 3, 3, 3, 7))

    def test_keras_file_round_trip(self):
        # A strided 'same' conv brings both TemporalPadding and TemporalSlice.
        model_3d = inflate.inflate(
            network("vgg16", cut="block2_pool"), time_strides={"block1_conv2": 2}
        )
        classes = {type(l).__name__ for l in model_3d.layers}
        self.assertLessEqual({"TemporalPadding", "TemporalSlice"}, classes)
        clip = np.random.default_rng(0).normal(size=(2, 5, 32, 32, 3))
        self.assert_keras_file_round_trip(model_3d, clip.astype("float32"))

    @parameterized.parameters(
        (inflate.TemporalPadding(before=1, after=2, mode="edge"), 6),
        (inflate.TemporalPadding(before=2, after=0, mode="zeros"), 5),
        (inflate.TemporalSlice(start=1, stop=-1, step=2), 1),
    )
    def test_temporal_layers(self, layer, expected_time):
        self.assert_serialization_round_trip(layer)
        self.assert_symbolic_call(layer, (2, 3, 4, 4, 5), (2, expected_time, 4, 4, 5))
        x = np.arange(3, dtype="float32").reshape(1, 3, 1, 1, 1) + 1
        self.assertEqual(numpy(layer(x)).shape, (1, expected_time, 1, 1, 1))

    def test_edge_padding_repeats_the_edge_frames(self):
        x = np.arange(3, dtype="float32").reshape(1, 3, 1) + 1
        padded = inflate.TemporalPadding(before=1, after=2)(x)
        np.testing.assert_array_equal(numpy(padded).ravel(), [1, 1, 2, 3, 3, 3])


_JAX_SCRIPT = r"""
import json, os, tempfile
import keras
import numpy as np
from avlad_tf.models.backbones import inflate

keras.utils.set_random_seed(0)
vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
model_2d = keras.Model(vgg.input, vgg.get_layer("block2_pool").output)
model_3d = inflate.inflate(model_2d, time_strides={"block1_conv1": 2})
frame = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
clip = np.repeat(frame[:, None], 5, axis=1)
outputs = model_3d.predict(clip, verbose=0)
error = np.abs(outputs - model_2d.predict(frame, verbose=0)[:, None]).max()
path = os.path.join(tempfile.mkdtemp(), "model.keras")
model_3d.save(path)
reloaded = keras.saving.load_model(path).predict(clip, verbose=0)

# ActionVLAD over a tiny I3D: flow stacks unfold into one clip on JAX too.
from avlad_tf.models import action_vlad
flow = action_vlad.build_model(num_classes=3, modality="flow", backbone="tiny_i3d",
                               image_size=32, flow_stack=2, num_clusters=4)
stacks = np.random.default_rng(1).normal(0, 50, (2, 4, 32, 32, 4)).astype("float32")
logits = flow.predict({"flow": stacks}, verbose=0)
flow_path = os.path.join(tempfile.mkdtemp(), "flow.keras")
flow.save(flow_path)
again = keras.saving.load_model(flow_path).predict({"flow": stacks}, verbose=0)
print(json.dumps({"steps": outputs.shape[1], "error": float(error),
                  "reload_error": float(np.abs(reloaded - outputs).max()),
                  "i3d_logits": list(logits.shape),
                  "i3d_finite": bool(np.isfinite(logits).all()),
                  "i3d_reload_error": float(np.abs(again - logits).max())}))
"""


class JaxBackendTest(absltest.TestCase):
    @pytest.mark.slow
    def test_inflated_model_runs_and_reloads_on_jax(self):
        result = testing.run_on_backend(_JAX_SCRIPT, "jax")
        self.assertEqual(result["steps"], 3)
        self.assertLess(result["error"], 1e-5)
        self.assertEqual(result["reload_error"], 0.0)
        self.assertEqual(result["i3d_logits"], [2, 3])
        self.assertTrue(result["i3d_finite"])
        self.assertEqual(result["i3d_reload_error"], 0.0)


if __name__ == "__main__":
    absltest.main()
