"""Two worker processes train the same model as one process with their batch.

Two processes on 127.0.0.1, each with its own `TF_CONFIG`, run
`experiment.train` with `train_stream.distribute = 'multi_worker'`
(`MultiWorkerMirroredStrategy`; on CPUs its collectives are RING over gRPC)
and 2 videos per worker per sub-batch. The reference is one process with 4,
the same global batch. Also: the non-chief writes nothing into the workdir,
killing a worker and restarting the job resumes from the last checkpoint, and
bad `distribute` values fail in one line that names the binding.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from unittest import mock

from absl.testing import absltest
import gin
import keras
import numpy as np
import pytest
import tensorflow as tf

from avlad_tf.training import checkpointing
from avlad_tf.training import distribution
from avlad_tf.training import experiment
from tests import testing
from tests.training import tiny

# Stage 1 checkpoints after updates 2 and 3, stage 2 after update 2.
_RUN = """
train_stream.stage_steps = (3, 2)
train_stream.checkpoint_every = 2
train_stream.assignments_every = 100
"""
_WORKER_BATCH = 2
# The global batch's mean gradient is a sum over the two workers' halves here
# and over all four videos at once there: float32 additions in another order,
# ~1e-7 relative per gradient. Through 5 Adam updates the weights then differ
# by at most ~1e-8 (seen: 8e-9 on weights of size ~0.05-800); the tolerance
# leaves 100x room and stays 1000x below what the last 3 updates move.
_RTOL, _ATOL = 1e-5, 1e-6
_TIMEOUT = 240


def _worker_main(workdir, data_dir, stop):
    """A worker process: the tiny run, multi-worker; dies after update `stop`
    (`[stage, step]` or `null`)."""
    stop = json.loads(stop)

    def callback(*, stream, stage, step):
        del stream
        print(f"UPDATE {stage} {step}", flush=True)
        if [stage, step] == stop:
            os._exit(3)  # killed: no cleanup of any kind

    tiny.configure(
        _RUN + "train_stream.distribute = 'multi_worker'\n"
        f"train_stream.batch_size = {_WORKER_BATCH}"
    )
    experiment.train(workdir=workdir, data_dir=data_dir, step_callback=callback)
    print("WORKER_DONE", flush=True)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _weights(workdir):
    path = os.path.join(workdir, "rgb", "model.keras")
    return {v.path: v.numpy() for v in keras.saving.load_model(path).variables}


@pytest.mark.slow
class MultiWorkerTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = testing.class_tempdir(cls)
        cls.data_dir = tiny.write_data(os.path.join(cls.root, "data"))
        # One process, the two workers' global batch.
        cls.reference_dir = os.path.join(cls.root, "reference")
        tiny.configure(_RUN + f"train_stream.batch_size = {2 * _WORKER_BATCH}")
        experiment.train(workdir=cls.reference_dir, data_dir=cls.data_dir)
        gin.clear_config()
        cls.reference = _weights(cls.reference_dir)

    def tearDown(self):
        gin.clear_config()
        super().tearDown()

    def start_job(self, workdirs, *, name, stops=None):
        """Starts one process per workdir (index 0 is the chief)."""
        stops = stops or [None] * len(workdirs)
        hosts = [f"127.0.0.1:{port}" for port in _free_ports(len(workdirs))]
        processes = []
        for index, workdir in enumerate(workdirs):
            tmp = os.path.join(self.root, f"{name}_tmp{index}")
            os.makedirs(tmp)
            tf_config = {
                "cluster": {"worker": hosts},
                "task": {"type": "worker", "index": index},
            }
            env = dict(
                os.environ,
                PYTHONPATH=testing.REPO,
                TF_CONFIG=json.dumps(tf_config),
                CUDA_VISIBLE_DEVICES="",
                TF_CPP_MIN_LOG_LEVEL="2",
                TMPDIR=tmp,
            )
            log = open(os.path.join(self.root, f"{name}_{index}.log"), "w")
            self.addCleanup(log.close)
            command = [sys.executable, "-m", "tests.training.multi_worker_test"]
            command += ["worker", workdir, self.data_dir, json.dumps(stops[index])]
            processes.append(
                subprocess.Popen(
                    command, cwd=testing.REPO, env=env, stdout=log, stderr=log
                )
            )
            self.addCleanup(processes[-1].kill)
        return processes

    def log(self, name, index):
        with open(os.path.join(self.root, f"{name}_{index}.log")) as f:
            return f.read()

    def updates(self, name, index):
        """The `(stage, step)` of each update a worker ran, in order."""
        return [
            tuple(int(n) for n in line.split()[1:])
            for line in self.log(name, index).splitlines()
            if line.startswith("UPDATE ")
        ]

    def finish(self, processes, name):
        for index, process in enumerate(processes):
            process.wait(timeout=_TIMEOUT)
            self.assertEqual(process.returncode, 0, self.log(name, index)[-4000:])
            self.assertIn("WORKER_DONE", self.log(name, index))

    def assert_matches_reference(self, workdir):
        weights = _weights(workdir)
        self.assertEqual(sorted(weights), sorted(self.reference))
        for path, value in self.reference.items():
            np.testing.assert_allclose(
                weights[path], value, rtol=_RTOL, atol=_ATOL, err_msg=path
            )

    def test_two_workers_equal_one_process(self):
        workdir = os.path.join(self.root, "two_workers")
        # Any write of the non-chief below its workdir would fail: the path
        # runs through a regular file.
        blocker = os.path.join(self.root, "a_file")
        open(blocker, "w").close()
        processes = self.start_job(
            [workdir, os.path.join(blocker, "workdir")], name="two"
        )
        self.finish(processes, "two")
        self.assert_matches_reference(workdir)
        # The last three updates moved the weights well beyond the tolerance.
        stage1 = checkpointing.stage_directory(self.reference_dir, "rgb", 1)
        early = tf.train.load_checkpoint(os.path.join(stage1, "ckpt-2")).get_tensor(
            "model_variables/logits.Skernel/.ATTRIBUTES/VARIABLE_VALUE"
        )
        moved = np.abs(early - self.reference["logits/kernel"]).max()
        self.assertGreater(moved, 1000 * _ATOL)
        # The non-chief's temporary directory is gone.
        self.assertEqual(os.listdir(os.path.join(self.root, "two_tmp1")), [])
        with open(os.path.join(workdir, "rgb", "train_metrics.jsonl")) as f:
            steps = [json.loads(line)["global_step"] for line in f]
        self.assertEqual(steps, [1, 2, 3, 4, 5])

    def test_killed_worker_resumes_from_the_last_checkpoint(self):
        workdir = os.path.join(self.root, "killed")
        chief, worker = self.start_job([workdir] * 2, name="kill", stops=[None, [1, 2]])
        self.assertEqual(worker.wait(timeout=_TIMEOUT), 3, self.log("kill", 1)[-4000:])
        # The chief saves update 2 and then waits for the dead worker in
        # update 3: ckpt-2 is the last checkpoint.
        stage1 = checkpointing.stage_directory(workdir, "rgb", 1)
        deadline = time.time() + _TIMEOUT
        while not os.path.exists(os.path.join(stage1, "checkpoint")):
            self.assertLess(time.time(), deadline, self.log("kill", 0)[-4000:])
            time.sleep(0.5)
        chief.send_signal(signal.SIGKILL)
        chief.wait(timeout=_TIMEOUT)
        self.assertEqual(os.path.basename(tf.train.latest_checkpoint(stage1)), "ckpt-2")

        self.finish(self.start_job([workdir] * 2, name="resumed"), "resumed")
        remaining = [(1, 3), (2, 1), (2, 2)]
        self.assertEqual(self.updates("resumed", 0), remaining)
        self.assertEqual(self.updates("resumed", 1), remaining)
        self.assert_matches_reference(workdir)
        # Each update logged once over both jobs.
        with open(os.path.join(workdir, "rgb", "train_metrics.jsonl")) as f:
            steps = [json.loads(line)["global_step"] for line in f]
        self.assertEqual(steps, [1, 2, 3, 4, 5])


class DistributeValueTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        self.addCleanup(gin.clear_config)

    def test_values(self):
        cluster = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"index": 0}}
        one = {"cluster": {"worker": ["a:1"]}, "task": {"index": 0}}
        cases = [
            (False, {}, 0, "none"),
            (True, {}, 0, "mirrored"),
            ("none", cluster, 2, "none"),
            ("multi_worker", cluster, 0, "multi_worker"),
            ("auto", cluster, 0, "multi_worker"),
            ("auto", one, 2, "mirrored"),
            ("auto", {}, 1, "none"),
        ]
        for value, tf_config, gpus, kind in cases:
            self.assertEqual(
                distribution.resolve(value, tf_config=tf_config, num_gpus=gpus),
                kind,
                (value, tf_config, gpus),
            )

    def test_bad_value_names_the_binding(self):
        tiny.configure("train_stream.distribute = 'ring'")
        workdir = self.create_tempdir().full_path
        # Refused first: before the dataset is read or the workdir written.
        with self.assertRaisesRegex(
            ValueError,
            r"^rgb/train_stream\.distribute = 'ring': must be 'none', "
            r"'mirrored', 'multi_worker' or 'auto'",
        ):
            experiment.train(workdir=workdir, data_dir="/no/such/dataset")
        self.assertEqual(os.listdir(workdir), [])
        for value in (2, None, ["mirrored"]):
            with self.assertRaisesRegex(ValueError, "train_stream.distribute"):
                distribution.resolve(value, tf_config={})

    def test_multi_worker_needs_tf_config(self):
        with mock.patch.dict(os.environ, {"TF_CONFIG": ""}):
            with self.assertRaisesRegex(
                ValueError, "'multi_worker' needs TF_CONFIG naming the cluster"
            ):
                distribution.resolve("multi_worker")


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        _worker_main(*sys.argv[2:5])
    else:
        absltest.main()
