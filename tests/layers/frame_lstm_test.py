"""Tests of the frame LSTM (Ng et al. 2015) and its per-step loss."""

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np
import pytest

from avlad_tf.layers import frame_lstm
from tests import testing


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_frame_lstm(x, cells, weights):
    """ReLU, spatial mean, stacked LSTMs (Keras gate order i, f, c, o), one
    loop per step; returns the per-step outputs and their weighted mean.

    x: (B, T, H, W, D); cells: [(kernel, recurrent_kernel, bias), ...];
    weights: (T,).
    """
    batch, time = x.shape[:2]
    seq = np.maximum(x.astype(np.float64), 0.0).mean(axis=(2, 3))  # (B, T, D)
    for kernel, recurrent, bias in cells:
        units = recurrent.shape[0]
        out = np.zeros((batch, time, units))
        for b in range(batch):
            h, c = np.zeros(units), np.zeros(units)
            for t in range(time):
                z = seq[b, t] @ kernel + h @ recurrent + bias
                i, f, g, o = np.split(z, 4)
                c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
                h = sigmoid(o) * np.tanh(c)
                out[b, t] = h
        seq = out
    return seq, np.einsum("bth,t->bh", seq, weights)


def built_lstm(depth=4, **kwargs):
    layer = frame_lstm.FrameLSTM(**{"units": 3, "num_layers": 2, **kwargs})
    layer.build((None, None, None, None, depth))
    rng = np.random.default_rng(0)
    # Non-trivial weights everywhere, biases included.
    layer.set_weights([rng.normal(0.0, 0.5, w.shape) for w in layer.get_weights()])
    return layer


def logsumexp(x, axis=-1):
    top = x.max(axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.exp(x - top).sum(axis=axis))


def weighted_per_step_softmax_ce(labels, per_step, weights):
    """sum_t w_t CE(z_t, y), averaged over the batch; a loop over steps."""
    total = 0.0
    for t, w in enumerate(weights):
        log_probs = per_step[:, t] - logsumexp(per_step[:, t])[:, None]
        total += w * -(labels * log_probs).sum(-1)
    return total.mean()


def weighted_per_step_sigmoid_ce(labels, per_step, weights):
    total = 0.0
    for t, w in enumerate(weights):
        z = per_step[:, t]
        bce = np.maximum(z, 0) - z * labels + np.log1p(np.exp(-np.abs(z)))
        total += w * bce.sum(-1)
    return total.mean()


class TimeWeightsTest(testing.TestCase):
    def test_uniform_and_linear(self):
        np.testing.assert_allclose(
            numpy(frame_lstm.time_weights(4, "uniform")), [0.25] * 4
        )
        np.testing.assert_allclose(
            numpy(frame_lstm.time_weights(4, "linear")), [0.1, 0.2, 0.3, 0.4]
        )

    def test_bad_weighting(self):
        with self.assertRaisesRegex(ValueError, "weighting must be one of"):
            frame_lstm.time_weights(3, "exponential")


class FrameLSTMTest(testing.TestCase):
    @parameterized.parameters("uniform", "linear")
    def test_matches_numpy_reference(self, weighting):
        x = np.random.default_rng(1).normal(size=(2, 4, 2, 3, 4))
        layer = built_lstm(weighting=weighting)
        cells = [tuple(numpy(w) for w in lstm.weights) for lstm in layer.lstms]
        weights = numpy(frame_lstm.time_weights(4, weighting))
        expected_steps, expected = numpy_frame_lstm(x, cells, weights)
        pooled, steps = layer(x.astype(np.float32), return_sequences=True)
        np.testing.assert_allclose(numpy(steps), expected_steps, atol=1e-5)
        np.testing.assert_allclose(numpy(pooled), expected, atol=1e-5)
        np.testing.assert_allclose(
            numpy(layer(x.astype(np.float32))), expected, atol=1e-5
        )

    def test_later_frames_do_not_change_earlier_steps(self):
        x = np.random.default_rng(2).normal(size=(1, 5, 2, 2, 4)).astype("float32")
        changed = x.copy()
        changed[:, 3:] += 1.0
        layer = built_lstm()
        _, steps = layer(x, return_sequences=True)
        _, changed_steps = layer(changed, return_sequences=True)
        np.testing.assert_allclose(
            numpy(steps)[:, :3], numpy(changed_steps)[:, :3], atol=1e-6
        )
        self.assertFalse(np.allclose(numpy(steps)[:, 3:], numpy(changed_steps)[:, 3:]))

    def test_reads_rectified_spatial_means(self):
        # Negative activations are cut by ReLU; positions are averaged.
        x = np.random.default_rng(3).normal(size=(1, 3, 2, 2, 4)).astype("float32")
        layer = built_lstm()
        rearranged = np.minimum(x, 0.0) * 5.0 + np.maximum(x, 0.0)
        rearranged = rearranged[:, :, ::-1, ::-1]
        np.testing.assert_allclose(numpy(layer(x)), numpy(layer(rearranged)), atol=1e-6)

    def test_frame_pooling_max_reads_each_frames_spatial_max(self):
        # The mean dilutes a small region's activation by h·w; the max keeps
        # it, wherever it is.
        x = np.random.default_rng(4).normal(size=(2, 3, 2, 2, 4)).astype("float32")
        vectors = frame_lstm.rectified_frame_means(x, "float32", "max")
        np.testing.assert_allclose(numpy(vectors), np.maximum(x, 0).max(axis=(2, 3)))
        layer = built_lstm(frame_pooling="max")
        moved = x[:, :, ::-1, ::-1]
        np.testing.assert_allclose(numpy(layer(x)), numpy(layer(moved)), atol=1e-6)
        self.assertEqual(layer.get_config()["frame_pooling"], "max")
        mean_layer = built_lstm()
        self.assertFalse(np.allclose(numpy(mean_layer(x)), numpy(layer(x))))

    def test_build_creates_three_weights_per_layer(self):
        layer = frame_lstm.FrameLSTM(units=5, num_layers=3)
        layer.build((None, None, 2, 2, 6))
        shapes = [tuple(w.shape) for w in layer.trainable_weights]
        self.assertEqual(
            shapes,
            [(6, 20), (5, 20), (20,)] + [(5, 20), (5, 20), (20,)] * 2,
        )

    def test_symbolic_and_eager_calls(self):
        self.assert_symbolic_call(
            frame_lstm.FrameLSTM(units=6, num_layers=2),
            (None, None, 7, 7, 8),
            (None, 6),
        )
        pooled, steps = frame_lstm.FrameLSTM(units=6, num_layers=2)(
            keras.KerasTensor((None, None, 1, 1, 8)), return_sequences=True
        )
        self.assertEqual(
            (tuple(pooled.shape), tuple(steps.shape)), ((None, 6), (None, None, 6))
        )
        out = frame_lstm.FrameLSTM(units=6, num_layers=1)(np.ones((3, 2, 1, 1, 8)))
        self.assertEqual(tuple(out.shape), (3, 6))

    def test_weight_decay_is_slims_on_each_lstm_kernel(self):
        layer = built_lstm(weight_decay=5e-4)
        self.assertEqual(layer.get_config()["weight_decay"], 5e-4)
        kernels = [
            w
            for lstm in layer.lstms
            for w in (lstm.cell.kernel, lstm.cell.recurrent_kernel)
        ]
        # slim: decay · Σw² / 2 per kernel; the biases are not decayed.
        expected = sum(5e-4 * np.sum(numpy(k) ** 2) / 2 for k in kernels)
        self.assertAlmostEqual(float(sum(layer.losses)), expected, places=5)
        self.assertEqual(built_lstm().losses, [])
        with self.assertRaisesRegex(ValueError, "weight_decay must be >= 0"):
            frame_lstm.FrameLSTM(weight_decay=-1.0)

    def test_serialization_round_trip(self):
        layer = frame_lstm.FrameLSTM(
            units=7,
            num_layers=2,
            dropout_rate=0.5,
            weighting="linear",
            name="lstm_pool",
            trainable=False,
        )
        self.assert_serialization_round_trip(layer)
        config = layer.get_config()
        self.assertEqual(
            tuple(
                config[k] for k in ("units", "num_layers", "dropout_rate", "weighting")
            ),
            (7, 2, 0.5, "linear"),
        )

    def test_keras_file_round_trip(self):
        x = keras.Input((3, 2, 2, 4))
        model = keras.Model(
            x, frame_lstm.FrameLSTM(units=3, num_layers=2, weighting="linear")(x)
        )
        inputs = np.random.default_rng(4).normal(size=(2, 3, 2, 2, 4))
        self.assert_keras_file_round_trip(model, inputs)

    @parameterized.parameters(True, False)
    @pytest.mark.slow
    def test_fit_step(self, jit_compile):
        inputs = np.random.default_rng(5).normal(size=(2, 3, 2, 2, 4))
        model = self.run_fit_step(
            lambda: frame_lstm.FrameLSTM(units=4, num_layers=2, dropout_rate=0.2),
            inputs.astype(np.float32),
            5,
            jit_compile,
        )
        self.assertLen(model.layers[1].trainable_weights, 6)

    @pytest.mark.slow
    def test_mixed_precision(self):
        keras.mixed_precision.set_global_policy("mixed_float16")
        layer = frame_lstm.FrameLSTM(units=4, num_layers=2)
        # float16's max is 65504: a float16 spatial sum of this overflows.
        x = keras.ops.full((1, 2, 8, 8, 4), 60000.0, dtype="float16")
        out = layer(x)
        self.assertEqual(layer.compute_dtype, "float16")
        self.assertTrue(np.all(np.isfinite(numpy(out))))
        inputs = np.random.default_rng(6).normal(size=(2, 2, 2, 2, 4))
        self.run_fit_step(
            lambda: frame_lstm.FrameLSTM(units=4, num_layers=2),
            inputs.astype(np.float32),
            5,
        )


class TimeAveragedLogitsTest(testing.TestCase):
    def per_step_logits(self, seed=7):
        return np.random.default_rng(seed).normal(0.0, 3.0, size=(3, 4, 5))

    @parameterized.product(
        weighting=("uniform", "linear"), labels=("one_hot", "smoothed")
    )
    def test_softmax_gap_makes_the_loss_per_step(self, weighting, labels):
        z = self.per_step_logits()
        y = np.eye(5)[[0, 3, 4]]
        if labels == "smoothed":
            y = 0.9 * y + 0.1 / 5  # any target distribution
        layer = frame_lstm.TimeAveragedLogits(weighting=weighting)
        combined = numpy(layer(z.astype(np.float32)))
        weights = numpy(frame_lstm.time_weights(4, weighting))
        np.testing.assert_allclose(
            combined, np.einsum("btc,t->bc", z, weights), atol=1e-5
        )
        ce_of_combined = weighted_per_step_softmax_ce(y, combined[:, None], [1.0])
        (gap,) = layer.losses
        self.assertGreater(float(gap), 0.0)
        self.assertAlmostEqual(
            ce_of_combined + float(gap),
            weighted_per_step_softmax_ce(y, z, weights),
            places=4,
        )

    @parameterized.parameters("uniform", "linear")
    def test_sigmoid_gap_makes_the_loss_per_step(self, weighting):
        z = self.per_step_logits()
        y = np.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 1], [1, 1, 1, 0, 0]], float)
        layer = frame_lstm.TimeAveragedLogits(
            weighting=weighting, per_step_loss="sigmoid"
        )
        combined = numpy(layer(z.astype(np.float32)))
        weights = numpy(frame_lstm.time_weights(4, weighting))
        (gap,) = layer.losses
        self.assertAlmostEqual(
            weighted_per_step_sigmoid_ce(y, combined[:, None], [1.0]) + float(gap),
            weighted_per_step_sigmoid_ce(y, z, weights),
            places=4,
        )

    def test_training_step_loss_is_the_per_step_loss(self):
        # The project's loss (step.classification_loss + model.losses) on a
        # per-step classifier: what stream.build_stream_model would wire.
        from avlad_tf.training import step

        x = keras.Input((None, 2, 2, 4))
        _, steps = frame_lstm.FrameLSTM(units=6, num_layers=2)(x, return_sequences=True)
        per_step = keras.layers.Dense(5, name="logits")(steps)  # (B, T, C)
        logits = frame_lstm.TimeAveragedLogits()(per_step)
        model = keras.Model(x, logits)
        per_step_model = keras.Model(x, per_step)
        inputs = np.random.default_rng(8).normal(size=(3, 4, 2, 2, 4))
        labels = np.eye(5, dtype="float32")[[1, 2, 4]]
        out = model(inputs.astype("float32"), training=True)
        loss = float(step.classification_loss(labels, out, multi_label=False))
        loss += sum(float(l) for l in model.losses)
        expected = weighted_per_step_softmax_ce(
            labels, numpy(per_step_model(inputs.astype("float32"))), [0.25] * 4
        )
        self.assertAlmostEqual(loss, expected, places=4)

    def test_fit_loss_is_the_per_step_loss(self):
        x = keras.Input((4, 5))
        model = keras.Model(x, frame_lstm.TimeAveragedLogits(weighting="linear")(x))
        model.compile(
            loss=keras.losses.CategoricalCrossentropy(from_logits=True),
            jit_compile=True,
        )
        z = self.per_step_logits()
        y = np.eye(5)[[0, 3, 4]]
        expected = weighted_per_step_softmax_ce(y, z, [0.1, 0.2, 0.3, 0.4])
        self.assertAlmostEqual(
            model.evaluate(z, y, batch_size=3, verbose=0), expected, places=4
        )

    def test_equal_steps_have_no_gap(self):
        z = np.repeat(self.per_step_logits()[:, :1], 4, axis=1)
        layer = frame_lstm.TimeAveragedLogits()
        np.testing.assert_allclose(numpy(layer(z)), z[:, 0], atol=1e-5)
        self.assertAlmostEqual(float(layer.losses[0]), 0.0, places=5)

    def test_no_per_step_loss_adds_nothing(self):
        layer = frame_lstm.TimeAveragedLogits(per_step_loss=None)
        layer(self.per_step_logits())
        self.assertEmpty(layer.losses)

    def test_symbolic_call_and_serialization(self):
        self.assert_symbolic_call(
            frame_lstm.TimeAveragedLogits(), (None, None, 7), (None, 7)
        )
        self.assert_serialization_round_trip(
            frame_lstm.TimeAveragedLogits(
                weighting="linear", per_step_loss="sigmoid", name="combine"
            )
        )

    def test_keras_file_round_trip(self):
        x = keras.Input((3, 4))
        model = keras.Model(x, frame_lstm.TimeAveragedLogits(weighting="linear")(x))
        self.assert_keras_file_round_trip(model, self.per_step_logits()[:, :3, :4])

    def test_float32_under_mixed_precision(self):
        keras.mixed_precision.set_global_policy("mixed_float16")
        layer = frame_lstm.TimeAveragedLogits()
        out = layer(keras.ops.full((1, 3, 4), 300.0, dtype="float16"))
        self.assertEqual(layer.compute_dtype, "float32")
        self.assertEqual(out.dtype, "float32")
        self.assertTrue(np.isfinite(float(layer.losses[0])))


class FrameLSTMErrorTest(testing.TestCase):
    @parameterized.parameters(0, -1, 2.5, True)
    def test_bad_units(self, units):
        with self.assertRaisesRegex(ValueError, "units must be a positive int"):
            frame_lstm.FrameLSTM(units=units)

    @parameterized.parameters(0, 1.0, False)
    def test_bad_num_layers(self, num_layers):
        with self.assertRaisesRegex(ValueError, "num_layers must be a positive int"):
            frame_lstm.FrameLSTM(num_layers=num_layers)

    @parameterized.parameters(1.0, -0.5)
    def test_bad_dropout_rate(self, rate):
        with self.assertRaisesRegex(ValueError, r"dropout_rate must be in \[0, 1\)"):
            frame_lstm.FrameLSTM(dropout_rate=rate)

    def test_bad_weighting(self):
        with self.assertRaisesRegex(ValueError, "weighting must be one of"):
            frame_lstm.FrameLSTM(weighting="last")

    def test_wrong_rank(self):
        with self.assertRaisesRegex(ValueError, r"rank 5.*\(2, 25, 512\)"):
            frame_lstm.FrameLSTM().build((2, 25, 512))

    def test_unknown_channels(self):
        with self.assertRaisesRegex(ValueError, "known channel dimension"):
            frame_lstm.FrameLSTM().build((2, 25, 7, 7, None))

    def test_bad_frame_pooling(self):
        with self.assertRaisesRegex(ValueError, "frame_pooling must be one of"):
            frame_lstm.FrameLSTM(frame_pooling="sum")

    def test_bad_per_step_loss(self):
        with self.assertRaisesRegex(ValueError, "per_step_loss must be one of"):
            frame_lstm.TimeAveragedLogits(per_step_loss="mse")

    def test_bad_combination_weighting(self):
        with self.assertRaisesRegex(ValueError, "weighting must be one of"):
            frame_lstm.TimeAveragedLogits(weighting="max")

    def test_per_step_logits_of_wrong_rank(self):
        with self.assertRaisesRegex(ValueError, r"rank 3.*\(2, 5\)"):
            frame_lstm.TimeAveragedLogits().build((2, 5))


if __name__ == "__main__":
    absltest.main()
