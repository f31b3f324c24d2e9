"""Tests for experiments/table_runs.py (the table runner's library).

Shared runs, splits, iDT and two-metric rows with `train` replaced
by a fake (no TensorFlow training); Tables 2b and 3a end to end, very short.
"""

import os
import shutil
import tempfile
from unittest import mock

from absl.testing import absltest
import gin
import pytest

from avlad_tf import cli
from experiments import rows as row_lib
from experiments import table_runs
from tests import fake_data

_SHRINK = "toy/shrink.gin"  # the toy overlay, in gin/
# On top of the toy overlay: tiny fake records (the toy dataset's on-disk
# format, but seconds to write instead of minutes of TV-L1) and 2 + 2 updates.
_BINDINGS = [
    "NUM_FRAMES = 4",
    "IMAGE_SIZE = 24",
    "FLOW_STACK = 2",
    "train.prepare_toy_dataset = False",
    "make_dataset.resize_to = (32, 40)",
    "build_model.num_clusters = 2",
    "init_centers.num_random_frames = 8",
    "init_centers.num_init = 1",
    "train_stream.stage_steps = (2, 2)",
    "train_stream.batch_size = 2",
    "train_stream.accumulation_steps = 1",
    "train_stream.jit_compile = False",
    "train_stream.checkpoint_every = 2",
    "train_stream.assignments_every = 2",
    "train_stream.kmeans_batch_size = 4",
]


def _tempdir(test):
    path = tempfile.mkdtemp()
    test.addCleanup(shutil.rmtree, path)
    return path


def _binding(name):
    """The canonical value of `name` in the parsed config, e.g. `'test'`."""
    for line in row_lib.canonical_config():
        key, value = line.split(" = ", 1)
        if key == name:
            return value
    return None


class SharedRunsTest(absltest.TestCase):
    """The runner with a fake `train` that records what it was asked to run."""

    def setUp(self):
        super().setUp()
        self.addCleanup(gin.clear_config)
        self.runs_dir = _tempdir(self)
        self.calls = []
        self.idt_paths = []
        patch = mock.patch.object(table_runs, "_train", side_effect=self._train)
        patch.start()
        self.addCleanup(patch.stop)
        patch = mock.patch.object(
            table_runs, "_fuse_idt_files", side_effect=self._fuse_idt
        )
        patch.start()
        self.addCleanup(patch.stop)

    def _train(self, workdir):
        self.calls.append(
            {
                "workdir": workdir,
                "train_split": _binding("train_stream.train_split"),
                "evaluate_split": _binding("train.evaluate_split"),
                "num_clusters": _binding("build_model.num_clusters"),
                "stage_steps": _binding("train_stream.stage_steps"),
                "num_frames": _binding("make_dataset.num_frames"),
                "seed": _binding("train_stream.seed"),
            }
        )
        metrics = {"top1": 0.5, "mAP": 0.2, "wAP": 0.3, "num_params": 1000}
        streams = gin.query_parameter("train.streams")
        outcome = {
            s: dict(metrics, scores_path=f"{workdir}/scores/{s}.h5") for s in streams
        }
        if cli.bound_or_none("train.fuse_weights"):
            outcome["late_fusion"] = 0.6
        return outcome

    def _fuse_idt(self, score_paths, weights, idt_path):
        self.idt_paths.append(idt_path)
        return 0.7

    def _run(self, table, data_dir="data/hmdb51", **kwargs):
        data_dirs = {
            "hmdb51": data_dir,
            "ucf101": "data/ucf101",
            "charades": "data/charades",
        }
        return table_runs.run_table(
            table, data_dirs=data_dirs, runs_dir=self.runs_dir, **kwargs
        )

    def test_the_same_model_trains_once(self):
        results = {}
        for table in ("1", "2a", "2b", "K"):
            text, table_results = self._run(table)
            self.assertNotIn("failed", text)
            results.update(table_results)
        # 16 rows, 13 models: the base model is the trained RGB row of Table 1,
        # the conv5_3, NetVLAD and K = 64 rows, and trains once.
        self.assertLen(results, 16)
        self.assertLen(self.calls, 13)
        self.assertLen({c["workdir"] for c in self.calls}, 13)
        base = {
            results[f]["workdirs"][0]
            for f in (
                "table1_actionvlad_rgb.gin",
                "table2a_position_conv5_3.gin",
                "table2b_pool_netvlad.gin",
                "tablek_clusters_64.gin",
            )
        }
        self.assertLen(base, 1)
        self.assertEqual([c["workdir"] for c in self.calls].count(base.pop()), 1)
        with open(
            os.path.join(results["tablek_clusters_64.gin"]["workdirs"][0], "rows.txt")
        ) as f:
            self.assertLen(f.read().splitlines(), 4)
        # A second runner call finds every config run.
        for table in ("1", "2a", "2b", "K"):
            self._run(table)
        self.assertLen(self.calls, 13)

    def test_split_rows_bind_the_split_macros(self):
        text, results = self._run("6")
        self.assertEqual(
            [(c["train_split"], c["evaluate_split"]) for c in self.calls],
            [
                (f"'train_split{k}'", f"'test_split{k}'")
                for _ in range(2)
                for k in (1, 2, 3)
            ],
        )
        self.assertIn("60.0 ± 0.0 (3 splits)", text)
        # 1 and 5 crops differ only in evaluation: one training run per split.
        one, five = (
            results[f]["workdirs"]
            for f in ("table6_hmdb51_1crop.gin", "table6_hmdb51_5crop.gin")
        )
        self.assertEqual(one, five)
        self.assertLen(set(one), 3)
        # Table 4's HMDB51 row (flow 5 crops) trains the same models.
        _, results = self._run("4")
        self.assertEqual(results["table4_hmdb51.gin"]["workdirs"], one)

    def test_idt_and_two_metrics_from_one_file(self):
        text, results = self._run("4", idt_dir="/idt")
        # One training run per split and dataset, the iDT line from its scores.
        self.assertLen(self.calls, 6)
        self.assertEqual(
            self.idt_paths,
            [
                f"/idt/{ds}_idt_split{k}.h5"
                for ds in ("ucf101", "hmdb51")
                for k in (1, 2, 3)
            ],
        )
        lines = [l for l in text.splitlines() if ".gin`" in l]
        self.assertLen(lines, 4)
        self.assertRegex(
            lines[1],
            r"^\| ActionVLAD, UCF101 \+ iDT \(0\.75 / 0\.25.*"
            r"\| 93\.6 .*\| 70\.0 ± 0\.0 \(3 splits\) \| -23\.6 \|$",
        )
        self.assertEqual(
            results["table4_hmdb51.gin"]["values"],
            {"top1": [60.0] * 3, "iDT": [70.0] * 3},
        )
        text, _ = self._run("5")
        self.assertLen(self.calls, 7)
        self.assertRegex(
            text, r"\| ActionVLAD RGB, mAP \(.*\| 17\.6 .*\| 20\.0 \| \+2\.4 \|"
        )
        self.assertRegex(
            text, r"\| ActionVLAD RGB, wAP \(.*\| 25\.1 .*\| 30\.0 \| \+4\.9 \|"
        )

    def test_idt_line_without_idt_dir_is_not_run(self):
        text, results = self._run("4")
        self.assertNotIn("failed", text)
        self.assertIn("not run: needs --idt_dir with ucf101_idt_split{split}.h5", text)
        self.assertFalse(any(r["errors"] for r in results.values()))

    def test_overlay_keeps_the_rows_own_change(self):
        _, results = self._run("K", overlays=[_SHRINK])
        self.assertFalse([f for f, r in results.items() if r["errors"]])
        # The shrink's 8 frames reach every row; each row keeps its K, and the
        # K = 64 row is base.gin's K (the shrink leaves K alone).
        self.assertEqual({c["num_frames"] for c in self.calls}, {"8"})
        self.assertEqual(
            [c["num_clusters"] for c in self.calls], ["1", "32", "64", "128"]
        )
        self._run("1", overlays=[_SHRINK])
        steps = [c["stage_steps"] for c in self.calls[4:]]
        self.assertIn("(10000,)", steps)  # stage 1 only, as its row says
        self.assertIn("(800, 400)", steps)  # the shrink's schedule elsewhere

    def test_overlay_that_fixes_the_split_runs_a_split_row_once(self):
        text, results = self._run("6", overlays=[_SHRINK])
        self.assertLen(self.calls, 2)  # the toy data has one split
        self.assertEqual({c["train_split"] for c in self.calls}, {"'train'"})
        self.assertEqual(results["table6_hmdb51_1crop.gin"]["values"], {"top1": [60.0]})
        self.assertNotIn("splits)", text)

    def test_aggregator_table_reports_each_stream_over_seeds(self):
        text, results = self._run("A", overlays=[_SHRINK], seeds=[0, 1, 2])
        self.assertLen(results, 12)
        self.assertLen(self.calls, 36)  # 12 different models x 3 seeds
        self.assertEqual([c["seed"] for c in self.calls[:4]], ["0", "1", "2", "0"])
        late = results["aggregators_lstm.gin"]["values"]
        self.assertEqual(late["rgb"], [50.0] * 3)
        self.assertEqual(late["flow"], [50.0] * 3)
        self.assertEqual(late["fusion"], [60.0] * 3)
        self.assertEqual(late["parameters"], [2000] * 3)  # both streams
        fused = results["aggregators_stfn.gin"]["values"]
        self.assertEqual((fused["rgb"], fused["fusion"]), ([], [50.0] * 3))
        self.assertIn("Each cell: mean ± std over 3 seeds.", text)
        self.assertIn("| row | gin file | paper | RGB | flow | fusion |", text)
        self.assertRegex(
            text,
            r"(?m)\| STFN \(one fused model\) \| `aggregators_stfn.gin` \| "
            r"71\.2 <sub>\(STFN poster, .*\(Resnet-101\).*HMDB51\)</sub> \| "
            r"— \| — \| 50\.0 ± 0\.0 \| 1,000 \| \d+\.\d \|$",
        )
        self.assertRegex(text, r"\| VideoLSTM, motion attention .*gin` \| — \| — \|")
        # A second call finds every seed's run.
        self._run("A", overlays=[_SHRINK], seeds=[0, 1, 2])
        self.assertLen(self.calls, 36)

    def test_a_streams_table_without_its_data_dir_says_so_in_every_cell(self):
        text, results = table_runs.run_table(
            "A", data_dirs={"ucf101": "data/ucf101"}, runs_dir=self.runs_dir
        )
        self.assertEqual(self.calls, [])
        self.assertTrue(all(r["errors"] for r in results.values()))
        self.assertIn("| failed: no --data_dir for hmdb51 |", text)

    def test_failed_row_is_reported_and_the_others_run(self):
        calls = []

        def train(workdir):
            calls.append(workdir)
            if len(calls) == 1:
                raise ValueError("no | such data")
            return self._train(workdir)

        with mock.patch.object(table_runs, "_train", side_effect=train):
            text, results = self._run("2b")
        self.assertIn("failed: ValueError: no / such data", text)
        self.assertLen([r for r in results.values() if r["errors"]], 1)
        self.assertLen(calls, 3)


class RunTableTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        self.root = _tempdir(self)
        self.addCleanup(gin.clear_config)
        self.data_dir = fake_data.write_fake_dataset(
            os.path.join(self.root, "data"),
            num_videos=4,
            num_frames=10,
            num_classes=2,
            content="pattern",
        )

    def _run(self, table):
        return table_runs.run_table(
            table,
            data_dirs={"hmdb51": self.data_dir},
            runs_dir=os.path.join(self.root, "runs"),
            overlays=[_SHRINK],
            bindings=_BINDINGS,
            note="Fake data, not the paper's.",
        )

    @pytest.mark.slow
    def test_tables_2b_and_3a_filled_and_rerun_skips(self):
        for table, names in (
            ("2b", ("average pooling", "max pooling", "ActionVLAD")),
            ("3a", ("concat fusion", "early fusion", "late fusion")),
        ):
            text, results = self._run(table)
            self.assertNotIn("failed", text)
            self.assertNotIn("not run", text)
            self.assertLen(results, 3)
            for name, result in zip(names, results.values()):
                self.assertIn(f"| {name} (", text)
                self.assertBetween(result["values"]["top1"][0], 0.0, 100.0)
            rows = [l for l in text.splitlines() if ".gin`" in l]
            self.assertLen(rows, 3)
            for line in rows:
                self.assertRegex(line, r"\| \d+\.\d \| [+-]\d+\.\d \|$")
        # The late-fusion row trained both streams and fused their scores.
        (late,) = results["table3a_fusion_late.gin"]["workdirs"]
        self.assertCountEqual(
            os.listdir(os.path.join(late, "scores")),
            ["rgb_test_1crop.h5", "flow_test_1crop.h5"],
        )
        # Finished rows are skipped: no training on a re-run.
        with mock.patch.object(
            table_runs, "_train", side_effect=AssertionError("retrained")
        ):
            again, _ = self._run("2b")
        self.assertNotIn("failed", again)


if __name__ == "__main__":
    absltest.main()
