"""Tests for experiments.markdown: the tables the runner writes."""

from absl.testing import absltest

from experiments import markdown
from experiments import rows as row_lib


def _row(file, name, **changes):
    """A row as `rows.parse_header` gives it."""
    row = {
        "path": f"/gin/{file}",
        "file": file,
        "tables": ["9"],
        "index": 1,
        "name": name,
        "detail": "",
        "dataset": "hmdb51",
        "metrics": ["top1"],
        "paper": None,
        "paper_note": "",
        "papers": {},
        "idt": None,
        "splits": [None],
        "report": "metric",
    }
    row.update(changes)
    return row


class MetricTableTest(absltest.TestCase):
    def test_lines_of_paper_ours_and_difference(self):
        rows = [
            _row(
                "table9_a.gin",
                "ActionVLAD",
                detail="late fusion 1 : 2",
                paper=66.9,
                paper_note="(Table 4)",
                idt="idt_split{split}.h5",
                papers={row_lib.IDT: (69.8, "")},
            ),
            _row("table9_b.gin", "Max pooling", paper=50.0),
            _row("table9_c.gin", "Avg pooling"),
        ]
        results = {
            "table9_a.gin": {
                "values": {"top1": [60.0, 62.0, 64.0], row_lib.IDT: []},
                "skipped": {row_lib.IDT: "needs --idt_dir with idt_split{split}.h5"},
            },
            "table9_b.gin": {"values": {"top1": [53.25]}, "unit": "seeds"},
            "table9_c.gin": {"errors": {"top1": "ValueError: boom"}},
        }
        text = markdown.markdown_table("9", rows, results, note="Toy data.")
        self.assertEqual(
            text.splitlines(),
            [
                "## Table 9",
                "",
                "Toy data.",
                "",
                "| row | gin file | paper | ours | difference |",
                "|---|---|---|---|---|",
                # mean 62.0, sample std 2.0; 62.0 - 66.9 = -4.9.
                "| ActionVLAD (late fusion 1 : 2) | `table9_a.gin` | "
                "66.9 <sub>(Table 4)</sub> | 62.0 ± 2.0 (3 splits) | -4.9 |",
                "| ActionVLAD + iDT (0.75 / 0.25 with L2-normalised iDT scores, "
                "after late fusion 1 : 2) | `table9_a.gin` | 69.8 | "
                "not run: needs --idt_dir with idt_split{split}.h5 | — |",
                # One value: no spread; 53.25 - 50.0 = +3.25, shown +3.2.
                "| Max pooling | `table9_b.gin` | 50.0 | 53.2 | +3.2 |",
                "| Avg pooling | `table9_c.gin` | — | failed: ValueError: boom | — |",
            ],
        )
        self.assertTrue(text.endswith("|\n"))

    def test_a_row_without_results_or_note(self):
        text = markdown.markdown_table(
            "9", [_row("table9_a.gin", "x", paper=1.0, idt="idt.h5")], {}
        )
        self.assertEqual(
            text.splitlines()[2:],
            [
                "| row | gin file | paper | ours | difference |",
                "|---|---|---|---|---|",
                "| x | `table9_a.gin` | 1.0 | not run | — |",
                "| x + iDT (0.75 / 0.25 with L2-normalised iDT scores) | "
                "`table9_a.gin` | — | not run | — |",
            ],
        )

    def test_two_metrics_use_their_own_paper_numbers(self):
        row = _row(
            "table9_c.gin",
            "RGB",
            metrics=["mAP", "wAP"],
            paper=17.6,
            papers={"wAP": (25.1, "")},
        )
        results = {"table9_c.gin": {"values": {"mAP": [17.0], "wAP": [26.0]}}}
        lines = markdown.markdown_table("5", [row], results).splitlines()
        self.assertEqual(
            lines[-2:],
            [
                "| RGB, mAP | `table9_c.gin` | 17.6 | 17.0 | -0.6 |",
                "| RGB, wAP | `table9_c.gin` | 25.1 | 26.0 | +0.9 |",
            ],
        )


class StreamsTableTest(absltest.TestCase):
    _HEADER = (
        "| row | gin file | paper | RGB | flow | fusion | parameters | "
        "minutes per run |"
    )

    def _rows(self):
        return [
            _row(
                "aggregators_a.gin",
                "NetVLAD",
                report="streams",
                detail="K = 64",
                paper=66.9,
                paper_note="(Table A, Sec. 3 (b)), mean over splits",
            ),
            _row(
                "aggregators_b.gin",
                "Max",
                report="streams",
                paper=50.0,
                paper_note="no source given",
            ),
        ]

    def test_mean_and_spread_said_once_above(self):
        results = {
            "aggregators_a.gin": {
                "values": {
                    "rgb": [50.0, 52.0],
                    "flow": [60.0, 64.0],
                    "fusion": [70.0, 70.0],
                    "parameters": [1000, 1002],
                    "minutes": [3.0, 5.0],
                },
                "unit": "seeds",
            }
        }
        text = markdown.markdown_table("A", self._rows(), results)
        self.assertEqual(
            text.splitlines(),
            [
                "## Table A",
                "",
                "Each cell: mean ± std over 2 seeds.",
                "",
                self._HEADER,
                "|---" * 8 + "|",
                # std of (50, 52) is √2 = 1.41, of (60, 64) √8 = 2.83; the
                # paper cell keeps the note's opening parenthesis only.
                "| NetVLAD (K = 64) | `aggregators_a.gin` | 66.9 <sub>(Table A, "
                "Sec. 3 (b))</sub> | 51.0 ± 1.4 | 62.0 ± 2.8 | 70.0 ± 0.0 | "
                "1,001 | 4.0 |",
                "| Max | `aggregators_b.gin` | 50.0 | — | — | — | — | — |",
            ],
        )

    def test_one_run_each_no_spread_and_failures(self):
        results = {
            "aggregators_a.gin": {
                "values": {
                    "rgb": [51.0],
                    "flow": [],
                    "fusion": [70.04],
                    "parameters": [12345678],
                    "minutes": [0.25],
                }
            },
            "aggregators_b.gin": {
                "values": {"fusion": []},
                "errors": {
                    column: "OOM"
                    for column in (*markdown.STREAM_COLUMNS, *markdown.COST_COLUMNS)
                },
            },
        }
        lines = markdown.markdown_table("A", self._rows(), results).splitlines()
        self.assertEqual(lines[2], self._HEADER)  # counts differ: no line above
        self.assertEqual(
            lines[4:],
            [
                "| NetVLAD (K = 64) | `aggregators_a.gin` | 66.9 <sub>(Table A, "
                "Sec. 3 (b))</sub> | 51.0 | — | 70.0 | 12,345,678 | 0.2 |",
                "| Max | `aggregators_b.gin` | 50.0 | failed: OOM | failed: OOM | "
                "failed: OOM | failed: OOM | failed: OOM |",
            ],
        )

    def test_row_without_paper(self):
        rows = [_row("aggregators_c.gin", "Avg", report="streams")]
        lines = markdown.markdown_table("A", rows, {}).splitlines()
        self.assertEqual(
            lines[-1], "| Avg | `aggregators_c.gin` | — | — | — | — | — | — |"
        )


if __name__ == "__main__":
    absltest.main()
