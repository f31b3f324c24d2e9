r"""Trains and evaluates every row of a paper table and writes a markdown table.

  python -m experiments.run_table --table=2b --data_dir=hmdb51=data/hmdb51 \
      --runs_dir=runs/tables --output_dir=experiments/results/hmdb51

Rows, their headers, splits and shared runs: `experiments/rows.py`; running
them: `experiments/table_runs.py`.

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

from absl import app
from absl import flags

from avlad_tf import cli
from avlad_tf import storage

if __name__ == "__main__":
    cli.start_quietly()  # first: before anything imports TensorFlow

from experiments import rows as row_lib
from experiments import table_runs


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
        text, results = table_runs.run_table(
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
