"""Training under `tf.distribute.MirroredStrategy` on two logical CPU devices.

The logical devices must be configured before TensorFlow initialises its
runtime, so the checks run in a fresh child process (this file run as a
program) and the device set-up never leaks into other tests.
"""

import os
import subprocess
import sys
import tempfile

from absl.testing import absltest
import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _child():
    """Runs in the child process; any failure is a non-zero exit."""
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )

    from avlad_tf.training import distribution
    from avlad_tf.training import experiment
    from tests.training import step_test
    from tests.training import tiny

    devices = ["/cpu:0", "/cpu:1"]
    # The loop's own (cached) strategy: the full run below then also checks
    # that a second use of it in one process works (the flow stream).
    strategy = distribution.make_strategy("mirrored", devices)
    assert strategy.num_replicas_in_sync == 2
    # Our accumulation + clipping with each replica taking half of every
    # sub-batch equals the single-device hand computation, with XLA.
    checker = step_test.AccumulationTest("test_clip_each_sub_batch_then_average")
    checker.check(strategy, jit_compile=True)

    # The full two-stage loop, distributed, with XLA.
    data_dir = tiny.write_data(tempfile.mkdtemp())
    workdir = tempfile.mkdtemp()
    tiny.configure(
        "train_stream.distribute = True\n"
        f"train_stream.devices = {devices!r}\n"
        "train_stream.batch_size = 1\n"
        "train_stream.jit_compile = True\n"
        "train_stream.stage_steps = (2, 1)"
    )
    experiment.train(workdir=workdir, data_dir=data_dir)
    for stage, last in ((1, 2), (2, 1)):
        path = tf.train.latest_checkpoint(
            os.path.join(workdir, "rgb", "checkpoints", f"stage{stage}")
        )
        assert path and path.endswith(f"ckpt-{last}"), path
    assert os.path.exists(os.path.join(workdir, "rgb", "model.keras"))
    print("DISTRIBUTED_OK")


class MirroredStrategyTest(absltest.TestCase):
    @pytest.mark.slow
    def test_two_logical_cpus(self):
        env = dict(os.environ, PYTHONPATH=_REPO, TF_CPP_MIN_LOG_LEVEL="2")
        result = subprocess.run(
            [sys.executable, "-m", "tests.training.distribute_test", "child"],
            cwd=_REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=500,
        )
        self.assertEqual(
            result.returncode, 0, result.stdout[-3000:] + result.stderr[-5000:]
        )
        self.assertIn("DISTRIBUTED_OK", result.stdout)


if __name__ == "__main__":
    if sys.argv[1:] == ["child"]:
        _child()
    else:
        absltest.main()
