"""The library of the table runner (`experiments/run_table.py`).

`run_table` runs every row of a paper table and returns its markdown and its
results; `run_row` parses, trains and evaluates one row (one split) unless
its config ran before; `row_values` and `run_cost` read a run's outcome for
the table; a row with an iDT line fuses its late-fused scores with the iDT
scores. Rows, their headers, splits and shared runs: `experiments/rows.py`.

TensorFlow is imported only when a row trains or fuses, so a program that
imports this module can start TensorFlow quietly first (`cli.start_quietly`).
"""

import time

from absl import logging
import gin

from avlad_tf import cli
from avlad_tf import settings
from avlad_tf import storage
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
