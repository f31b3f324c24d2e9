r"""Trains and evaluates every row of a paper table and writes a markdown table.

  python -m experiments.run_table --table=2b --data_dir=hmdb51=data/hmdb51 \
      --runs_dir=runs/tables --output_dir=experiments/results/hmdb51

Rows, their headers, splits and shared runs: `experiments/rows.py`.

Overlays: `--gin_file` overlays and `--gin_bindings` apply to every row.
The runner parses, in this order,

  include '<row>'; the split's TRAIN_SPLIT / TEST_SPLIT; include
  '<overlay>' (each); the row's own statements again (those after its
  `include` lines); --gin_bindings; DATA_DIR = '<--data_dir>'

so an overlay changes what the rows share, never a row's own change (its K,
pooling, schedule, crops); an overlay that binds the split macros fixes the
split, and a split row whose splits then resolve to one config runs once. The
toy overlay is `gin/toy/shrink.gin`, the shrink `gin/toy/base.gin` applies to
base.gin (tiny backbone, 8 frames, 800 + 400 updates, splits `train` /
`test`, the embedded toy dataset):

  python -m experiments.run_table --table=2b --table=3a \
      --data_dir=hmdb51=data/toy --gin_file=toy/shrink.gin \
      --runs_dir=runs/toy_tables --output_dir=experiments/results/toy \
      --note="Toy dataset (data_prep/toy.py), not the paper's data."
"""

import os
import shlex
import sys
import time

from absl import app
from absl import flags
from absl import logging
import gin

from avlad_tf import cli
from avlad_tf import settings
from avlad_tf import storage

if __name__ == "__main__":
    cli.start_quietly()  # first: before anything imports TensorFlow

from experiments import markdown
from experiments import rows as row_lib


def _as_json(value):
    """JSON for what JSON cannot hold: numpy scalars and arrays as values."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def _record_row(workdir, row, split, training):
    """`training_config.gin` (once) and the row in `rows.txt`."""
    path = storage.join(workdir, "training_config.gin")
    if not storage.exists(path):
        storage.write_text(
            path,
            "# The bindings that decided this run's training "
            "(experiments/run_table.py, row_lib.canonical_config).\n"
            + "\n".join(training)
            + "\n",
        )
    entry = row["file"] + ("" if split is None else f" split {split}")
    path = storage.join(workdir, "rows.txt")
    seen = storage.read_text(path).splitlines() if storage.exists(path) else []
    if entry not in seen:
        storage.write_text(path, "".join(line + "\n" for line in [*seen, entry]))


def _train(workdir):
    """Trains, evaluates and fuses the parsed config, as `avlad_tf.train`."""
    # Heavy (TensorFlow): imported only when a row trains.
    from avlad_tf.training import experiment  # pylint: disable=import-outside-toplevel

    return experiment.train(workdir=workdir)


def _fuse_idt_files(score_paths, weights, idt_path):
    """The release's iDT fusion of late-fused scores; returns its top-1."""
    from avlad_tf.evaluation import late_fusion  # pylint: disable=import-outside-toplevel

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
    row_lib.parse_row(
        row, data_dir=data_dir, split=split, overlays=overlays, bindings=bindings
    )
    config = row_lib.canonical_config()
    training = [line for line in config if row_lib._decides_training(line)]
    workdir = storage.join(runs_dir, f"{row['dataset']}_{row_lib._digest(training)}")
    key = row_lib._digest(config)
    storage.makedirs(workdir)
    _record_row(workdir, row, split, training)
    outcome_path = storage.join(workdir, f"outcome_{key}.json")
    if storage.exists(outcome_path):
        logging.info("%s: config %s ran before in %s", row["file"], key, workdir)
        result = settings.read_json(outcome_path)
        return {**result, "workdir": workdir, "config": key, "cached": True}
    start = time.time()
    outcome = settings.jsonable(_train(workdir), default=_as_json)
    result = {"outcome": outcome, "seconds": time.time() - start}
    storage.write_text(
        storage.join(workdir, f"operative_config_{key}.gin"),
        gin.operative_config_str(),
    )
    settings.write_json(outcome_path, result, indent=1)
    return {**result, "workdir": workdir, "config": key, "cached": False}


def row_values(outcome, row):
    """`{metric: fraction}` a row reports from `train`'s outcome dict.

    A `Report: streams` row: `{'rgb', 'flow', 'fusion'}` top-1 (those the
    run evaluated); the fusion is the late fusion or the `fused` stream.
    """
    if row["report"] == "streams":
        values = {s: outcome[s]["top1"] for s in ("rgb", "flow") if s in outcome}
        if "late_fusion" in outcome:
            values["fusion"] = outcome["late_fusion"]
        elif "fused" in outcome:
            values["fusion"] = outcome["fused"]["top1"]
        return values
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


def run_cost(run):
    """`{'parameters', 'minutes'}` of a run: its streams' parameters together
    and the minutes of the whole run (training, evaluation, fusion)."""
    streams = [v for v in run["outcome"].values() if isinstance(v, dict)]
    return {
        "parameters": sum(s.get("num_params", 0) for s in streams),
        "minutes": run["seconds"] / 60,
    }


def _idt_value(row, outcome, split, idt_dir):
    """Fuses the row's late-fused scores with iDT scores (release Sec. 9.2)."""
    streams = cli.bound_or_none("train.streams")
    weights = cli.bound_or_none("train.fuse_weights")
    if weights is None:
        raise ValueError(
            f"{row['file']}: the iDT fusion needs a late-fused "
            "row (train.fuse_weights)."
        )
    idt_file = row["idt"].format(split=split)
    return _fuse_idt_files(
        [outcome[s]["scores_path"] for s in streams],
        weights,
        storage.join(idt_dir, idt_file),
    )


def _one_line(error):
    message = " ".join(f"{type(error).__name__}: {error}".split())
    return message[:200].replace("|", "/")


def _labels(row):
    if row["report"] == "streams":
        return [*markdown.STREAM_COLUMNS, *markdown.COST_COLUMNS]
    return [label for label, *_ in row_lib.row_lines(row)]


def _run_splits(row, *, runs_dir, data_dir, overlays, bindings, idt_dir, seeds):
    """Runs every split and seed of a row; its values by line label, metrics
    in percent."""
    labels = _labels(row)
    result = {
        "values": {label: [] for label in labels},
        "errors": {},
        "skipped": {},
        "workdirs": [],
        "unit": _unit(len(row["splits"]), len(seeds)),
    }
    configs = set()
    for split in row["splits"]:
        for seed in seeds:
            where = ", ".join(
                f"{k} {v}"
                for k, v in (("split", split), ("seed", seed))
                if v is not None
            )
            if where:
                print(f"  {where}", flush=True)
            seed_binding = [] if seed is None else [f"train_stream.seed = {seed}"]
            try:
                run = run_row(
                    row,
                    runs_dir=runs_dir,
                    data_dir=data_dir,
                    split=split,
                    overlays=overlays,
                    bindings=[*bindings, *seed_binding],
                )
                if run["config"] in configs:
                    continue  # an overlay fixed the split: the same run again
                configs.add(run["config"])
                result["workdirs"].append(run["workdir"])
                for metric, value in row_values(run["outcome"], row).items():
                    result["values"][metric].append(100.0 * value)
                if row["report"] == "streams":
                    for column, value in run_cost(run).items():
                        result["values"][column].append(value)
            except Exception as e:  # pylint: disable=broad-except
                # One failed row must not lose the others; the table shows it.
                logging.exception("%s failed", row["file"])
                result["errors"] = {label: _one_line(e) for label in labels}
                return result
            if row["idt"]:
                _add_idt(result, row, run["outcome"], split, idt_dir)
    return result


def _add_idt(result, row, outcome, split, idt_dir):
    """The row's iDT-fusion value of one run, or why it has none."""
    if idt_dir is None:
        result["skipped"][row_lib.IDT] = f"needs --idt_dir with {row['idt']}"
        return
    try:
        result["values"][row_lib.IDT].append(
            100.0 * _idt_value(row, outcome, split, idt_dir)
        )
    except Exception as e:  # pylint: disable=broad-except
        logging.exception("%s: iDT fusion failed", row["file"])
        result["errors"][row_lib.IDT] = _one_line(e)


def _unit(num_splits, num_seeds):
    """What the runs of one row vary in, as the table says it."""
    if num_seeds == 1:
        return "splits"
    return "seeds" if num_splits == 1 else "runs"


def run_table(
    table,
    *,
    data_dirs,
    runs_dir,
    overlays=(),
    bindings=(),
    idt_dir=None,
    note="",
    seeds=(None,),
):
    """Runs every row of `table`; returns `(markdown, results by file)`.

    `overlays` are gin files (paths, or names in gin/). `seeds`: each row
    (split) runs once per seed, bound as `train_stream.seed`; `None` keeps
    the config's seed.
    """
    rows = row_lib.find_rows(table)
    overlays = [cli.resolve_gin_file(o) for o in overlays]
    runs_dir = storage.absolute(runs_dir)
    results = {}
    for i, row in enumerate(rows, 1):
        print(f"[table {table}] {i}/{len(rows)} {row['file']}", flush=True)
        if row["dataset"] not in data_dirs:
            message = f"no --data_dir for {row['dataset']}"
            results[row["file"]] = {"errors": dict.fromkeys(_labels(row), message)}
            continue
        results[row["file"]] = _run_splits(
            row,
            runs_dir=runs_dir,
            data_dir=data_dirs[row["dataset"]],
            overlays=overlays,
            bindings=bindings,
            idt_dir=idt_dir,
            seeds=seeds,
        )
    return markdown.markdown_table(table, rows, results, note=note), results


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
    flags.DEFINE_list(
        "seeds",
        [],
        "Run each row once per seed (train_stream.seed), e.g. 0,1,2; the "
        "table gives mean ± std (default: the config's seed, one run).",
    )


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
    if not all(seed.isdigit() for seed in f.seeds):
        raise app.UsageError(f"--seeds takes integers, e.g. 0,1,2; got {f.seeds}.")
    command = shlex.join(["python", "-m", "experiments.run_table"] + sys.argv[1:])
    # Overlays may also be given relative to the repository.
    overlays = [
        p
        if os.path.exists(p) or not os.path.exists(os.path.join(row_lib.REPO, p))
        else os.path.join(row_lib.REPO, p)
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
            seeds=[int(seed) for seed in f.seeds] or [None],
        )
        failed |= any(r.get("errors") for r in results.values())
        text += f"\nMade by: `{command}`\n"
        if f.output_dir:
            storage.makedirs(f.output_dir)
            path = storage.join(f.output_dir, f"table{table}.md")
            storage.write_text(path, text)
            print(f"wrote {path}")
        print(text)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    _define_flags()
    cli.run(main)
