"""What a paper-table row is: its gin file, header, splits and canonical config.

Rows are the `gin/table<N>_*.gin` files (the paper's tables), the
`gin/aggregators_*.gin` files (Table A, every aggregator of the source
papers) and the `gin/toy/clips_*.gin` files (Table C, the clip models at
the toy's size), one file per row, whose header names the table. Each
header is machine-read:

  # Table 4, row 2: ActionVLAD, HMDB51 (late fusion 1 : 2, top-1 %).
  # Paper: 66.9 (Table 4, Sec. 4.6), mean over the three splits
  # Dataset: hmdb51
  # Splits: 1, 2, 3                  (optional; one run per split)
  # Metric: top1                     (optional; `mAP, wAP`: both, Charades)
  # Report: streams                  (optional; the per-stream layout, below)
  # iDT: hmdb51_idt_split{split}.h5  (optional; also the iDT fusion)
  # Paper (iDT): 69.8 (Table 4, Sec. 4.6)   (the paper's further numbers)
  # Command: python -m avlad_tf.train --gin_file=... --workdir=...

`Paper` is the number, then free text shown under it in the table (the
paper's table and section; no number: `—` and the text). `Paper (<label>)`
gives the number of a further value the row reports: its second metric
(`Paper (wAP)`) or its iDT fusion (`Paper (iDT)`). Other comment lines
(`# Deviation: ...`, notes, `# Command:`) are for readers and are not parsed;
the header ends at the first line that is not a comment.

What a row reports: the late-fused top-1 when the config fuses streams
(`train.fuse_weights`), otherwise the trained stream's metric, one table line
per metric of `Metric`. With `iDT` a further line `<row> + iDT` fuses the
late-fused scores with the iDT scores the release's way (0.75 / 0.25 on
L2-normalised scores, docs/RELEASE.md Sec. 9.2), read from
`--idt_dir/<file>` with `{split}` replaced by the split (without
`--idt_dir` that line is not run).

`Report: streams` rows (the aggregator table, `gin/aggregators_*.gin`) report
every stream the run evaluates and its fusion instead: the RGB and flow
top-1 and the late fusion of a late-fused run, or the `fused` stream's top-1
of a fusion model, plus the run's parameters and minutes; a table is all
`streams` rows or none.

Splits: with `Splits: 1, 2, 3` the row runs once per split k, binding the
macros base.gin trains and evaluates with, `TRAIN_SPLIT = 'train_split<k>'`
and `TEST_SPLIT = 'test_split<k>'`, and reports mean ± std over the splits,
as the paper averages them.

Shared runs: a row's run is named by the config it resolves, not by its
file. The runner parses the row (its split, overlays and bindings, below)
and canonicalises gin's config (`canonical_config`: every binding once,
sorted, macros inlined). Then

- rows whose whole config is the same are one experiment, trained and
  evaluated once: e.g. the base model, a row of Tables 1, 2a, 2b and K;
- rows that differ only in bindings that do not decide training (by the
  role `avlad_tf.settings` gives each argument: what evaluation reads, as
  `evaluate.*`, `export.*`, `train.evaluate_split`, `train.fuse_weights`,
  `train.export`, or how the work runs, as `train_stream.jit_compile`;
  `_decides_training`) share one training run, and each
  evaluates it: its `train` call finds the run's checkpoints finished (no
  updates) and writes its own score files, named by stream, split and crops.
  E.g. Table 4 (RGB 1 + flow 5 crops) and Table 6 (1 or 5 crops on both
  streams) on one split train once. Rows that train different streams keep
  separate runs: a workdir's `run.json` records the streams of its run.

The run directory is `<runs_dir>/<dataset>_<hash of the training config>`;
it holds `training_config.gin` (the bindings that decided its training),
`rows.txt` (the rows that used it) and, per evaluated config,
`outcome_<hash>.json` (a config with one is not run again) and
`operative_config_<hash>.gin`. Training resumes from checkpoints, so
re-running a command continues a table.
"""

import glob
import hashlib
import os
import re

import gin

from avlad_tf import cli
from avlad_tf import settings

GIN_DIR = cli.GIN_DIR
REPO = os.path.dirname(GIN_DIR)
IDT = "iDT"  # the label of a row's iDT-fusion line
# The row files: the paper's tables, the aggregators of the source papers
# (Table A, the aggregator table) and the toy table of clip models (Table C,
# tiny networks that only the toy dataset runs).
ROW_FILES = ("table*.gin", "aggregators_*.gin", "toy/clips_*.gin")
# What a row reports: its metric lines, or each stream and the fusion.
REPORTS = ("metric", "streams")

_ROW_RE = re.compile(
    r"^# Table (?P<tables>[\w/]+), row (?P<index>\d+): "
    r"(?P<name>[^(]+?)\s*(?:\((?P<detail>.*)\))?\.?$"
)
_KEY_RE = re.compile(
    r"^# (?P<key>Paper|Dataset|Metric|Splits|iDT|Report)"
    r"(?: \((?P<label>[^)]+)\))?: (?P<value>.+)$"
)
_INCLUDE_RE = re.compile(r"^\s*include\s")
_MACRO_REF_RE = re.compile(r"%([A-Za-z_][\w.]*)")


def _paper(value):
    """`(number or None, note)` of a `Paper` value."""
    number = re.match(r"([\d.]+)\s*(.*)", value)
    if number:
        return float(number[1]), number[2]
    return None, value


def _list(value):
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_header(path):
    """Reads a row file's header into a dict (`tables`, `index`, `name`, ...).

    `splits` is `[None]` for a row without a `Splits` line; `papers` maps the
    label of each `Paper (<label>)` line to `(number, note)`.

    Raises:
      ValueError: when the header lacks the `# Table` or `# Dataset` line, or
        is inconsistent.
    """
    row = {
        "path": path,
        "file": os.path.basename(path),
        "metrics": ["top1"],
        "paper": None,
        "paper_note": "",
        "papers": {},
        "idt": None,
        "detail": "",
        "splits": [None],
        "report": "metric",
    }
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("#"):
                break
            line = line.rstrip()
            match = _ROW_RE.match(line)
            if match:
                row["tables"] = match["tables"].split("/")
                row["index"] = int(match["index"])
                row["name"] = match["name"].strip()
                row["detail"] = match["detail"] or ""
                continue
            if line.startswith("# Run:"):
                raise ValueError(
                    f'{path}: "# Run" is gone; rows that resolve to the same '
                    "config share a run by themselves (experiments/rows.py)."
                )
            match = _KEY_RE.match(line)
            if not match:
                continue
            key, label, value = match["key"], match["label"], match["value"].strip()
            if label and key != "Paper":
                raise ValueError(f'{path}: only "# Paper" takes a label: {line!r}')
            if key == "Paper" and label:
                row["papers"][label] = _paper(value)
            elif key == "Paper":
                row["paper"], row["paper_note"] = _paper(value)
            elif key == "Metric":
                row["metrics"] = _list(value)
            elif key == "Splits":
                row["splits"] = _list(value)
            elif key == "iDT":
                row["idt"] = value
            elif key == "Report":
                if value not in REPORTS:
                    raise ValueError(
                        f'{path}: "# Report: {value}"; use one of {REPORTS}.'
                    )
                row["report"] = value
            else:
                row["dataset"] = value
    for key, line in (("tables", "# Table N, row M: ..."), ("dataset", "# Dataset")):
        if key not in row:
            raise ValueError(
                f'{path}: the header has no "{line}" line (see experiments/rows.py).'
            )
    if row["idt"] and "{split}" in row["idt"] and row["splits"] == [None]:
        raise ValueError(
            f'{path}: "# iDT: {row["idt"]}" names a split; the '
            'row has no "# Splits" line.'
        )
    labels = [label for label, *_ in row_lines(row)]
    extra = sorted(set(row["papers"]) - set(labels[1:]))
    if extra:
        raise ValueError(
            f'{path}: "# Paper ({extra[0]})" is none of the '
            f"further values the row reports, {labels[1:]}."
        )
    return row


def row_lines(row):
    """The table lines of a row: `(label, name, paper number, paper note)`."""
    lines = []
    for i, metric in enumerate(row["metrics"]):
        name = row["name"] if len(row["metrics"]) == 1 else f"{row['name']}, {metric}"
        paper = (
            (row["paper"], row["paper_note"])
            if i == 0
            else row["papers"].get(metric, (None, ""))
        )
        lines.append((metric, name, *paper))
    if row["idt"]:
        lines.append((IDT, f"{row['name']} + iDT", *row["papers"].get(IDT, (None, ""))))
    return lines


def find_rows(table, *, gin_dir=GIN_DIR):
    """The header dicts of every gin file of `table`, ordered by row then file."""
    paths = [
        p for pattern in ROW_FILES for p in glob.glob(os.path.join(gin_dir, pattern))
    ]
    rows = [r for r in map(parse_header, sorted(paths)) if table in r["tables"]]
    if not rows:
        raise ValueError(f"no gin file of {ROW_FILES} belongs to table {table!r}.")
    for row in rows:  # as gin and the tables name it: 'toy/clips_c3d_alone.gin'
        row["file"] = os.path.relpath(row["path"], gin_dir)
    if len({r["report"] for r in rows}) > 1:
        raise ValueError(
            f"table {table!r} mixes '# Report: streams' rows with metric rows."
        )
    return sorted(rows, key=lambda r: (r["index"], r["file"]))


# ---- One row's config -------------------------------------------------------


def split_bindings(split):
    """The macro bindings that select split `split` (none for None)."""
    if split is None:
        return []
    return [f"TRAIN_SPLIT = 'train_split{split}'", f"TEST_SPLIT = 'test_split{split}'"]


def own_statements(path):
    """A gin file's own statements: its lines but comments and includes."""
    with open(path, encoding="utf-8") as f:
        return [
            line.rstrip("\n")
            for line in f
            if line.strip()
            and not line.lstrip().startswith("#")
            and not _INCLUDE_RE.match(line)
        ]


def parse_row(row, *, data_dir, split=None, overlays=(), bindings=()):
    """Parses `row` as the runner runs it (order: the module docstring).

    `overlays` are paths of gin files.
    """
    statements = [f"include {row['path']!r}", *split_bindings(split)]
    if overlays:
        statements += [f"include {os.path.abspath(o)!r}" for o in overlays]
        statements += own_statements(row["path"])
    statements += [*bindings, f"DATA_DIR = {data_dir!r}"]
    gin.clear_config()
    cli.parse_gin([], statements)


def canonical_config():
    """The parsed gin config as sorted `binding = value` lines, macros inlined.

    From `gin.config_str()`, which lists every bound parameter once, sorted,
    and the macros apart; a macro reference (`%DATA_DIR`) is replaced by the
    macro's value, so that configs binding the same values are equal lines.
    """
    macros, bindings, in_macros = {}, [], False
    # Wide enough for one line per binding (gin also rules each section
    # with a comment line of this width).
    for line in gin.config_str(max_line_length=100_000).splitlines():
        if line.startswith("# Macros:"):
            in_macros = True
        elif line.startswith("# Parameters for"):
            in_macros = False
        if not line or line.startswith(("#", "import ", "from ")):
            continue
        key, value = line.split(" = ", 1)
        if in_macros:
            macros[key] = value
        else:
            bindings.append((key, value))

    def inline(value):
        return _MACRO_REF_RE.sub(lambda m: macros.get(m[1], m[0]), value)

    for _ in range(len(macros)):  # macros may name macros
        macros = {k: inline(v) for k, v in macros.items()}
    return sorted(f"{key} = {inline(value)}" for key, value in bindings)


def _decides_training(line):
    """False for a binding (canonical line) whose role (`avlad_tf.settings`)
    says it does not decide what is trained: what evaluation reads, or how
    the work runs."""
    selector, arg = line.split(" = ", 1)[0].rsplit(".", 1)
    name = selector.rsplit("/", 1)[-1].rsplit(".", 1)[-1]
    return settings.role(name, arg) not in settings.CHANGEABLE


def _digest(lines):
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:12]
