r"""Trains and evaluates every row of a paper table and writes a markdown table.

  python -m experiments.run_table --table=2b --data_dir=hmdb51=data/hmdb51 \
      --runs_dir=runs/tables --output_dir=experiments/results/hmdb51

Rows are the `gin/table<N>_*.gin` files whose header names the table, one
file per row. Each header is machine-read:

  # Table 4, row 2: ActionVLAD, HMDB51 (late fusion 1 : 2, top-1 %).
  # Paper: 66.9 (Table 4, Sec. 4.6), mean over the three splits
  # Dataset: hmdb51
  # Splits: 1, 2, 3                  (optional; one run per split)
  # Metric: top1                     (optional; `mAP, wAP`: both, Charades)
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
- rows that differ only in what evaluation reads (`evaluate.*` and
  `export.*` in any scope, `train.evaluate_split`, `train.fuse_weights`,
  `train.export`; `_decides_training`) share one training run, and each
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

Overlays: `--gin_file` overlays and `--gin_bindings` apply to every row.
The runner parses, in this order,

  include '<row>'; the split's TRAIN_SPLIT / TEST_SPLIT; include
  '<overlay>' (each); the row's own statements again (those after its
  `include` lines); --gin_bindings; DATA_DIR = '<--data_dir>'

so an overlay changes what the rows share, never a row's own change (its K,
pooling, schedule, crops); an overlay that binds the split macros fixes the
split, and a split row whose splits then resolve to one config runs once. The
toy overlay is `gin/toy/shrink.gin`, the shrink `gin/toy/base.gin` applies to
base.gin (tiny backbone, 8 frames, 400 + 200 updates, splits `train` /
`test`, the embedded toy dataset):

  python -m experiments.run_table --table=2b --table=3a \
      --data_dir=hmdb51=data/toy --gin_file=toy/shrink.gin \
      --runs_dir=runs/toy_tables --output_dir=experiments/results/toy \
      --note="Toy dataset (data_prep/toy.py), not the paper's data."
"""

import glob
import hashlib
import json
import os
import re
import shlex
import statistics
import sys
import time

from absl import app
from absl import flags
from absl import logging
import gin

from avlad_tf import cli

GIN_DIR = cli.GIN_DIR
REPO = os.path.dirname(GIN_DIR)
IDT = "iDT"  # the label of a row's iDT-fusion line

_ROW_RE = re.compile(
    r"^# Table (?P<tables>[\w/]+), row (?P<index>\d+): "
    r"(?P<name>[^(]+?)\s*(?:\((?P<detail>.*)\))?\.?$"
)
_KEY_RE = re.compile(
    r"^# (?P<key>Paper|Dataset|Metric|Splits|iDT)"
    r"(?: \((?P<label>[^)]+)\))?: (?P<value>.+)$"
)
_INCLUDE_RE = re.compile(r"^\s*include\s")
_MACRO_REF_RE = re.compile(r"%([A-Za-z_][\w.]*)")
# Bindings only evaluation reads: rows that differ only here share training.
_EVAL_CONFIGURABLES = ("evaluate", "export")
_EVAL_TRAIN_ARGS = ("evaluate_split", "fuse_weights", "export")


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
                    "config share a run by themselves (experiments/run_table.py)."
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
            else:
                row["dataset"] = value
    for key in ("tables", "dataset"):
        if key not in row:
            raise ValueError(
                f'{path}: the header has no "# {key.title()}" line '
                "(see experiments/run_table.py)."
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
    rows = [
        parse_header(p) for p in sorted(glob.glob(os.path.join(gin_dir, "table*.gin")))
    ]
    rows = [r for r in rows if table in r["tables"]]
    if not rows:
        raise ValueError(f"no gin/table*.gin file belongs to table {table!r}.")
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
    """False for a binding (canonical line) that only evaluation reads."""
    selector, arg = line.split(" = ", 1)[0].rsplit(".", 1)
    name = selector.rsplit("/", 1)[-1].rsplit(".", 1)[-1]
    if name in _EVAL_CONFIGURABLES:
        return False
    return not (name == "train" and arg in _EVAL_TRAIN_ARGS)


def _digest(lines):
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:12]


def _jsonable(value):
    """`train`'s outcome as JSON values (numpy scalars and arrays as such)."""
    return json.loads(
        json.dumps(
            value, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)
        )
    )


def _record_row(workdir, row, split, training):
    """`training_config.gin` (once) and the row in `rows.txt`."""
    path = os.path.join(workdir, "training_config.gin")
    if not os.path.exists(path):
        with open(path, "w", encoding="utf-8") as f:
            f.write(
                "# The bindings that decided this run's training "
                "(experiments/run_table.py, canonical_config).\n"
            )
            f.write("\n".join(training) + "\n")
    entry = row["file"] + ("" if split is None else f" split {split}")
    path = os.path.join(workdir, "rows.txt")
    seen = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            seen = f.read().splitlines()
    if entry not in seen:
        with open(path, "a", encoding="utf-8") as f:
            f.write(entry + "\n")


def _train(workdir):
    """Trains, evaluates and fuses the parsed config, as `avlad_tf.train`."""
    # Heavy (TensorFlow): imported only when a row trains.
    from avlad_tf.training import experiment  # pylint: disable=import-outside-toplevel

    return experiment.train(workdir=workdir)


def _fuse_idt_files(score_paths, weights, idt_path):
    """The release's iDT fusion of late-fused scores; returns its top-1."""
    from avlad_tf import late_fusion  # pylint: disable=import-outside-toplevel

    result = late_fusion.fuse_files(
        list(score_paths), list(weights), labels=None, idt_path=idt_path
    )
    return result["fused_idt"]


def run_row(row, *, runs_dir, data_dir, split=None, overlays=(), bindings=()):
    """Parses one row (one split); trains and evaluates it unless its config
    ran before. The config stays parsed for the caller.

    Returns:
      dict: `outcome` (`train`'s, JSON values), `workdir`, `config` (the
      hash of the whole config), `seconds`, `cached`.
    """
    parse_row(row, data_dir=data_dir, split=split, overlays=overlays, bindings=bindings)
    config = canonical_config()
    training = [line for line in config if _decides_training(line)]
    workdir = os.path.join(runs_dir, f"{row['dataset']}_{_digest(training)}")
    key = _digest(config)
    os.makedirs(workdir, exist_ok=True)
    _record_row(workdir, row, split, training)
    outcome_path = os.path.join(workdir, f"outcome_{key}.json")
    if os.path.exists(outcome_path):
        logging.info("%s: config %s ran before in %s", row["file"], key, workdir)
        with open(outcome_path, encoding="utf-8") as f:
            result = json.load(f)
        return {**result, "workdir": workdir, "config": key, "cached": True}
    start = time.time()
    outcome = _jsonable(_train(workdir))
    result = {"outcome": outcome, "seconds": time.time() - start}
    with open(
        os.path.join(workdir, f"operative_config_{key}.gin"), "w", encoding="utf-8"
    ) as f:
        f.write(gin.operative_config_str())
    with open(outcome_path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    os.replace(outcome_path + ".tmp", outcome_path)
    return {**result, "workdir": workdir, "config": key, "cached": False}


def row_values(outcome, row):
    """`{metric: fraction}` a row reports from `train`'s outcome dict."""
    if "late_fusion" in outcome:  # late fusion of the trained streams
        if row["metrics"] != ["top1"]:
            raise ValueError(
                f"{row['file']}: late fusion reports top1, not {row['metrics']}."
            )
        return {"top1": outcome["late_fusion"]}
    metrics = [v for v in outcome.values() if isinstance(v, dict)]
    if len(metrics) != 1:
        raise ValueError(
            f"{row['file']}: expected one evaluated stream or a "
            f"fusion; train returned {sorted(outcome)}. Does the "
            "config set train.evaluate_split?"
        )
    return {m: metrics[0][m] for m in row["metrics"]}


def _idt_value(row, outcome, split, idt_dir):
    """Fuses the row's late-fused scores with iDT scores (release Sec. 9.2)."""
    streams = _bound("train.streams")
    weights = _bound("train.fuse_weights")
    if weights is None:
        raise ValueError(
            f"{row['file']}: the iDT fusion needs a late-fused "
            "row (train.fuse_weights)."
        )
    idt_file = row["idt"].format(split=split)
    return _fuse_idt_files(
        [outcome[s]["scores_path"] for s in streams],
        weights,
        os.path.join(idt_dir, idt_file),
    )


def _bound(name):
    """The value gin binds to `name`, or None."""
    try:
        return gin.query_parameter(name)
    except ValueError:
        return None


def _one_line(error):
    message = " ".join(f"{type(error).__name__}: {error}".split())
    return message[:200].replace("|", "/")


def _run_splits(row, *, runs_dir, data_dir, overlays, bindings, idt_dir):
    """Runs every split of a row; its values by line label, in percent."""
    labels = [label for label, *_ in row_lines(row)]
    result = {
        "values": {label: [] for label in labels},
        "errors": {},
        "skipped": {},
        "workdirs": [],
    }
    configs = set()
    for split in row["splits"]:
        if split is not None:
            print(f"  split {split}", flush=True)
        try:
            run = run_row(
                row,
                runs_dir=runs_dir,
                data_dir=data_dir,
                split=split,
                overlays=overlays,
                bindings=bindings,
            )
            if run["config"] in configs:
                continue  # an overlay fixed the split: the same run again
            configs.add(run["config"])
            result["workdirs"].append(run["workdir"])
            for metric, value in row_values(run["outcome"], row).items():
                result["values"][metric].append(100.0 * value)
        except Exception as e:  # pylint: disable=broad-except
            # One failed row must not lose the others; the table shows it.
            logging.exception("%s failed", row["file"])
            result["errors"] = {label: _one_line(e) for label in labels}
            return result
        if not row["idt"]:
            continue
        if idt_dir is None:
            result["skipped"][IDT] = f"needs --idt_dir with {row['idt']}"
            continue
        try:
            result["values"][IDT].append(
                100.0 * _idt_value(row, run["outcome"], split, idt_dir)
            )
        except Exception as e:  # pylint: disable=broad-except
            logging.exception("%s: iDT fusion failed", row["file"])
            result["errors"][IDT] = _one_line(e)
    return result


# ---- The table ----------------------------------------------------------------


def _fmt(x):
    return "—" if x is None else f"{x:.1f}"


def _ours(values, error, skipped, paper):
    """The `ours` and `difference` cells of one line."""
    if error:
        return f"failed: {error}", "—"
    if not values:
        return (f"not run: {skipped}" if skipped else "not run"), "—"
    mean = statistics.mean(values)
    ours = _fmt(mean)
    if len(values) > 1:
        ours = f"{mean:.1f} ± {statistics.stdev(values):.1f} ({len(values)} splits)"
    return ours, "—" if paper is None else f"{mean - paper:+.1f}"


def markdown_table(table, rows, results, *, note=""):
    """The table: line | gin file | paper | ours | difference."""
    lines = [f"## Table {table}", ""]
    if note:
        lines += [note, ""]
    lines += ["| row | gin file | paper | ours | difference |", "|---|---|---|---|---|"]
    for row in rows:
        result = results.get(row["file"], {})
        for label, name, paper, paper_note in row_lines(row):
            detail = row["detail"]
            if label == IDT:
                detail = "0.75 / 0.25 with L2-normalised iDT scores" + (
                    f", after {detail}" if detail else ""
                )
            detail = f" ({detail})" if detail else ""
            note_text = f" <sub>{paper_note}</sub>" if paper_note else ""
            ours, diff = _ours(
                result.get("values", {}).get(label, []),
                result.get("errors", {}).get(label),
                result.get("skipped", {}).get(label),
                paper,
            )
            lines.append(
                f"| {name}{detail} | `{row['file']}` | "
                f"{_fmt(paper)}{note_text} | {ours} | {diff} |"
            )
    return "\n".join(lines) + "\n"


def run_table(
    table, *, data_dirs, runs_dir, overlays=(), bindings=(), idt_dir=None, note=""
):
    """Runs every row of `table`; returns `(markdown, results by file)`.

    `overlays` are gin files (paths, or names in gin/).
    """
    rows = find_rows(table)
    overlays = [cli.resolve_gin_file(o) for o in overlays]
    runs_dir = os.path.abspath(runs_dir)
    results = {}
    for i, row in enumerate(rows, 1):
        print(f"[table {table}] {i}/{len(rows)} {row['file']}", flush=True)
        if row["dataset"] not in data_dirs:
            message = f"no --data_dir for {row['dataset']}"
            results[row["file"]] = {
                "errors": {label: message for label, *_ in row_lines(row)}
            }
            continue
        results[row["file"]] = _run_splits(
            row,
            runs_dir=runs_dir,
            data_dir=data_dirs[row["dataset"]],
            overlays=overlays,
            bindings=bindings,
            idt_dir=idt_dir,
        )
    return markdown_table(table, rows, results, note=note), results


def _define_flags():
    # Only when run as a program, so importing this module defines no flags.
    flags.DEFINE_multi_string("table", None, "Table id, e.g. 2b (repeat).")
    flags.DEFINE_multi_string(
        "data_dir",
        [],
        "DATASET=PATH of a prepared dataset (hmdb51, ucf101, charades); repeat.",
    )
    flags.DEFINE_string("runs_dir", "runs/tables", "Where run directories go.")
    flags.DEFINE_string(
        "output_dir", None, "Write table<N>.md here (default: only print)."
    )
    flags.DEFINE_multi_string(
        "gin_file",
        [],
        "Overlay gin files (a path, or a name in gin/, e.g. "
        "toy/shrink.gin), applied after each row's file; the row's own "
        "statements win.",
    )
    flags.DEFINE_multi_string("gin_bindings", [], "Extra bindings (last).")
    flags.DEFINE_string("idt_dir", None, "Directory of iDT score files.")
    flags.DEFINE_string("note", "", "A line printed above each table.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    if not f.table:
        raise app.UsageError("give at least one --table.")
    bad = [d for d in f.data_dir if "=" not in d]
    if bad:
        raise app.UsageError(f"--data_dir takes DATASET=PATH, got {bad}.")
    data_dirs = dict(d.split("=", 1) for d in f.data_dir)
    command = shlex.join(["python", "-m", "experiments.run_table"] + sys.argv[1:])
    # Overlays may also be given relative to the repository.
    overlays = [
        p
        if os.path.exists(p) or not os.path.exists(os.path.join(REPO, p))
        else os.path.join(REPO, p)
        for p in f.gin_file
    ]
    failed = False
    for table in f.table:
        text, results = run_table(
            table,
            data_dirs=data_dirs,
            runs_dir=f.runs_dir,
            overlays=overlays,
            bindings=f.gin_bindings,
            idt_dir=f.idt_dir,
            note=f.note,
        )
        failed |= any(r.get("errors") for r in results.values())
        text += f"\nMade by: `{command}`\n"
        if f.output_dir:
            os.makedirs(f.output_dir, exist_ok=True)
            path = os.path.join(f.output_dir, f"table{table}.md")
            with open(path, "w", encoding="utf-8") as out:
                out.write(text)
            print(f"wrote {path}")
        print(text)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    _define_flags()
    cli.run(main)
