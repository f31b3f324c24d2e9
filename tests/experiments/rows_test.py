"""Tests for experiments.rows: row headers, split bindings and canonical configs.

Row files and gin configs are written here; the configs bind two
configurables of this test, so nothing of the library is trained or built.
"""

import os
import re
import textwrap

from absl.testing import absltest
from absl.testing import parameterized
import gin

from experiments import rows as row_lib

_HEADER = "# Table 9, row 2: ActionVLAD RGB (1 crop).\n# Dataset: hmdb51\n"


@gin.configurable
def rows_test_model(*, size=1, split=None, data=None, extra=None):
    del size, split, data, extra


@gin.configurable
def rows_test_eval(*, crops=1):
    del crops


class _GinTest(parameterized.TestCase):
    def setUp(self):
        super().setUp()
        gin.clear_config()
        self.dir = self.create_tempdir().full_path

    def tearDown(self):
        gin.clear_config()
        super().tearDown()

    def _file(self, text, name="table9_row.gin"):
        path = os.path.join(self.dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(text))
        return path


class ParseHeaderTest(_GinTest):
    def test_minimal_header_and_defaults(self):
        path = self._file(_HEADER + "include 'base.gin'\n")
        row = row_lib.parse_header(path)
        self.assertEqual(row["path"], path)
        self.assertEqual(row["file"], "table9_row.gin")
        self.assertEqual(row["tables"], ["9"])
        self.assertEqual(row["index"], 2)
        self.assertEqual(row["name"], "ActionVLAD RGB")
        self.assertEqual(row["detail"], "1 crop")
        self.assertEqual(row["dataset"], "hmdb51")
        self.assertEqual(row["metrics"], ["top1"])
        self.assertEqual(row["splits"], [None])
        self.assertEqual(row["report"], "metric")
        self.assertIsNone(row["paper"])
        self.assertEqual(row["paper_note"], "")
        self.assertEqual(row["papers"], {})
        self.assertIsNone(row["idt"])

    def test_every_key(self):
        row = row_lib.parse_header(
            self._file(
                """\
                # Table 4/K, row 3: ActionVLAD, HMDB51 (late fusion 1 : 2, top-1 %).
                # Paper: 66.9 (Table 4, Sec. 4.6), mean over the three splits
                # Deviation: a note for readers, not parsed.
                # Dataset: hmdb51
                # Splits: 1, 2,3
                # Metric: mAP, wAP
                # Paper (wAP): 25.1 (Table 5)
                # iDT: hmdb51_idt_split{split}.h5
                # Paper (iDT): 69.8
                # Command: python -m avlad_tf.train --gin_file=x.gin
                include 'base.gin'
                # Dataset: ucf101
                """
            )
        )
        self.assertEqual(row["tables"], ["4", "K"])
        self.assertEqual(row["index"], 3)
        self.assertEqual(row["name"], "ActionVLAD, HMDB51")
        self.assertEqual(row["detail"], "late fusion 1 : 2, top-1 %")
        self.assertEqual(row["paper"], 66.9)
        self.assertEqual(
            row["paper_note"], "(Table 4, Sec. 4.6), mean over the three splits"
        )
        self.assertEqual(row["splits"], ["1", "2", "3"])
        self.assertEqual(row["metrics"], ["mAP", "wAP"])
        self.assertEqual(row["idt"], "hmdb51_idt_split{split}.h5")
        self.assertEqual(row["papers"], {"wAP": (25.1, "(Table 5)"), "iDT": (69.8, "")})
        # The header ended at the include: the later comment is not read.
        self.assertEqual(row["dataset"], "hmdb51")

    def test_paper_without_a_number(self):
        row = row_lib.parse_header(
            self._file(_HEADER + "# Paper: — (not reported)\n# Report: streams\n")
        )
        self.assertIsNone(row["paper"])
        self.assertEqual(row["paper_note"], "— (not reported)")
        self.assertEqual(row["report"], "streams")

    def test_name_without_detail_or_full_stop(self):
        row = row_lib.parse_header(
            self._file("# Table 2a, row 10: Max pooling\n# Dataset: ucf101\n")
        )
        self.assertEqual((row["tables"], row["index"]), (["2a"], 10))
        self.assertEqual((row["name"], row["detail"]), ("Max pooling", ""))

    @parameterized.named_parameters(
        ("no_table", "# Dataset: hmdb51\n", r'no "# Table N, row M: ..." line'),
        ("no_dataset", "# Table 9, row 1: x.\n", r'no "# Dataset" line'),
        (
            "dataset_after_the_header",
            "# Table 9, row 1: x.\n\n# Dataset: hmdb51\n",
            r'no "# Dataset" line',
        ),
        ("run_key", _HEADER + "# Run: table9_other\n", r'"# Run" is gone'),
        (
            "label_on_another_key",
            _HEADER + "# Metric (x): top1\n",
            r'only "# Paper" takes a label: \'# Metric \(x\): top1\'',
        ),
        (
            "unknown_report",
            _HEADER + "# Report: all\n",
            r"\"# Report: all\"; use one of \('metric', 'streams'\)",
        ),
        (
            "idt_split_without_splits",
            _HEADER + "# iDT: idt_split{split}.h5\n",
            r'"# iDT: idt_split\{split\}.h5" names a split; the row has no '
            r'"# Splits" line',
        ),
        (
            "paper_label_not_reported",
            _HEADER + "# Paper (wAP): 1.0\n",
            r'"# Paper \(wAP\)" is none of the further values the row '
            r"reports, \[\]",
        ),
        (
            "paper_label_of_the_first_metric",
            _HEADER + "# Metric: mAP, wAP\n# Paper (mAP): 1.0\n",
            r"\"# Paper \(mAP\)\" is none of .* \['wAP'\]",
        ),
    )
    def test_errors_name_the_file(self, text, message):
        path = self._file(text)
        with self.assertRaisesRegex(
            ValueError, "^" + re.escape(path) + ": .*" + message
        ):
            row_lib.parse_header(path)


class RowLinesTest(_GinTest):
    def test_one_metric(self):
        row = row_lib.parse_header(self._file(_HEADER + "# Paper: 52.1 (Table 1)\n"))
        self.assertEqual(
            row_lib.row_lines(row), [("top1", "ActionVLAD RGB", 52.1, "(Table 1)")]
        )

    def test_two_metrics_and_idt(self):
        row = row_lib.parse_header(
            self._file(
                _HEADER + "# Paper: 17.6 (a)\n# Metric: mAP, wAP\n"
                "# Paper (wAP): 25.1 (b)\n# iDT: idt.h5\n"
            )
        )
        self.assertEqual(
            row_lib.row_lines(row),
            [
                ("mAP", "ActionVLAD RGB, mAP", 17.6, "(a)"),
                ("wAP", "ActionVLAD RGB, wAP", 25.1, "(b)"),
                (row_lib.IDT, "ActionVLAD RGB + iDT", None, ""),
            ],
        )


class FindRowsTest(_GinTest):
    def test_rows_of_a_table_by_index_then_file(self):
        self._file("# Table 9, row 2: b.\n# Dataset: x\n", "table9_b.gin")
        self._file("# Table 9, row 2: a.\n# Dataset: x\n", "table9_z.gin")
        self._file("# Table 8/9, row 1: c.\n# Dataset: x\n", "table8_c.gin")
        self._file("# Table 9, row 3: d.\n# Dataset: x\n", "aggregators_d.gin")
        self._file("# Table 7, row 1: e.\n# Dataset: x\n", "table7_e.gin")
        self._file("# Table 9, row 1: f.\n# Dataset: x\n", "other_f.gin")  # no row file
        rows = row_lib.find_rows("9", gin_dir=self.dir)
        self.assertEqual(
            [r["file"] for r in rows],
            ["table8_c.gin", "table9_b.gin", "table9_z.gin", "aggregators_d.gin"],
        )
        self.assertEqual(
            [r["file"] for r in row_lib.find_rows("7", gin_dir=self.dir)],
            ["table7_e.gin"],
        )

    def test_toy_clip_rows_are_named_by_their_path_in_gin(self):
        os.mkdir(os.path.join(self.dir, "toy"))
        self._file("# Table C, row 2: b.\n# Dataset: toy\n", "toy/clips_b.gin")
        self._file("# Table C, row 1: a.\n# Dataset: toy\n", "toy/clips_a.gin")
        self._file("# Table C, row 3: c.\n# Dataset: toy\n", "toy/other_c.gin")
        rows = row_lib.find_rows("C", gin_dir=self.dir)
        self.assertEqual(
            [r["file"] for r in rows], ["toy/clips_a.gin", "toy/clips_b.gin"]
        )

    def test_no_rows(self):
        self._file("# Table 7, row 1: e.\n# Dataset: x\n", "table7_e.gin")
        with self.assertRaisesRegex(ValueError, "belongs to table '9'"):
            row_lib.find_rows("9", gin_dir=self.dir)


class SplitBindingsTest(absltest.TestCase):
    def test_macros_of_a_split(self):
        self.assertEqual(row_lib.split_bindings(None), [])
        self.assertEqual(
            row_lib.split_bindings("2"),
            ["TRAIN_SPLIT = 'train_split2'", "TEST_SPLIT = 'test_split2'"],
        )


class ConfigTest(_GinTest):
    def test_own_statements_leave_out_comments_includes_and_blank_lines(self):
        path = self._file(
            _HEADER
            + "include 'base.gin'\n\n  # indented comment\n"
            + "rows_test_model.size = 3  # trailing\n"
            + "  include 'other.gin'\nrows_test_eval.crops = 5\n"
        )
        self.assertEqual(
            row_lib.own_statements(path),
            ["rows_test_model.size = 3  # trailing", "rows_test_eval.crops = 5"],
        )

    def test_canonical_config_sorts_and_inlines_macros(self):
        gin.parse_config(
            textwrap.dedent(
                """\
                SIZE = %OTHER
                OTHER = 7
                rows_test_model.size = %SIZE
                rows_test_model.extra = {'frames': %OTHER, 'split': (1, 2)}
                flow/rows_test_eval.crops = 5
                rows_test_eval.crops = 1
                """
            )
        )
        self.assertEqual(
            row_lib.canonical_config(),
            [
                "flow/rows_test_eval.crops = 5",
                "rows_test_eval.crops = 1",
                "rows_test_model.extra = {'frames': 7, 'split': (1, 2)}",
                "rows_test_model.size = 7",
            ],
        )

    def test_configs_binding_the_same_values_are_equal(self):
        gin.parse_config("N = 4\nrows_test_model.size = %N\nrows_test_eval.crops = 2")
        through_macro = row_lib.canonical_config()
        gin.clear_config()
        gin.parse_config("rows_test_eval.crops = 2\nrows_test_model.size = 4")
        self.assertEqual(row_lib.canonical_config(), through_macro)

    def test_parse_row_order_split_overlay_bindings_data_dir(self):
        row_path = self._file(
            _HEADER
            + "rows_test_model.split = %TRAIN_SPLIT\n"
            + "rows_test_model.data = %DATA_DIR\n"
            + "rows_test_model.size = 1\n"
            + "rows_test_eval.crops = 1\n"
        )
        overlay = self._file(
            "rows_test_model.size = 99\nrows_test_model.extra = 'overlay'\n"
            "rows_test_eval.crops = 99\n",
            "overlay.gin",
        )
        row = row_lib.parse_header(row_path)
        row_lib.parse_row(
            row,
            data_dir="/data/hmdb",
            split="3",
            overlays=[overlay],
            bindings=["rows_test_eval.crops = 5"],
        )
        self.assertEqual(
            row_lib.canonical_config(),
            [
                "rows_test_eval.crops = 5",  # the binding wins
                "rows_test_model.data = '/data/hmdb'",
                "rows_test_model.extra = 'overlay'",
                "rows_test_model.size = 1",  # the row's own over the overlay
                "rows_test_model.split = 'train_split3'",
            ],
        )

    def test_an_overlay_binding_the_split_macros_fixes_the_split(self):
        row_path = self._file(_HEADER + "rows_test_model.split = %TRAIN_SPLIT\n")
        overlay = self._file("TRAIN_SPLIT = 'train'\n", "overlay.gin")
        row_lib.parse_row(
            row_lib.parse_header(row_path),
            data_dir="d",
            split="2",
            overlays=[overlay],
        )
        self.assertEqual(
            row_lib.canonical_config(), ["rows_test_model.split = 'train'"]
        )

    def test_parse_row_without_split_clears_the_previous_config(self):
        gin.parse_config("rows_test_model.extra = 'left over'")
        row_path = self._file(
            _HEADER + "TRAIN_SPLIT = 'train_split1'\n"
            "rows_test_model.split = %TRAIN_SPLIT\n"
        )
        row_lib.parse_row(row_lib.parse_header(row_path), data_dir="d")
        self.assertEqual(
            row_lib.canonical_config(), ["rows_test_model.split = 'train_split1'"]
        )
        self.assertEqual(gin.query_parameter("%DATA_DIR"), "d")


if __name__ == "__main__":
    absltest.main()
