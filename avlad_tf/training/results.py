"""The results table a run prints and writes to `WORKDIR/results.md`."""

from avlad_tf import storage


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
    path = storage.join(workdir, "results.md")
    storage.write_text(path, text)
    return path
