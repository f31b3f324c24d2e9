"""Tests for avlad_tf.fuse: the release's HMDB51 table from its published scores."""

import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import h5py
import numpy as np
import pytest

from avlad_tf.evaluation import late_fusion as fuse
from avlad_tf.evaluation import score_files
from tests import testing

_REPO = pathlib.Path(testing.REPO)
_RELEASED = _REPO / "experiments" / "released" / "hmdb51"

# The release README's table (docs/RELEASE.md §10), to two decimals.
_RELEASE_TABLE = {  # split: (rgb, flow, fused)
    1: (51.37, 58.95, 66.73),
    2: (49.22, 59.74, 66.54),
    3: (48.63, 60.59, 66.34),
}


def _paths(split):
    return (
        [
            str(_RELEASED / f"rgb_split{split}.h5"),
            str(_RELEASED / f"flow_split{split}.h5"),
        ],
        str(_RELEASED / f"test_split{split}.txt"),
    )


def _write_scores(path, logits, **extra):
    with h5py.File(path, "w") as f:
        f.create_dataset("stream0/logits", data=np.asarray(logits, np.float32))
        for key, value in extra.items():
            f.create_dataset(key, data=value)
    return path


class ReleasedScoresTest(parameterized.TestCase):
    @parameterized.parameters(1, 2, 3)
    def test_reproduces_release_table(self, split):
        scores, labels = _paths(split)
        result = fuse.fuse_files(scores, [1, 2], labels=labels)
        rgb, flow, fused = _RELEASE_TABLE[split]
        self.assertEqual(round(100 * result["inputs"][0], 2), rgb)
        self.assertEqual(round(100 * result["inputs"][1], 2), flow)
        self.assertEqual(round(100 * result["fused"], 2), fused)

    @parameterized.parameters(1, 2, 3)
    def test_weights_match_release_constants(self, split):
        # The release wrote (1 - 0.667)·rgb + 0.667·flow; 1:2 normalised must
        # give the same top-1 (checked on all three splits).
        scores, labels = _paths(split)
        ours = fuse.fuse_files(scores, [1, 2], labels=labels)["fused"]
        release = fuse.fuse_files(scores, [0.333, 0.667], labels=labels)["fused"]
        self.assertEqual(ours, release)

    def test_softmax_is_not_applied(self):
        # Raw-logit fusion is what gives 66.73 on split 1; softmax fusion is worse.
        (rgb, flow), labels = _paths(1)
        r, _, _ = score_files.read_scores(rgb)
        f, _, _ = score_files.read_scores(flow)
        _, y = fuse.read_list_labels(labels)

        def soft(x):
            return np.exp(x - x.max(1, keepdims=True)) / np.exp(
                x - x.max(1, keepdims=True)
            ).sum(1, keepdims=True)

        soft_acc = np.mean(np.argmax(soft(r) + 2 * soft(f), 1) == y)
        self.assertLess(soft_acc, 0.66)

    @pytest.mark.slow
    def test_cli(self):
        scores, labels = _paths(1)
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "avlad_tf.fuse",
                "--scores",
                scores[0],
                "--scores",
                scores[1],
                "--weights",
                "1,2",
                "--labels",
                labels,
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=_REPO,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        )
        lines = out.stdout.splitlines()
        self.assertIn("51.37", lines[0])
        self.assertIn("58.95", lines[1])
        fused_lines = [l for l in lines if "fused" in l]
        self.assertLen(fused_lines, 1)
        self.assertIn("66.73", fused_lines[0])


class SyntheticTest(parameterized.TestCase):
    def setUp(self):
        super().setUp()
        # absltest's create_tempdir needs parsed absl flags, which pytest lacks.
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)

    def test_idt_fusion_is_release_formula(self):
        a = np.array([[3.0, 4.0], [0.0, 1.0]])
        idt = np.array([[0.0, 2.0], [5.0, 0.0]])
        # Row 0: fused/|fused| = (.6, .8), idt/|idt| = (0, 1) -> (.45, .85).
        # Row 1: (0, 1)·.75 + (1, 0)·.25 = (.25, .75).
        np.testing.assert_allclose(fuse.fuse_idt(a, idt), [[0.45, 0.85], [0.25, 0.75]])

    def test_idt_file_and_embedded_labels(self):
        labels = np.array([1, 0])
        rgb = _write_scores(
            f"{self.dir}/rgb.h5",
            [[0.0, 1.0], [0.0, 1.0]],
            labels=labels,
            video_ids=np.array([b"a", b"b"]),
        )
        flow = _write_scores(
            f"{self.dir}/flow.h5",
            [[0.0, 1.0], [0.0, 1.0]],
            video_ids=np.array([b"a", b"b"]),
        )
        with h5py.File(f"{self.dir}/idt.h5", "w") as f:
            f.create_dataset("idt", data=[[0.0, 1.0], [10.0, 0.0]])
        result = fuse.fuse_files(
            [rgb, flow],
            [1, 2],
            labels=None,
            idt_path=f"{self.dir}/idt.h5",
            output_path=f"{self.dir}/fused.h5",
        )
        self.assertEqual(result["inputs"], [0.5, 0.5])
        self.assertEqual(result["fused"], 0.5)
        self.assertEqual(result["idt"], 1.0)
        # Row 1: .75·(0, 1) + .25·(1, 0) still prefers class 1 -> wrong.
        self.assertEqual(result["fused_idt"], 0.5)
        fused, ids, stored = score_files.read_scores(f"{self.dir}/fused.h5")
        self.assertEqual(ids, ["a", "b"])
        np.testing.assert_array_equal(stored, labels)
        np.testing.assert_allclose(fused[1], [0.25, 0.75], rtol=1e-6)

    def test_three_inputs_weighted(self):
        y = np.array([0])
        paths = [
            _write_scores(f"{self.dir}/{i}.h5", s, labels=y)
            for i, s in enumerate([[[1.0, 0.0]], [[0.0, 1.0]], [[0.0, 1.0]]])
        ]
        self.assertEqual(fuse.fuse_files(paths, [3, 1, 1], labels=None)["fused"], 1.0)
        self.assertEqual(fuse.fuse_files(paths, [1, 1, 1], labels=None)["fused"], 0.0)

    def test_errors(self):
        a = _write_scores(
            f"{self.dir}/a.h5", np.zeros((2, 3)), video_ids=np.array([b"x", b"y"])
        )
        b = _write_scores(f"{self.dir}/b.h5", np.zeros((3, 3)))
        c = _write_scores(
            f"{self.dir}/c.h5", np.zeros((2, 3)), video_ids=np.array([b"x", b"z"])
        )
        lst = f"{self.dir}/list.txt"
        pathlib.Path(lst).write_text("v/1 30 0\nv/2 40 2\n")
        with self.assertRaisesRegex(ValueError, "do not match"):
            fuse.fuse_files([a, b], [1, 2], labels=lst)
        with self.assertRaisesRegex(ValueError, "row 1 is video 'z'"):
            fuse.fuse_files([a, c], [1, 2], labels=lst)
        with self.assertRaisesRegex(ValueError, "stores no labels"):
            fuse.fuse_files([a], [1], labels=None)
        with self.assertRaisesRegex(ValueError, "2 score arrays but 1 weights"):
            fuse.fuse_files([a, a], [1], labels=lst)
        pathlib.Path(lst).write_text("Y/YSKX3.mp4 278 -1\n")
        with self.assertRaisesRegex(ValueError, "list.txt:1: label -1"):
            fuse.fuse_files([a], [1], labels=lst)
        with h5py.File(f"{self.dir}/bad.h5", "w") as f:
            f.create_dataset("features", data=np.zeros((2, 3)))
        with self.assertRaisesRegex(ValueError, "no score dataset"):
            score_files.read_scores(f"{self.dir}/bad.h5")
        pathlib.Path(f"{self.dir}/scores.txt").write_text("0.1 0.9\n")
        for path in (f"{self.dir}/scores.txt", self.dir):
            with self.assertRaisesRegex(
                ValueError, f"^{re.escape(path)} is not an HDF5 score file"
            ):
                fuse.fuse_files([path], [1], labels=lst)


if __name__ == "__main__":
    absltest.main()
