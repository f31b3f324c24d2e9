"""After training: evaluate each stream, fuse, export, write `results.md`.

These steps call other entry points' library functions by their contract
names (docs/CONTRACTS.md): `avlad_tf.evaluate.evaluate`,
`avlad_tf.fuse.fuse_files` and `avlad_tf.export.export`.
"""

import importlib
import os

from absl import logging


def _contract_function(module_name, function_name):
    """`module.function`, or a clear error if that part is not installed."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise RuntimeError(
            f"train needs {module_name}.{function_name} for this config but "
            f"{module_name} cannot be imported ({error}). Set the matching "
            f"train.* binding to skip the step.") from error
    function = getattr(module, function_name, None)
    if function is None:
        raise RuntimeError(
            f"{module_name} has no function {function_name!r} "
            f"(docs/CONTRACTS.md, 'Entry-point functions').")
    return function


def evaluate_stream(*, workdir, stream, split):
    """Runs `avlad_tf.evaluate.evaluate`; returns its metrics dict.

    Crops and batch size come from `evaluate`'s own bindings, in the stream's
    gin scope (e.g. `flow/evaluate.num_crops = 5`, as the release).
    """
    evaluate = _contract_function("avlad_tf.evaluate", "evaluate")
    logging.info("Evaluating %s on %s", stream, split)
    return evaluate(workdir=workdir, stream=stream, split=split)


def fuse(score_paths, weights):
    """Late fusion of raw logits with `avlad_tf.fuse.fuse_files`."""
    fuse_files = _contract_function("avlad_tf.fuse", "fuse_files")
    return fuse_files(list(score_paths), list(weights), labels=None)


def export(workdir):
    """`avlad_tf.export.export`; returns the export directory."""
    return _contract_function("avlad_tf.export", "export")(workdir=workdir)


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
