"""Tests of VideoLSTM's ConvALSTM against a loop-based NumPy version."""

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np
import pytest

from avlad_tf.layers import video_lstm
from tests import testing

APPEARANCE_WEIGHTS = {
    "attention_input_kernel": (3, 2),
    "attention_bias": (2,),
    "initial_state_kernel": (3, 3, 3, 4),
    "initial_state_bias": (4,),
    "dense_kernel": (2 * 2 * 2, 5),
    "dense_bias": (5,),
    "cell/kernel": (3, 3, 3, 8),
    "cell/recurrent_kernel": (3, 3, 2, 8),
    "cell/bias": (8,),
    "cell/attention_state_kernel": (2, 2),
    "cell/attention_score_kernel": (2, 1),
}
MOTION_WEIGHTS = {
    "motion_kernel": (4, 8),
    "motion_bias": (8,),
    "motion_initial_state_kernel": (4, 4),
    "motion_initial_state_bias": (4,),
    "cell/motion_recurrent_kernel": (2, 8),
    "cell/motion_top_kernel": (2, 8),
}


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def conv_same(x, kernel):
    """'same' convolution of one map (h, w, c) with (k, k, c, o), by loops."""
    pad = kernel.shape[0] // 2
    padded = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
    out = np.zeros(x.shape[:2] + kernel.shape[-1:])
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            window = padded[i : i + kernel.shape[0], j : j + kernel.shape[1]]
            out[i, j] = np.einsum("abc,abco->o", window, kernel)
    return out


def rectified_pool(x, size):
    """ReLU, then a size x size max pool with 'same' padding (h, w, c)."""
    x = np.maximum(x, 0.0)
    rows, cols = -(-x.shape[0] // size), -(-x.shape[1] // size)
    out = np.zeros((rows, cols, x.shape[2]))
    for i in range(rows):
        for j in range(cols):
            window = x[i * size : (i + 1) * size, j * size : (j + 1) * size]
            out[i, j] = window.max(axis=(0, 1))
    return out


def lstm(gates, cell):
    i, f, g, o = np.split(gates, 4, axis=-1)
    cell = sigmoid(f) * cell + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(cell), cell


def numpy_conv_alstm(x, motion, w, pool_size):
    """The paper's equations frame by frame (module docstrings). Returns the
    time-averaged FC outputs, the per-step ones and the attention maps."""
    batch, time = x.shape[:2]
    steps, maps = [], []
    for b in range(batch):
        frames = [rectified_pool(x[b, t], pool_size) for t in range(time)]
        init = np.tanh(
            conv_same(np.mean(frames, 0), w["initial_state_kernel"])
            + w["initial_state_bias"]
        )
        h, c = np.split(init, 2, axis=-1)
        if motion is not None:
            flows = [rectified_pool(motion[b, t], pool_size) for t in range(time)]
            init = np.tanh(
                np.mean(flows, 0) @ w["motion_initial_state_kernel"]
                + w["motion_initial_state_bias"]
            )
            hm, cm = np.split(init, 2, axis=-1)
        for t, frame in enumerate(frames):
            query = h
            if motion is not None:
                gates = (
                    flows[t] @ w["motion_kernel"]
                    + w["motion_bias"]
                    + hm @ w["cell/motion_recurrent_kernel"]
                    + h @ w["cell/motion_top_kernel"]
                )
                hm, cm = lstm(gates, cm)
                query = hm
            z = (
                np.tanh(
                    frame @ w["attention_input_kernel"]
                    + w["attention_bias"]
                    + query @ w["cell/attention_state_kernel"]
                )
                @ w["cell/attention_score_kernel"]
            )
            a = np.exp(z[..., 0] - z.max())
            a /= a.sum()
            gates = (
                conv_same(a[..., None] * frame, w["cell/kernel"])
                + conv_same(h, w["cell/recurrent_kernel"])
                + w["cell/bias"]
            )
            h, c = lstm(gates, c)
            steps.append(np.tanh(h.reshape(-1) @ w["dense_kernel"] + w["dense_bias"]))
            maps.append(a)
    steps = np.reshape(steps, (batch, time, -1))
    return steps.mean(1), steps, np.reshape(maps, (batch, time) + maps[0].shape)


def weights_by_name(layer):
    """`{name: array}`, cell weights as `cell/<name>`."""
    cell = {id(w) for w in layer.cell.weights}
    return {
        f"cell/{w.name}" if id(w) in cell else w.name: numpy(w) for w in layer.weights
    }


def built_layer(attention="appearance", **kwargs):
    layer = video_lstm.ConvALSTM(
        **{"units": 2, "dense_units": 5, "attention": attention, **kwargs}
    )
    motion = (None, None, 4, 4, 4) if attention == "motion" else None
    layer.build((None, None, 4, 4, 3), motion)
    rng = np.random.default_rng(0)
    # Non-trivial weights everywhere, biases included.
    for w in layer.weights:
        w.assign(rng.normal(0.0, 0.5, w.shape))
    return layer


class ConvALSTMTest(testing.TestCase):
    @parameterized.product(attention=("appearance", "motion"), pool_size=(1, 2))
    def test_matches_numpy_reference(self, attention, pool_size):
        rng = np.random.default_rng(1)
        x = rng.normal(size=(2, 3, 4, 4, 3)).astype("float32")
        flow = rng.normal(size=(2, 3, 4, 4, 4)).astype("float32")
        motion = flow if attention == "motion" else None
        layer = built_layer(attention)
        layer_pool1 = built_layer(attention, spatial_pool_size=1)
        layer = layer if pool_size == 2 else layer_pool1
        pooled, steps, maps = layer(
            x, attention_inputs=motion, return_sequences=True, return_attention=True
        )
        expected = numpy_conv_alstm(x, motion, weights_by_name(layer), pool_size)
        for got, want in zip((pooled, steps, maps), expected):
            np.testing.assert_allclose(numpy(got), want, atol=1e-5)
        np.testing.assert_allclose(
            numpy(layer(x, attention_inputs=motion)), expected[0], atol=1e-5
        )

    def test_attention_is_a_distribution_over_positions(self):
        x = np.random.default_rng(2).normal(size=(2, 4, 5, 3, 3)).astype("float32")
        layer = video_lstm.ConvALSTM(units=2, dense_units=5)
        _, maps = layer(x, return_attention=True)
        maps = numpy(maps)
        self.assertEqual(maps.shape, (2, 4, 3, 2))  # 'same' pool of 5x3
        self.assertEqual(maps.dtype, np.float32)
        self.assertTrue(np.all(maps >= 0.0))
        np.testing.assert_allclose(maps.sum(axis=(2, 3)), 1.0, atol=1e-6)
        # Without scores (W_z = 0) every position weighs the same.
        layer.cell.attention_score_kernel.assign(np.zeros((2, 1)))
        _, maps = layer(x, return_attention=True)
        np.testing.assert_allclose(numpy(maps), 1.0 / 6.0, atol=1e-7)

    def test_motion_attention_reads_the_flow(self):
        rng = np.random.default_rng(3)
        x = rng.normal(size=(1, 3, 4, 4, 3)).astype("float32")
        flows = rng.normal(size=(2, 1, 3, 4, 4, 4)).astype("float32")
        layer = built_layer("motion")
        first, second = (
            numpy(layer(x, attention_inputs=f, return_attention=True)[1]) for f in flows
        )
        self.assertFalse(np.allclose(first, second, atol=1e-4))
        again = layer(x, attention_inputs=flows[0], return_attention=True)[1]
        np.testing.assert_array_equal(numpy(again), first)

    def test_build_creates_the_named_weights(self):
        for attention, expected in (
            ("appearance", APPEARANCE_WEIGHTS),
            ("motion", {**APPEARANCE_WEIGHTS, **MOTION_WEIGHTS}),
        ):
            layer = built_layer(attention)
            shapes = {k: v.shape for k, v in weights_by_name(layer).items()}
            self.assertEqual(shapes, expected)
            self.assertLen(layer.trainable_weights, len(expected))

    def test_vgg16_pool5_feeds_the_papers_widths(self):
        # conv5_3 14x14x512 -> pool5 7x7x512: 3x3 gates, 25088 -> 1024 FC.
        layer = video_lstm.ConvALSTM()
        layer.build((None, None, 14, 14, 512))
        self.assertEqual(tuple(layer.cell.kernel.shape), (3, 3, 512, 2048))
        self.assertEqual(tuple(layer.dense_kernel.shape), (25088, 1024))

    def test_symbolic_and_eager_calls(self):
        self.assert_symbolic_call(
            video_lstm.ConvALSTM(units=4, dense_units=6),
            (None, None, 6, 6, 8),
            (None, 6),
        )
        pooled, steps, maps = video_lstm.ConvALSTM(units=4, dense_units=6)(
            keras.KerasTensor((None, None, 7, 7, 8)),
            return_sequences=True,
            return_attention=True,
        )
        self.assertEqual(
            [tuple(t.shape) for t in (pooled, steps, maps)],
            [(None, 6), (None, None, 6), (None, None, 4, 4)],
        )
        self.assertEqual(maps.dtype, "float32")
        layer = video_lstm.ConvALSTM(units=4, dense_units=6, attention="motion")
        out = layer(np.ones((3, 2, 2, 2, 8)), attention_inputs=np.ones((3, 2, 2, 2, 5)))
        self.assertEqual(tuple(out.shape), (3, 6))

    def test_dropout_only_in_training(self):
        x = np.random.default_rng(4).normal(size=(4, 2, 4, 4, 3)).astype("float32")
        layer = video_lstm.ConvALSTM(units=2, dense_units=64)
        evaluated = numpy(layer(x, training=False))
        np.testing.assert_array_equal(evaluated, numpy(layer(x)))
        self.assertFalse(np.allclose(numpy(layer(x, training=True)), evaluated))

    def test_weight_decay_is_slims_on_each_kernel(self):
        layer = built_layer("motion", weight_decay=5e-4)
        self.assertEqual(layer.get_config()["weight_decay"], 5e-4)
        kernels = [v for k, v in weights_by_name(layer).items() if "kernel" in k]
        self.assertLen(kernels, 11)
        # slim: decay · Σw² / 2 per kernel; the biases are not decayed.
        expected = sum(5e-4 * np.sum(k**2) / 2 for k in kernels)
        self.assertAlmostEqual(float(sum(layer.losses)), expected, places=5)
        self.assertEqual(built_layer().losses, [])

    @parameterized.parameters("appearance", "motion")
    def test_serialization_round_trip(self, attention):
        layer = video_lstm.ConvALSTM(
            units=7,
            dense_units=9,
            dropout_rate=0.25,
            kernel_size=5,
            spatial_pool_size=1,
            attention=attention,
            weight_decay=1e-4,
            name="videolstm_pool",
            trainable=False,
        )
        self.assert_serialization_round_trip(layer)
        config = layer.get_config()
        self.assertEqual(
            tuple(config[k] for k in ("units", "dense_units", "kernel_size")), (7, 9, 5)
        )

    def test_keras_file_round_trip(self):
        x = keras.Input((3, 4, 4, 3))
        model = keras.Model(x, video_lstm.ConvALSTM(units=2, dense_units=5)(x))
        inputs = np.random.default_rng(5).normal(size=(2, 3, 4, 4, 3))
        self.assert_keras_file_round_trip(model, inputs)

    def test_motion_keras_file_round_trip(self):
        rgb, flow = keras.Input((3, 4, 4, 3)), keras.Input((3, 4, 4, 4))
        pooled, maps = video_lstm.ConvALSTM(units=2, dense_units=5, attention="motion")(
            rgb, attention_inputs=flow, return_attention=True
        )
        model = keras.Model([rgb, flow], [pooled, maps])
        rng = np.random.default_rng(6)
        inputs = [rng.normal(size=(2, 3, 4, 4, c)) for c in (3, 4)]
        expected = model.predict(inputs, verbose=0)
        path = self.create_tempdir().full_path + "/model.keras"
        model.save(path)
        revived = keras.saving.load_model(path).predict(inputs, verbose=0)
        for got, want in zip(revived, expected):
            np.testing.assert_array_equal(got, want)

    @parameterized.parameters(True, False)
    @pytest.mark.slow
    def test_fit_step(self, jit_compile):
        inputs = np.random.default_rng(7).normal(size=(2, 3, 4, 4, 3))
        model = self.run_fit_step(
            lambda: video_lstm.ConvALSTM(units=2, dense_units=5),
            inputs.astype(np.float32),
            5,
            jit_compile,
        )
        self.assertLen(model.layers[1].trainable_weights, 11)

    @pytest.mark.slow
    def test_motion_fit_step_under_xla(self):
        rgb, flow = keras.Input((None, 4, 4, 3)), keras.Input((None, 4, 4, 4))
        layer = video_lstm.ConvALSTM(units=2, dense_units=5, attention="motion")
        model = keras.Model([rgb, flow], layer(rgb, attention_inputs=flow))
        model.compile(optimizer="adam", loss="mse", jit_compile=True)
        rng = np.random.default_rng(8)
        inputs = [rng.normal(size=(2, 3, 4, 4, c)).astype("float32") for c in (3, 4)]
        before = [numpy(w) for w in layer.weights]
        model.fit(inputs, np.ones((2, 5), "float32"), batch_size=2, verbose=0)
        moved = [not np.array_equal(numpy(w), b) for w, b in zip(layer.weights, before)]
        self.assertTrue(all(moved))

    @pytest.mark.slow
    def test_mixed_precision(self):
        keras.mixed_precision.set_global_policy("mixed_float16")
        layer = video_lstm.ConvALSTM(units=2, dense_units=5)
        # float16's max is 65504: a float16 sum over time of this overflows.
        x = keras.ops.full((1, 4, 4, 4, 3), 60000.0, dtype="float16")
        pooled, maps = layer(x, return_attention=True)
        self.assertEqual(layer.compute_dtype, "float16")
        self.assertEqual(layer.cell.kernel.dtype, "float32")
        self.assertEqual(maps.dtype, "float32")
        self.assertTrue(np.all(np.isfinite(numpy(pooled))))
        self.assertTrue(np.all(np.isfinite(numpy(maps))))
        inputs = np.random.default_rng(9).normal(size=(2, 2, 4, 4, 3))
        self.run_fit_step(
            lambda: video_lstm.ConvALSTM(units=2, dense_units=5),
            inputs.astype(np.float32),
            5,
        )


class ConvALSTMErrorTest(testing.TestCase):
    @parameterized.parameters(
        ("units", 0), ("units", 2.5), ("units", True), ("dense_units", -1)
    )
    def test_bad_widths(self, name, value):
        with self.assertRaisesRegex(ValueError, f"{name} must be a positive int"):
            video_lstm.ConvALSTM(**{name: value})

    @parameterized.parameters(1.0, -0.1)
    def test_bad_dropout_rate(self, rate):
        with self.assertRaisesRegex(ValueError, r"dropout_rate must be in \[0, 1\)"):
            video_lstm.ConvALSTM(dropout_rate=rate)

    @parameterized.parameters(0, 2, 3.0)
    def test_bad_kernel_size(self, size):
        with self.assertRaisesRegex(ValueError, "kernel_size must be a positive odd"):
            video_lstm.ConvALSTM(kernel_size=size)

    @parameterized.parameters(0, 1.5, True)
    def test_bad_spatial_pool_size(self, size):
        with self.assertRaisesRegex(ValueError, "spatial_pool_size must be a positive"):
            video_lstm.ConvALSTM(spatial_pool_size=size)

    def test_bad_attention(self):
        with self.assertRaisesRegex(ValueError, "attention must be one of"):
            video_lstm.ConvALSTM(attention="flow")

    def test_negative_weight_decay(self):
        with self.assertRaisesRegex(ValueError, "weight_decay must be >= 0"):
            video_lstm.ConvALSTM(weight_decay=-1e-4)

    def test_wrong_rank(self):
        with self.assertRaisesRegex(ValueError, r"rank 5.*\(2, 7, 7, 512\)"):
            video_lstm.ConvALSTM().build((2, 7, 7, 512))

    def test_unknown_channels(self):
        with self.assertRaisesRegex(ValueError, "known channel dimension"):
            video_lstm.ConvALSTM().build((2, 25, 7, 7, None))

    def test_unknown_spatial_size(self):
        with self.assertRaisesRegex(ValueError, "known height and width"):
            video_lstm.ConvALSTM().build((2, 25, None, None, 8))

    def test_attention_inputs_exactly_with_motion_attention(self):
        with self.assertRaisesRegex(ValueError, "exactly when attention='motion'"):
            video_lstm.ConvALSTM(attention="motion").build((2, 3, 7, 7, 8))
        with self.assertRaisesRegex(ValueError, "exactly when attention='motion'"):
            video_lstm.ConvALSTM().build((2, 3, 7, 7, 8), (2, 3, 7, 7, 8))
        layer = built_layer("motion")
        with self.assertRaisesRegex(ValueError, "exactly when attention='motion'"):
            layer(np.ones((1, 2, 4, 4, 3), "float32"))

    def test_attention_inputs_of_another_grid(self):
        with self.assertRaisesRegex(ValueError, "the inputs' height and width"):
            video_lstm.ConvALSTM(attention="motion").build(
                (2, 3, 7, 7, 8), (2, 3, 14, 14, 8)
            )

    def test_attention_inputs_of_wrong_rank(self):
        with self.assertRaisesRegex(ValueError, "attention_inputs expects inputs"):
            video_lstm.ConvALSTM(attention="motion").build(
                (2, 3, 7, 7, 8), (2, 7, 7, 8)
            )


if __name__ == "__main__":
    absltest.main()
