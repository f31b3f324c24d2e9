"""After training: evaluate each stream, fuse, export, write `results.md`.

These steps call the other entry points' library functions
(docs/CONTRACTS.md): `avlad_tf.evaluate.evaluate`, `avlad_tf.fuse.fuse_files`
and `avlad_tf.export.export`.
"""

import os

from absl import logging

# evaluate, fuse and export are imported where they are used: each is also an
# entry point, and `python -m avlad_tf.evaluate` imports the training loop
# (through cli) while running as `__main__`; importing it again here under its
# own name would register its gin configurables twice.


def evaluate_stream(*, workdir, stream, split):
    """Runs `avlad_tf.evaluate.evaluate`; returns its metrics dict.

    Crops and batch size come from `evaluate`'s own bindings, in the stream's
    gin scope (e.g. `flow/evaluate.num_crops = 5`, as the release).
    """
    from avlad_tf import evaluate as evaluate_lib
    logging.info("Evaluating %s on %s", stream, split)
    return evaluate_lib.evaluate(workdir=workdir, stream=stream, split=split)


def fuse(score_paths, weights):
    """Late fusion of raw logits with `avlad_tf.fuse.fuse_files`."""
    from avlad_tf import fuse as fuse_lib
    return fuse_lib.fuse_files(list(score_paths), list(weights), labels=None)


def export(workdir):
    """`avlad_tf.export.export`; returns the export directory."""
    from avlad_tf import export as export_lib
    return export_lib.export(workdir=workdir)


def _percent(value):
    return "n/a" if value is None else f"{100.0 * float(value):.1f}"


def results_table(*, split, stream_metrics, fused=None, fuse_weights=None):
    """A Markdown table: one row per stream and one for the fusion."""
    lines = [f"| model | {split} top-1 (%) |", "|---|---|"]
    for stream, metrics in stream_metrics.items():
        top1 = metrics.get("top1", metrics.get("accuracy"))
        lines.append(f"| {stream} | {_percent(top1)} |")
    if fused is not None:
        weights = ":".join(f"{w:g}" for w in fuse_weights)
        lines.append(f"| late fusion ({weights}) | {_percent(fused)} |")
    return "\n".join(lines) + "\n"


def write_results(workdir, text):
    """`<workdir>/results.md`."""
    path = os.path.join(workdir, "results.md")
    with open(path, "w") as f:
        f.write(text)
    return path
