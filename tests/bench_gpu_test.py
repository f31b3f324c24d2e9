"""`bench/gpu.py --smoke` runs without TensorFlow and reports every measure.

The script is meant for a GPU machine with JAX and no TensorFlow, so it runs
here once, in a fresh interpreter on the JAX backend with `import tensorflow`
failing (`tests/no_tensorflow`), at its tiny --smoke sizes (about a minute on
2 cores). The tests read its JSON; no timing is asserted, only that every
rate was measured and every number is sane.
"""

import json
import math
import os
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized
import pytest

from tests import testing

PRESETS = ("opencv", "opencv_cuda")
FLOW_BATCHES = (1, 2)  # bench/gpu.py's --smoke sizes
# The flow streams: RGB's differ only in their 3 input channels (the default
# runs all four on a GPU).
STREAMS = ("flow", "i3d_flow")
PRECISIONS = ("mixed_bfloat16", "float32")


def run_smoke(output):
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    paths = [testing.NO_TENSORFLOW, testing.REPO]
    paths += [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    script = os.path.join(testing.REPO, "bench", "gpu.py")
    return subprocess.run(
        [
            sys.executable,
            script,
            "--smoke",
            # No part may stop for time: the budget guards a lent GPU's
            # minutes, and a loaded CPU must not turn rows into skips.
            "--budget_s=1000000",
            f"--streams={','.join(STREAMS)}",
            f"--output={output}",
        ],
        env=env,
        cwd=os.path.dirname(output),
        capture_output=True,
        text=True,
        timeout=1200,  # a hang, not a slow machine: about 140 s idle
        check=False,
    )


@pytest.mark.slow
class BenchGpuSmokeTest(parameterized.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        output = os.path.join(testing.class_tempdir(cls), "x.json")
        cls.result = run_smoke(output)
        if cls.result.returncode:
            raise AssertionError(
                f"bench/gpu.py --smoke failed:\n{cls.result.stderr[-3000:]}"
            )
        with open(output) as f:
            cls.report = json.load(f)

    def assert_cost_row(self, row):
        """Rates, times, FLOPs and MFU of a compiled jax step are sane."""
        self.assertGreater(row["videos_per_s"], 0)
        self.assertGreater(row["step_s"], 0)
        self.assertGreater(row["compile_s"], 0)
        self.assertGreater(row["flops"], 0)  # XLA's count: the MFU numerator
        self.assertGreater(row["compiled_bytes"], 0)
        if row["peak_flops"] is None:  # an unknown device: this CPU
            self.assertIsNone(row["mfu"])
        else:
            self.assertTrue(0 < row["mfu"] <= 1, row["mfu"])

    def test_runs_on_jax_without_tensorflow(self):
        settings = self.report["settings"]
        self.assertEqual(settings["backend"], "jax")
        self.assertTrue(settings["smoke"])
        self.assertFalse(self.report["tensorflow_imported"])
        self.assertTrue(settings["device_kind"])
        self.assertTrue(settings["jax"] and settings["keras"])

    def test_every_part_present_without_error(self):
        for part in ("flow", "vlad", "train"):
            self.assertIn(part, self.report)
            self.assertNotIn("error", self.report[part])
            self.assertGreater(self.report["part_wall_s"][part], 0)
        self.assertIn("largest batch, flow float32", self.result.stdout)

    @parameterized.product(preset=PRESETS, batch=FLOW_BATCHES)
    def test_flow_measured_and_accurate(self, preset, batch):
        rows = self.report["flow"]["rows"]
        (row,) = [r for r in rows if (r["preset"], r["batch"]) == (preset, batch)]
        self.assertNotIn("skipped", row)
        self.assertGreater(row["pairs_per_s"], 0)
        self.assertGreaterEqual(row["compile_s"], 0)
        self.assertTrue(row["finite"])
        # Known flow: synthetic.panning_blobs (median error ~0.2 px at 32x43).
        self.assertLess(row["median_endpoint_error_px"], 1.0)

    def test_vlad_layer(self):
        vlad = self.report["vlad"]
        self.assertEqual(vlad["clusters"], 4)
        self.assertLen(vlad["rows"], 1)
        self.assert_cost_row(vlad["rows"][0])

    @parameterized.product(stream=STREAMS, precision=PRECISIONS)
    def test_training_step(self, stream, precision):
        rows = self.report["train"]["rows"]
        (row,) = [
            r for r in rows if (r["stream"], r["precision"]) == (stream, precision)
        ]
        self.assertEqual(row["batch"], 2)
        self.assert_cost_row(row)
        self.assertTrue(math.isfinite(row["loss"]))
        # Under mixed_bfloat16 too, the ActionVLAD layer computes in float32.
        self.assertEqual(row["netvlad_compute_dtype"], "float32")

    @parameterized.parameters(*PRECISIONS)
    def test_largest_batch(self, precision):
        (search,) = [
            s
            for s in self.report["train"]["largest_batch"]
            if s["precision"] == precision
        ]
        self.assertEqual(search["stream"], "flow")
        # --smoke caps the doubling at 2 tries, both of which fit on a CPU.
        self.assertEqual(search["stopped_by"], "step cap")
        self.assertEqual([r["batch"] for r in search["rows"]], [4, 8])
        self.assertEqual(search["largest_batch"], 8)
        for row in search["rows"]:
            self.assert_cost_row(row)


if __name__ == "__main__":
    absltest.main()
