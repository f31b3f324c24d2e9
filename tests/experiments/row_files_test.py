"""The shipped row files, as experiments/rows.py reads them.

Every paper table's rows and headers (`gin/table*.gin`), one file per row,
Table C's clip-model rows (`gin/toy/clips_*.gin`), header errors and the
canonical config that names a row's run.
"""

import os
import re

from absl.testing import absltest
import gin

from experiments import markdown
from experiments import rows as row_lib


class HeaderTest(absltest.TestCase):
    def test_every_table_has_rows_with_headers(self):
        for table in ("1", "K", "2a", "2b", "3a", "3b", "6", "4", "5"):
            rows = row_lib.find_rows(table)
            for row in rows:
                self.assertIn(row["dataset"], ("hmdb51", "ucf101", "charades"))
                for _, _, paper, note in row_lib.row_lines(row):
                    self.assertTrue(paper is not None or note, row["file"])
        self.assertEqual(
            [r["paper"] for r in row_lib.find_rows("3a")], [56.0, 64.8, 66.9]
        )

    def test_one_file_per_row(self):
        # Table 4: one file per dataset, its splits and its iDT fusion in the
        # header; Table 5: one file, two metrics; Table 6: one file per crops.
        rows = row_lib.find_rows("4")
        self.assertEqual(
            [r["file"] for r in rows], ["table4_ucf101.gin", "table4_hmdb51.gin"]
        )
        for row in rows:
            self.assertEqual(row["splits"], ["1", "2", "3"])
            self.assertEqual(row["idt"], row["dataset"] + "_idt_split{split}.h5")
        self.assertEqual(
            [
                (label, paper)
                for row in rows
                for label, _, paper, _ in row_lib.row_lines(row)
            ],
            [("top1", 92.7), ("iDT", 93.6), ("top1", 66.9), ("iDT", 69.8)],
        )
        (charades,) = row_lib.find_rows("5")
        self.assertEqual(charades["metrics"], ["mAP", "wAP"])
        self.assertEqual(
            [(name, paper) for _, name, paper, _ in row_lib.row_lines(charades)],
            [("ActionVLAD RGB, mAP", 17.6), ("ActionVLAD RGB, wAP", 25.1)],
        )
        self.assertEqual(
            [r["file"] for r in row_lib.find_rows("6")],
            ["table6_hmdb51_1crop.gin", "table6_hmdb51_5crop.gin"],
        )

    def test_markdown_mean_and_std_over_splits(self):
        rows = row_lib.find_rows("6")
        results = {
            rows[0]["file"]: {"values": {"top1": [60.0, 62.0, 64.0]}},
            rows[1]["file"]: {"values": {"top1": [70.0, 71.0, 72.0]}},
        }
        text = markdown.markdown_table("6", rows, results, note="toy")
        self.assertIn("| ActionVLAD late fusion, 1 crop", text)
        self.assertIn("62.0 ± 2.0 (3 splits)", text)
        self.assertIn("71.0 ± 1.0 (3 splits)", text)
        self.assertIn("`table6_hmdb51_5crop.gin`", text)

    def _header(self, text):
        path = os.path.join(self.create_tempdir().full_path, "table9_x.gin")
        with open(path, "w") as f:
            f.write(text + "\ninclude 'base.gin'\n")
        return path

    def test_missing_header_line(self):
        with self.assertRaisesRegex(ValueError, 'no "# Dataset" line'):
            row_lib.parse_header(self._header("# Table 9, row 1: x."))

    def test_old_run_key_is_refused(self):
        with self.assertRaisesRegex(ValueError, "share a run by themselves"):
            row_lib.parse_header(
                self._header("# Table 9, row 1: x.\n# Dataset: hmdb51\n# Run: table9_y")
            )

    def test_report_values(self):
        with self.assertRaisesRegex(ValueError, r"Report: all.*'streams'"):
            row_lib.parse_header(
                self._header("# Table 9, row 1: x.\n# Dataset: hmdb51\n# Report: all")
            )
        gin_dir = os.path.dirname(
            self._header("# Table 9, row 1: x.\n# Dataset: hmdb51\n# Report: streams")
        )
        with open(os.path.join(gin_dir, "table9_y.gin"), "w") as f:
            f.write("# Table 9, row 2: y.\n# Dataset: hmdb51\ninclude 'base.gin'\n")
        with self.assertRaisesRegex(ValueError, "table '9' mixes"):
            row_lib.find_rows("9", gin_dir=gin_dir)

    def test_paper_label_names_a_reported_value(self):
        with self.assertRaisesRegex(ValueError, r'"# Paper \(wAP\)"'):
            row_lib.parse_header(
                self._header(
                    "# Table 9, row 1: x.\n# Dataset: hmdb51\n# Paper (wAP): 1.0 (x)"
                )
            )
        with self.assertRaisesRegex(ValueError, 'no "# Splits" line'):
            row_lib.parse_header(
                self._header(
                    "# Table 9, row 1: x.\n# Dataset: hmdb51\n# iDT: a_{split}.h5"
                )
            )


class CanonicalConfigTest(absltest.TestCase):
    def tearDown(self):
        gin.clear_config()
        super().tearDown()

    def _config(self, *bindings):
        row = row_lib.parse_header(
            os.path.join(row_lib.GIN_DIR, "table1_actionvlad_rgb.gin")
        )
        row_lib.parse_row(row, data_dir="d", bindings=bindings)
        return row_lib.canonical_config()

    def test_macros_are_inlined(self):
        config = self._config()
        self.assertIn("train.data_dir = 'd'", config)
        self.assertIn("train_stream.train_split = 'train_split1'", config)
        self.assertFalse([l for l in config if re.search(r"= .*%", l)])
        # The same values bound directly or through a macro: the same config.
        self.assertEqual(
            config, self._config("train_stream.train_split = 'train_split1'")
        )

    def test_evaluation_bindings_do_not_decide_training(self):
        # Roles are declared as the configurables are imported, which
        # parsing a row does (as the runner parses before it compares).
        self._config()
        decides = row_lib._decides_training
        self.assertFalse(decides("flow/evaluate.num_crops = 5"))
        self.assertFalse(decides("train.evaluate_split = 'test_split1'"))
        self.assertFalse(decides("train.fuse_weights = (1, 2)"))
        self.assertFalse(decides("avlad_tf.serving.saved_model.export.num_crops = 1"))
        self.assertTrue(decides("train.streams = ('rgb',)"))
        self.assertTrue(decides("train_stream.train_split = 'train_split1'"))
        self.assertTrue(decides("build_model.num_clusters = 64"))

    def test_the_shipped_clip_model_table(self):
        # Table C: each clip model alone and under ActionVLAD, every stage-2
        # layer trained (the toy's networks start random).
        rows = row_lib.find_rows("C")
        self.assertLen(rows, 10)
        self.assertTrue(all(r["report"] == "streams" for r in rows))
        for row in rows:
            row_lib.parse_row(row, data_dir="data/toy")
            config = "\n".join(row_lib.canonical_config())
            self.assertIn("fine_tuning.backbone_layers = 'all'", config, row["file"])
            own_head = re.search(r"build_model.pooling = '(two_stream|avg)'", config)
            self.assertEqual(bool(own_head), row["name"].endswith("alone"), row["file"])


if __name__ == "__main__":
    absltest.main()
