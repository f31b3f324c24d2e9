"""Accumulation and per-tensor clipping of `training.step` against NumPy.

The release clips each sub-batch's gradient per tensor and then averages
(docs/RELEASE.md Sec. 7.2, 12.11); averaging first would give another
update, which the test also rules out.
"""

from absl.testing import absltest
import keras
import numpy as np
import tensorflow as tf

from avlad_tf.training import step as step_lib

NUM_CLASSES = 3
DIM = 4


def linear_model():
    """logits = x W + b: gradients have a closed form."""
    inputs = keras.Input((DIM,), name="rgb")
    logits = keras.layers.Dense(NUM_CLASSES, name="logits")(inputs)
    return keras.Model({"rgb": inputs}, logits)


def numpy_gradients(w, b, x, y):
    """Gradient of the batch-mean softmax cross-entropy w.r.t. W and b."""
    z = x @ w + b
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    d = (p - y) / len(x)  # (B, C)
    return x.T @ d, d.sum(0)


def clip(g, norm):
    n = np.linalg.norm(g)
    return g * (norm / n) if n > norm else g


def sub_batches():
    """Two sub-batches of 4 videos: one with a large, one a small gradient."""
    rng = np.random.default_rng(0)
    big = rng.normal(size=(4, DIM)).astype(np.float32) * 40.0
    small = rng.normal(size=(4, DIM)).astype(np.float32) * 0.1
    labels = np.eye(NUM_CLASSES, dtype=np.float32)[[0, 1, 2, 0]]
    return [(big, labels), (small, labels[::-1].copy())]


def dataset(batches):
    xs = np.concatenate([x for x, _ in batches])
    ys = np.concatenate([y for _, y in batches])
    ds = tf.data.Dataset.from_tensor_slices(({"rgb": xs}, ys))
    return ds.batch(len(batches[0][0]))


class AccumulationTest(absltest.TestCase):
    def run_update(self, strategy, *, jit_compile):
        keras.utils.set_random_seed(1)
        with strategy.scope():
            model = linear_model()
            optimizer = keras.optimizers.SGD(learning_rate=0.5)
            optimizer.build(model.trainable_variables)
        w0, b0 = (v.numpy() for v in model.trainable_variables)
        batches = sub_batches()
        update = step_lib.make_update_fn(
            model=model,
            optimizer=optimizer,
            strategy=strategy,
            batch_size=4 // strategy.num_replicas_in_sync,
            accumulation_steps=2,
            clip_norm=1.0,
            jit_compile=jit_compile,
            multi_label=False,
        )
        with strategy.scope():
            metrics = update(iter(dataset(batches)))
        w1, b1 = (v.numpy() for v in model.trainable_variables)
        return (w0, b0), (w1, b1), batches, metrics

    def check(self, strategy, *, jit_compile):
        (w0, b0), (w1, b1), batches, metrics = self.run_update(
            strategy, jit_compile=jit_compile
        )
        grads = [numpy_gradients(w0, b0, x, y) for x, y in batches]
        self.assertGreater(np.linalg.norm(grads[0][0]), 1.0)  # clipped
        self.assertLess(np.linalg.norm(grads[1][0]), 1.0)  # untouched
        clipped_mean = [
            np.mean([clip(g[i], 1.0) for g in grads], axis=0) for i in range(2)
        ]
        np.testing.assert_allclose(w1, w0 - 0.5 * clipped_mean[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b1, b0 - 0.5 * clipped_mean[1], rtol=1e-5, atol=1e-6)
        # Keras' order (average, then clip) is a different update.
        mean_clipped = clip(np.mean([g[0] for g in grads], axis=0), 1.0)
        self.assertGreater(np.abs(w0 - 0.5 * mean_clipped - w1).max(), 1e-3)
        self.assertAlmostEqual(
            float(metrics["grad_norm"]),
            float(np.sqrt(sum(np.sum(g**2) for g in clipped_mean))),
            places=4,
        )

    def test_clip_each_sub_batch_then_average(self):
        self.check(tf.distribute.get_strategy(), jit_compile=False)

    def test_same_under_xla(self):
        self.check(tf.distribute.get_strategy(), jit_compile=True)

    def test_weight_decay_is_a_loss_term(self):
        inputs = keras.Input((DIM,), name="rgb")
        logits = keras.layers.Dense(
            NUM_CLASSES,
            name="logits",
            use_bias=False,
            kernel_regularizer=keras.regularizers.L2(0.5),
        )(inputs)
        model = keras.Model({"rgb": inputs}, logits)
        optimizer = keras.optimizers.SGD(learning_rate=0.1)
        optimizer.build(model.trainable_variables)
        w0 = model.trainable_variables[0].numpy()
        x = np.zeros((2, DIM), np.float32)  # no data gradient at all
        y = np.eye(NUM_CLASSES, dtype=np.float32)[[0, 1]]
        ds = tf.data.Dataset.from_tensors(({"rgb": x}, y))
        update = step_lib.make_update_fn(
            model=model,
            optimizer=optimizer,
            strategy=tf.distribute.get_strategy(),
            batch_size=2,
            accumulation_steps=1,
            clip_norm=0,
            jit_compile=False,
            multi_label=False,
        )
        metrics = update(iter(ds))
        # d/dW of 0.5 * sum(W^2) is W.
        np.testing.assert_allclose(
            model.trainable_variables[0].numpy(), w0 - 0.1 * w0, rtol=1e-5
        )
        self.assertAlmostEqual(
            float(metrics["loss"]), np.log(NUM_CLASSES) + 0.5 * np.sum(w0**2), places=4
        )


if __name__ == "__main__":
    absltest.main()
