"""Batch norm on two replicas gives the one-process update (sync_batch_norm).

Two logical CPU devices must be configured before TensorFlow initialises its
runtime, so the checks run in a fresh child process (this file run as a
program), as in `distribute_test.py`. The child prints the saved model's
path; the parent then loads it under JAX, where `synchronized=True` raises.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import types
from unittest import mock

from absl.testing import absltest
import numpy as np
import pytest

from tests import testing

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUM_CLASSES = 3
SHAPE = (3, 2, 2, 8)  # (T, H, W, D) per video


def _model():
    """The res-inception aggregator (trainable BN) and a classifier."""
    import keras

    from avlad_tf.layers import res_inception

    inputs = keras.Input(SHAPE, name="rgb")
    pooled = res_inception.ResInceptionPooling(kernel_sizes=(2, 3))(inputs)
    logits = keras.layers.Dense(NUM_CLASSES, name="logits")(pooled)
    return keras.Model({"rgb": inputs}, logits)


def _dataset():
    """Two sub-batches of 4 videos; the second replica's half of each
    (videos 2 and 3) is shifted, so per-replica batch statistics differ."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(8,) + SHAPE).astype(np.float32)
    x[[2, 3, 6, 7]] = 3.0 * x[[2, 3, 6, 7]] + 5.0
    y = np.eye(NUM_CLASSES, dtype=np.float32)[[0, 1, 2, 0, 1, 2, 0, 1]]
    return tf.data.Dataset.from_tensor_slices(({"rgb": x}, y)).batch(4)


def _train(strategy, initial):
    """One update of two accumulated sub-batches; returns the model."""
    import keras

    from avlad_tf.training import step

    with strategy.scope():
        model = _model()
        model.set_weights(initial)
        optimizer = keras.optimizers.SGD(learning_rate=0.5)
        optimizer.build(model.trainable_variables)
        update = step.make_update_fn(
            model=model,
            optimizer=optimizer,
            strategy=strategy,
            batch_size=4 // strategy.num_replicas_in_sync,
            accumulation_steps=2,
            clip_norm=1.0,
            jit_compile=True,
            multi_label=False,
        )
        update(iter(_dataset()))
    return model


def _moving_statistics(model, strategy):
    """Each replica's copy of the BN moving statistics, flattened:
    `(replicas, n)`."""
    per_variable = [
        strategy.experimental_local_results(v.value)
        for v in model.non_trainable_variables
    ]
    return np.array(
        [np.concatenate([np.ravel(c) for c in copies]) for copies in zip(*per_variable)]
    )


def _child(out_dir):
    """Runs in the child process; any failure is a non-zero exit."""
    import keras
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )
    from avlad_tf.training import sync_batch_norm

    one = tf.distribute.get_strategy()
    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    keras.utils.set_random_seed(0)
    initial = _model().get_weights()
    reference = _train(one, initial)
    expected = _moving_statistics(reference, one)[0]

    # Float32 sums in another order: agreement to about 1e-7.
    model = _train(two, initial)
    for got, want in zip(model.trainable_variables, reference.trainable_variables):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    for replica in _moving_statistics(model, two):  # every replica's copy
        np.testing.assert_allclose(replica, expected, rtol=1e-5, atol=1e-6)

    # Without synchronization each replica normalises, and its copy of the
    # moving statistics follows, its own half: another update.
    with mock.patch.object(sync_batch_norm, "layers_to_sync", return_value=[]):
        unsynced = _train(two, initial)
    copies = _moving_statistics(unsynced, two)
    assert np.abs(copies[0] - copies[1]).max() > 0.1, copies
    gap = max(
        np.abs(got.numpy() - want.numpy()).max()
        for got, want in zip(
            unsynced.trainable_variables, reference.trainable_variables
        )
    )
    assert gap > 1e-2, gap

    # Only the traced graph synchronizes: the config stays loadable by JAX.
    bn_configs = [
        l.get_config()
        for l in model._flatten_layers()
        if isinstance(l, keras.layers.BatchNormalization)
    ]
    assert bn_configs and not any(c["synchronized"] for c in bn_configs)
    path = os.path.join(out_dir, "model.keras")
    model.save(path)
    print(json.dumps({"path": path, "logits": _predict(model)}))


def _predict(model):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2,) + SHAPE).astype(np.float32)
    return np.asarray(model.predict({"rgb": x}, verbose=0)).tolist()


_JAX_SCRIPT = r"""
import json
import keras
from avlad_tf.layers import res_inception  # registers the layer
from tests.training import sync_batch_norm_test as t
model = keras.saving.load_model({path!r})
print(json.dumps({{"logits": t._predict(model)}}))
"""


class LayersToSyncTest(absltest.TestCase):
    def test_trainable_batch_norms_on_several_replicas_only(self):
        import keras

        from avlad_tf.training import sync_batch_norm

        model = _model()
        frozen = keras.layers.BatchNormalization(trainable=False)
        frozen.build((None, NUM_CLASSES))
        model = keras.Sequential([model, frozen])
        two = types.SimpleNamespace(num_replicas_in_sync=2)
        one = types.SimpleNamespace(num_replicas_in_sync=1)
        (nested,) = sync_batch_norm.layers_to_sync(model, two)  # not `frozen`
        self.assertEqual(nested.name, "batch_norm")
        self.assertEqual(sync_batch_norm.layers_to_sync(model, one), [])
        with sync_batch_norm.synchronized([nested]):
            self.assertTrue(nested.synchronized)
        self.assertFalse(nested.synchronized)


class SyncBatchNormTest(absltest.TestCase):
    @pytest.mark.slow
    def test_two_replicas_give_the_one_process_update(self):
        env = dict(os.environ, PYTHONPATH=_REPO, TF_CPP_MIN_LOG_LEVEL="2")
        out_dir = tempfile.mkdtemp(prefix="sync_bn_")
        self.addCleanup(shutil.rmtree, out_dir, ignore_errors=True)
        result = subprocess.run(
            [sys.executable, "-m", "tests.training.sync_batch_norm_test", out_dir],
            cwd=_REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.assertEqual(
            result.returncode, 0, result.stdout[-3000:] + result.stderr[-5000:]
        )
        trained = json.loads(result.stdout.strip().splitlines()[-1])
        # The saved model loads and predicts alike under JAX.
        loaded = testing.run_on_backend(_JAX_SCRIPT.format(path=trained["path"]), "jax")
        np.testing.assert_allclose(loaded["logits"], trained["logits"], atol=1e-5)


if __name__ == "__main__":
    if len(sys.argv) == 2 and not sys.argv[1].startswith("-"):
        _child(sys.argv[1])
    else:
        absltest.main()
