r"""Trains and evaluates every row of a paper table and writes a markdown table.

  python -m experiments.run_table --table=2b --data_dir=hmdb51=data/hmdb51 \
      --runs_dir=runs/tables --output_dir=experiments/results/hmdb51

Rows are the `gin/table<N>_*.gin` files whose header names the table. Each
header is machine-read:

  # Table 2b, row 1: avg pooling (RGB, HMDB51 split 1, top-1 %).
  # Paper: 41.6 (Table 2b, Sec. 4.4)
  # Dataset: hmdb51
  # Metric: top1              (optional; mAP / wAP for Charades)
  # iDT: idt_split1.h5        (optional; fused the release's way, --idt_dir)
  # Run: table4_hmdb51_split1  (optional; share another row's training run)
  # Command: python -m avlad_tf.train --gin_file=... --workdir=...

`Paper` is the number, then free text shown under it in the table (the
paper's table and section; no number: `—` and the text). Other comment
lines (`# Deviation: ...`, notes) are for readers and are not parsed; the
header ends at the first line that is not a comment.

Files with the same row number and name (one per split) form one row of the
markdown table, reported as mean ± std over the splits, as the paper averages
them. A row's value is the late-fused top-1 when the config fuses streams
(`train.fuse_weights`), otherwise the trained stream's metric. Finished rows
(`<runs_dir>/<run>/row_result_<gin file>.json`; run = the gin name or the
`Run` key) are skipped, and training itself resumes from checkpoints, so re-running the command continues a table.

`--gin_file` overlays and `--gin_bindings` are applied after each row's file,
e.g. the toy overlay (tiny backbone, short schedules, toy splits):

  python -m experiments.run_table --table=2b --table=3a \
      --data_dir=hmdb51=data/toy --gin_file=experiments/toy_overlay.gin \
      --note="Toy dataset, not the paper's data" \
      --output_dir=experiments/results/toy
"""

import glob
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

_ROW_RE = re.compile(r'^# Table (?P<tables>[\w/]+), row (?P<index>\d+): '
                     r'(?P<name>[^(]+?)\s*(?:\((?P<detail>.*)\))?\.?$')
_KEY_RE = re.compile(r'^# (?P<key>Paper|Dataset|Metric|iDT|Run): (?P<value>.+)$')


def parse_header(path):
    """Reads a row file's header into a dict (`tables`, `index`, `name`, ...).

    Raises:
      ValueError: when the header lacks the `# Table` or `# Dataset` line.
    """
    row = {'path': path, 'file': os.path.basename(path), 'metric': 'top1',
           'paper': None, 'paper_note': '', 'idt': None, 'detail': '',
           'run': os.path.splitext(os.path.basename(path))[0]}
    with open(path, encoding='utf-8') as f:
        for line in f:
            if not line.startswith('#'):
                break
            line = line.rstrip()
            match = _ROW_RE.match(line)
            if match:
                row['tables'] = match['tables'].split('/')
                row['index'] = int(match['index'])
                row['name'] = match['name'].strip()
                row['detail'] = match['detail'] or ''
                continue
            match = _KEY_RE.match(line)
            if match:
                key, value = match['key'], match['value'].strip()
                if key == 'Paper':
                    number = re.match(r'([\d.]+)\s*(.*)', value)
                    if number:
                        row['paper'], row['paper_note'] = float(number[1]), number[2]
                    else:
                        row['paper_note'] = value
                else:
                    row[key.lower()] = value
    for key in ('tables', 'dataset'):
        if key not in row:
            raise ValueError(f'{path}: the header has no "# {key.title()}" line '
                             '(see experiments/run_table.py).')
    return row


def find_rows(table, *, gin_dir=GIN_DIR):
    """The header dicts of every gin file of `table`, ordered by row then file."""
    rows = [parse_header(p)
            for p in sorted(glob.glob(os.path.join(gin_dir, 'table*.gin')))]
    rows = [r for r in rows if table in r['tables']]
    if not rows:
        raise ValueError(f'no gin/table*.gin file belongs to table {table!r}.')
    return sorted(rows, key=lambda r: (r['index'], r['file']))


def _row_value(outcome, row):
    """The number a row reports, from `train`'s outcome dict (fraction)."""
    if 'late_fusion' in outcome:  # late fusion of the trained streams
        return outcome['late_fusion']
    metrics = [v for v in outcome.values() if isinstance(v, dict)]
    if len(metrics) != 1:
        raise ValueError(f'{row["file"]}: expected one evaluated stream or a '
                         f'fusion; train returned {sorted(outcome)}. Does the '
                         'config set train.evaluate_split?')
    return metrics[0][row['metric']]


def run_row(row, *, workdir, data_dir, overlays=(), bindings=(), idt_dir=None):
    """Trains and evaluates one gin file (skipped when already finished).

    Returns:
      The row's result dict: `value` (percent), `seconds`, `workdir`.
    """
    result_path = os.path.join(workdir, f'row_result_{row["file"]}.json')
    if os.path.exists(result_path):
        with open(result_path) as f:
            logging.info('%s: finished before, skipped', row['file'])
            return json.load(f)
    from avlad_tf.training import loop  # heavy: TensorFlow, only when needed
    gin.clear_config()
    cli.parse_gin([row['path'], *overlays],
                  [*bindings, f'DATA_DIR = {data_dir!r}'])
    start = time.time()
    outcome = loop.train(workdir=workdir)
    value = _row_value(outcome, row)
    if row['idt']:
        value = _fuse_idt(row, outcome, idt_dir)
    result = {'value': 100.0 * value, 'seconds': time.time() - start,
              'workdir': workdir}
    with open(os.path.join(workdir, 'operative_config.gin'), 'w') as f:
        f.write(gin.operative_config_str())
    with open(result_path, 'w') as f:
        json.dump(result, f, indent=1)
    return result


def _fuse_idt(row, outcome, idt_dir):
    """Fuses the row's late-fused scores with iDT scores (release §9.2)."""
    from avlad_tf import fuse
    if idt_dir is None:
        raise ValueError(f'{row["file"]} fuses iDT scores ({row["idt"]}); pass '
                         '--idt_dir with that file.')
    streams = [s for s in ('rgb', 'flow') if s in outcome]
    weights = gin.query_parameter('train.fuse_weights')
    result = fuse.fuse_files([outcome[s]['scores_path'] for s in streams],
                             list(weights), labels=None,
                             idt_path=os.path.join(idt_dir, row['idt']))
    return result['fused_idt']


def _fmt(x):
    return '—' if x is None else f'{x:.1f}'


def markdown_table(table, rows, results, *, note=''):
    """The table: row | gin file(s) | paper | ours | difference."""
    groups = {}
    for row in rows:
        groups.setdefault((row['index'], row['name']), []).append(row)
    lines = [f'## Table {table}', '']
    if note:
        lines += [note, '']
    lines += ['| row | gin file | paper | ours | difference |',
              '|---|---|---|---|---|']
    for (_, name), members in groups.items():
        files = '<br>'.join(f'`{m["file"]}`' for m in members)
        values = [results[m['file']]['value'] for m in members
                  if 'value' in results.get(m['file'], {})]
        errors = [results[m['file']]['error'] for m in members
                  if 'error' in results.get(m['file'], {})]
        paper = members[0]['paper']
        if errors:
            ours, diff = f'failed: {errors[0]}', '—'
        elif len(values) > 1:
            mean = statistics.mean(values)
            ours = f'{mean:.1f} ± {statistics.stdev(values):.1f} ({len(values)} splits)'
            diff = '—' if paper is None else f'{mean - paper:+.1f}'
        else:
            ours = _fmt(values[0]) if values else 'not run'
            diff = '—' if paper is None or not values else f'{values[0] - paper:+.1f}'
        detail = f' ({members[0]["detail"]})' if members[0]['detail'] else ''
        note_text = f' <sub>{members[0]["paper_note"]}</sub>' if members[0][
            'paper_note'] else ''
        lines.append(f'| {name}{detail} | {files} | {_fmt(paper)}{note_text} | '
                     f'{ours} | {diff} |')
    return '\n'.join(lines) + '\n'


def run_table(table, *, data_dirs, runs_dir, overlays=(), bindings=(),
              idt_dir=None, note=''):
    """Runs every row of `table`; returns `(markdown, results by file)`."""
    rows = find_rows(table)
    results = {}
    for i, row in enumerate(rows, 1):
        print(f'[table {table}] {i}/{len(rows)} {row["file"]}', flush=True)
        if row['dataset'] not in data_dirs:
            results[row['file']] = {'error': f'no --data_dir for {row["dataset"]}'}
            continue
        workdir = os.path.join(runs_dir, row['run'])
        try:
            results[row['file']] = run_row(
                row, workdir=workdir, data_dir=data_dirs[row['dataset']],
                overlays=overlays, bindings=bindings, idt_dir=idt_dir)
        except Exception as e:  # pylint: disable=broad-except
            # One failed row must not lose the others; the table shows the error.
            logging.exception('%s failed', row['file'])
            message = ' '.join(f'{type(e).__name__}: {e}'.split())  # one line
            results[row['file']] = {'error': message[:200].replace('|', '/')}
    return markdown_table(table, rows, results, note=note), results


def _define_flags():
    # Only when run as a program, so importing this module defines no flags.
    flags.DEFINE_multi_string('table', None, 'Table id, e.g. 2b (repeat).')
    flags.DEFINE_multi_string(
        'data_dir', [], 'DATASET=PATH of a prepared dataset (hmdb51, ucf101, '
        'charades); repeat.')
    flags.DEFINE_string('runs_dir', 'runs/tables', 'Where row workdirs go.')
    flags.DEFINE_string('output_dir', None,
                        'Write table<N>.md here (default: only print).')
    flags.DEFINE_multi_string('gin_file', [], 'Overlay gin files, applied after '
                              "each row's file.")
    flags.DEFINE_multi_string('gin_bindings', [], 'Extra bindings (last).')
    flags.DEFINE_string('idt_dir', None, 'Directory of iDT score files.')
    flags.DEFINE_string('note', '', 'A line printed above each table.')


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f'unexpected arguments: {argv[1:]}')
    f = flags.FLAGS
    if not f.table:
        raise app.UsageError('give at least one --table.')
    bad = [d for d in f.data_dir if '=' not in d]
    if bad:
        raise app.UsageError(f'--data_dir takes DATASET=PATH, got {bad}.')
    data_dirs = dict(d.split('=', 1) for d in f.data_dir)
    command = shlex.join(['python', '-m', 'experiments.run_table'] + sys.argv[1:])
    # Overlays may be given relative to the repository (experiments/...).
    overlays = [p if os.path.exists(p) or not os.path.exists(
        os.path.join(REPO, p)) else os.path.join(REPO, p) for p in f.gin_file]
    failed = False
    for table in f.table:
        text, results = run_table(
            table, data_dirs=data_dirs, runs_dir=f.runs_dir,
            overlays=overlays, bindings=f.gin_bindings,
            idt_dir=f.idt_dir, note=f.note)
        failed |= any('error' in r for r in results.values())
        text += f'\nMade by: `{command}`\n'
        if f.output_dir:
            os.makedirs(f.output_dir, exist_ok=True)
            path = os.path.join(f.output_dir, f'table{table}.md')
            with open(path, 'w', encoding='utf-8') as out:
                out.write(text)
            print(f'wrote {path}')
        print(text)
    if failed:
        sys.exit(1)


if __name__ == '__main__':
    _define_flags()
    app.run(main)
