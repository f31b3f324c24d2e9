"""The markdown of a table the runner filled (experiments/run_table.py).

Paper tables: a line per reported value, | row | gin file | paper | ours |
difference |. `Report: streams` tables (experiments/rows.py): a line per
row, with each stream's and the fusion's top-1, the parameters and the
minutes of a run. Several runs of a line (splits, seeds) give mean ± std.
"""

import statistics

from experiments import rows as row_lib

# The columns of a `Report: streams` table, after the row and its file.
STREAM_COLUMNS = ("rgb", "flow", "fusion")
COST_COLUMNS = ("parameters", "minutes")
_HEADINGS = {
    "rgb": "RGB",
    "flow": "flow",
    "fusion": "fusion",
    "parameters": "parameters",
    "minutes": "minutes per run",
}


def _fmt(x):
    return "—" if x is None else f"{x:.1f}"


def _spread(values, unit):
    """`mean ± std (n <unit>)` (without the count for `unit=None`), or the
    one value."""
    mean = statistics.mean(values)
    if len(values) == 1:
        return _fmt(mean)
    text = f"{mean:.1f} ± {statistics.stdev(values):.1f}"
    return text if unit is None else f"{text} ({len(values)} {unit})"


def _ours(values, error, skipped, paper, unit="splits"):
    """The `ours` and `difference` cells of one line."""
    if error:
        return f"failed: {error}", "—"
    if not values:
        return (f"not run: {skipped}" if skipped else "not run"), "—"
    mean = statistics.mean(values)
    ours = _spread(values, unit)
    return ours, "—" if paper is None else f"{mean - paper:+.1f}"


def _paper_cell(paper, note):
    return _fmt(paper) + (f" <sub>{note}</sub>" if note else "")


def markdown_table(table, rows, results, *, note=""):
    """The table: line | gin file | paper | ours | difference; or, for
    `Report: streams` rows, row | gin file | RGB | flow | fusion | ..."""
    lines = [f"## Table {table}", ""]
    if note:
        lines += [note, ""]
    if rows and rows[0]["report"] == "streams":
        return "\n".join(lines + _streams_lines(rows, results)) + "\n"
    lines += ["| row | gin file | paper | ours | difference |", "|---|---|---|---|---|"]
    for row in rows:
        result = results.get(row["file"], {})
        for label, name, paper, paper_note in row_lib.row_lines(row):
            detail = row["detail"]
            if label == row_lib.IDT:
                detail = "0.75 / 0.25 with L2-normalised iDT scores" + (
                    f", after {detail}" if detail else ""
                )
            detail = f" ({detail})" if detail else ""
            ours, diff = _ours(
                result.get("values", {}).get(label, []),
                result.get("errors", {}).get(label),
                result.get("skipped", {}).get(label),
                paper,
                result.get("unit", "splits"),
            )
            lines.append(
                f"| {name}{detail} | `{row['file']}` | "
                f"{_paper_cell(paper, paper_note)} | {ours} | {diff} |"
            )
    return "\n".join(lines) + "\n"


def _source(note):
    """The parenthesis that opens a `Paper` note, e.g. `(Table 2b, Sec.
    4.4)`, nested parentheses included; '' without one."""
    depth = 0
    for i, char in enumerate(note):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return note[: i + 1] if i else ""
    return ""


def _streams_lines(rows, results):
    """The per-stream layout: each stream's and the fusion's top-1 (%) and
    the parameters, mean ± std over a row's runs (said once, above), and
    the mean minutes of a run. The paper cell keeps the number and its
    source, the parenthesis that opens the row's `Paper` note."""
    columns = [*STREAM_COLUMNS, *COST_COLUMNS]
    counts = {
        (len(r.get("values", {}).get("fusion", [])), r.get("unit", "runs"))
        for r in results.values()
    }
    lines = []
    if len(counts) == 1 and next(iter(counts))[0] > 1:
        count, unit = counts.pop()
        lines += [f"Each cell: mean ± std over {count} {unit}.", ""]
    lines += [
        "| row | gin file | paper | "
        + " | ".join(_HEADINGS[c] for c in columns)
        + " |",
        "|---" * (3 + len(columns)) + "|",
    ]
    for row in rows:
        result = results.get(row["file"], {})
        values, errors = result.get("values", {}), result.get("errors", {})
        cells = []
        for column in columns:
            if errors:
                cells.append(f"failed: {errors[column]}")
            elif not values.get(column):
                cells.append("—")
            elif column == "parameters":
                cells.append(f"{round(statistics.mean(values[column])):,}")
            elif column == "minutes":
                cells.append(_fmt(statistics.mean(values[column])))
            else:
                cells.append(_spread(values[column], unit=None))
        paper = (
            "—"
            if row["paper"] is None
            else _paper_cell(row["paper"], _source(row["paper_note"]))
        )
        detail = f" ({row['detail']})" if row["detail"] else ""
        lines.append(
            f"| {row['name']}{detail} | `{row['file']}` | {paper} | "
            + " | ".join(cells)
            + " |"
        )
    return lines
