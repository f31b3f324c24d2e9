"""Tests for avlad_tf.training.results: the results table of a run."""

import os

from absl.testing import absltest

from avlad_tf.training import results


class ResultsTableTest(absltest.TestCase):
    def test_one_row_per_stream_and_the_fusion(self):
        text = results.results_table(
            split="test_split1",
            stream_metrics={"rgb": {"top1": 0.5234}, "flow": {"top1": 0.6}},
            fused=0.66949,
            fuse_weights=[1.0, 2.0],
        )
        self.assertEqual(
            text,
            "| model | test_split1 top-1 (%) |\n"
            "|---|---|\n"
            "| rgb | 52.3 |\n"
            "| flow | 60.0 |\n"
            "| late fusion (1:2) | 66.9 |\n",
        )

    def test_accuracy_when_there_is_no_top1_and_missing_values(self):
        text = results.results_table(
            split="test",
            stream_metrics={
                "rgb": {"accuracy": 0.25},
                "flow": {"top1": None},
                "fused": {},
            },
        )
        lines = text.splitlines()
        self.assertEqual(
            lines[2:], ["| rgb | 25.0 |", "| flow | n/a |", "| fused | n/a |"]
        )
        self.assertNotIn("late fusion", text)

    def test_top1_wins_over_accuracy_and_weights_keep_their_digits(self):
        text = results.results_table(
            split="val",
            stream_metrics={"rgb": {"top1": 1.0, "accuracy": 0.0}},
            fused=0.0,
            fuse_weights=(0.75, 0.25),
        )
        self.assertIn("| rgb | 100.0 |", text)
        self.assertIn("| late fusion (0.75:0.25) | 0.0 |", text)

    def test_write_results(self):
        workdir = self.create_tempdir().full_path
        path = results.write_results(workdir, "| a |\n")
        self.assertEqual(path, os.path.join(workdir, "results.md"))
        with open(path) as f:
            self.assertEqual(f.read(), "| a |\n")
        results.write_results(workdir, "new\n")  # replaces
        with open(path) as f:
            self.assertEqual(f.read(), "new\n")


if __name__ == "__main__":
    absltest.main()
