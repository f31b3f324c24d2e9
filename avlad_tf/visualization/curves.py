"""Training curves from a workdir's TensorBoard event files."""

import collections
import math
import os
import re

import numpy as np

from avlad_tf import storage
from avlad_tf.visualization import plotting

_EVENT_PREFIX = "events.out.tfevents"


def _natural_key(name):
    # Event file names end in `<seconds>.<host>.<pid>.<writer counter>.v2`;
    # a plain string sort puts writer 10 before writer 9 of one process.
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def find_event_files(log_dir):
    """`{run: [event files]}` in write order, run = folder relative to
    `log_dir` ('.' top)."""
    runs = collections.defaultdict(list)
    for root, _, files in storage.walk(log_dir):
        for name in sorted(files, key=_natural_key):
            if name.startswith(_EVENT_PREFIX):
                run = os.path.relpath(root, log_dir)
                runs[run].append(storage.join(root, name))
    return dict(runs)


def _scalar(value):
    """The float of a scalar summary value, or None for non-scalars."""
    import tensorflow as tf

    if value.HasField("simple_value"):
        return float(value.simple_value)
    if value.HasField("tensor"):
        array = tf.make_ndarray(value.tensor)
        if array.size == 1 and np.issubdtype(array.dtype, np.number):
            return float(array.reshape(()))
    return None


def read_scalars(log_dir):
    """Reads every scalar under `log_dir`.

    Returns:
        `{tag: {run: (steps [n], values [n])}}`, sorted by step; when a step
        was logged twice (a resumed run) the last value wins.

    Raises:
        FileNotFoundError: if `log_dir` holds no event files.
    """
    import tensorflow as tf

    runs = find_event_files(log_dir)
    if not runs:
        raise FileNotFoundError(
            f"no TensorBoard event files ({_EVENT_PREFIX}*) under {log_dir}"
        )
    scalars = collections.defaultdict(dict)
    for run, files in sorted(runs.items()):
        # tag -> {step: ((wall time, file, order), value)}: the newest write
        # of a step wins, even when two writers' files share a second.
        points = collections.defaultdict(dict)
        for file_index, path in enumerate(files):
            events = tf.compat.v1.train.summary_iterator(path)
            for order, event in enumerate(events):
                written = (event.wall_time, file_index, order)
                for value in event.summary.value:
                    scalar = _scalar(value)
                    previous = points[value.tag].get(int(event.step))
                    if scalar is not None and (
                        previous is None or previous[0] < written
                    ):
                        points[value.tag][int(event.step)] = (written, scalar)
        for tag, by_step in points.items():
            steps = np.array(sorted(by_step), np.int64)
            scalars[tag][run] = (steps, np.array([by_step[s][1] for s in steps]))
    return dict(scalars)


def plot_curves(scalars, path, *, tags=None, title="", width_px=1000, height_px=700):
    """One panel per tag, one line per run.

    Args:
        scalars: `read_scalars` output.
        path: output PNG.
        tags: tags to plot (default: all, sorted).
        title: figure title (e.g. the workdir).

    Raises:
        ValueError: if a requested tag was never logged.
    """
    tags = sorted(scalars) if tags is None else list(tags)
    missing = [t for t in tags if t not in scalars]
    if missing or not tags:
        raise ValueError(
            f"tags {missing or tags} not logged; available: {sorted(scalars)}"
        )
    columns = min(3, len(tags))
    rows = math.ceil(len(tags) / columns)
    fig = plotting.new_figure(width_px=width_px, height_px=height_px)
    for i, tag in enumerate(tags):
        ax = fig.add_subplot(rows, columns, i + 1)
        for run, (steps, values) in sorted(scalars[tag].items()):
            ax.plot(steps, values, marker="." if len(steps) < 30 else None, label=run)
        ax.set_title(tag, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    return plotting.save_figure(fig, path)
