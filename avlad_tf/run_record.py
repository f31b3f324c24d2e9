"""What a training run resolved, recorded in `WORKDIR/run.json`.

`avlad_tf.train` resolves every setting that decides what a run means once,
before it writes anything else, and records it here:

- `data`: the dataset (`data_dir`, absolute), its label map and whether it is
  multi-label, and the split evaluated after training;
- `streams`: per stream (`rgb`, `flow`, `fused`), its modalities and training
  split, the input
  settings `make_dataset` reads with (sampling rule, frames, crop sizes,
  pixel parity switches; the gin home is `make_dataset.*`, in the stream's
  scope), the backbone's input rule (`layers.pixels.INPUT_RULES`), the
  number of evaluation crops (`evaluate.num_crops`, in the stream's scope)
  and the settings that decide the trained model (`train_stream`,
  `build_model`, `init_centers`);
- `fusion`: the late-fusion weight of each stream (`train.fuse_weights`), or
  None.

Evaluation, export, visualisation and `predict` (through the export) read
this record rather than gin: a workdir alone is enough to evaluate, export or
visualise it. A program may still override an evaluation-only setting
(crops, split) by binding it; a binding that would change what the run means
(`make_dataset.*`) and differs from the record is refused
(`check_input_bindings`).
"""

import inspect
import json
import os

import gin

from avlad_tf.data import schema
from avlad_tf.data import video_input

RECORD_FILE = "run.json"
FORMAT_VERSION = 1
# Arguments of `make_dataset` that are not the run's input settings (the
# seed is `train_stream.seed`'s).
_CALL_ARGUMENTS = (*video_input.CALL_ARGUMENTS, "seed")
# The release evaluated one centre crop unless told otherwise.
DEFAULT_NUM_CROPS = 1


def _jsonable(value):
    """Tuples as lists, recursively, so a record compares equal to its JSON."""
    return json.loads(json.dumps(value))


def _bindings(fn, scope):
    """gin's bindings of `fn` in `scope` (unscoped ones included)."""
    with gin.config_scope(scope or None):
        return gin.get_bindings(fn, inherit_scopes=True)


def resolved_arguments(fn, *, scope=""):
    """`fn`'s keyword defaults updated with gin's bindings in `scope`.

    Only `avlad_tf.train` calls this, while its configs are parsed: it is how
    a run's settings are resolved once, to be recorded.
    """
    values = {
        name: p.default
        for name, p in inspect.signature(fn).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    values.update(_bindings(fn, scope))
    return values


def _run_level(arguments):
    return _jsonable({k: v for k, v in arguments.items() if k not in _CALL_ARGUMENTS})


def input_settings(make_dataset_fn, *, scope=""):
    """The run-level input settings `make_dataset_fn` resolves in `scope`."""
    return _run_level(resolved_arguments(make_dataset_fn, scope=scope))


def build(*, data_dir, info, evaluate_split, streams, fuse_weights):
    """The record of a run (see the module docstring).

    Args:
        data_dir: the prepared dataset.
        info: its checked metadata (`video_input.dataset_info`).
        evaluate_split: the split evaluated after training, or None.
        streams: `{stream: {"modalities", "train_split", "input",
            "num_crops"}}`.
        fuse_weights: one weight per stream, in `streams` order, or None.
    """
    fusion = None
    if fuse_weights is not None:
        fusion = {"weights": dict(zip(streams, map(float, fuse_weights)))}
    return _jsonable(
        {
            "format_version": FORMAT_VERSION,
            "data": {
                "data_dir": os.path.abspath(data_dir),
                "labels": list(info["labels"]),
                "multi_label": bool(info.get("multi_label", False)),
                "frame_height": info.get("frame_height"),
                "frame_width": info.get("frame_width"),
                # The TV-L1 family the model learnt from: an export computes
                # flow of this family from frames (docs/FLOW.md).
                "flow": schema.flow_family(info.get("flow", {})),
                "evaluate_split": evaluate_split,
            },
            "streams": streams,
            "fusion": fusion,
        }
    )


def path(workdir):
    return os.path.join(workdir, RECORD_FILE)


def write(workdir, record):
    """Writes `WORKDIR/run.json` atomically."""
    os.makedirs(workdir, exist_ok=True)
    tmp = path(workdir) + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        # Insertion order: streams stay in training order (fusion weights,
        # evaluation and the results table follow it).
        json.dump(record, f, indent=2)
    os.replace(tmp, path(workdir))


def read(workdir):
    """Reads `WORKDIR/run.json`.

    Raises:
        FileNotFoundError: the workdir has no record (not a training run of
            this version: rerun the same `avlad_tf.train` command, which
            resumes from the checkpoints and writes it).
        ValueError: an unknown format version.
    """
    if not os.path.exists(path(workdir)):
        raise FileNotFoundError(
            f"{path(workdir)} does not exist: {workdir} is not a workdir "
            f"written by `python -m avlad_tf.train` (an older run: rerun its "
            f"train command, which resumes and writes the record)."
        )
    with open(path(workdir), encoding="utf-8") as f:
        record = json.load(f)
    if record.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path(workdir)}: format_version {record.get('format_version')}, "
            f"this avlad_tf reads {FORMAT_VERSION}."
        )
    return record


def stream(record, name, *, workdir="WORKDIR"):
    """The record of one stream, or a ValueError naming the streams there."""
    if name not in record["streams"]:
        raise ValueError(
            f"{path(workdir)}: no stream {name!r}; the run trained "
            f"{sorted(record['streams'])}."
        )
    return record["streams"][name]


def check_input_bindings(record, make_dataset_fn, *, workdir):
    """Refuses gin bindings of `make_dataset` that contradict the record.

    A program that reads a workdir (evaluate, export) uses the run's input
    settings; a config passed to it that binds them otherwise would be
    silently ignored, so it is an error that names the binding.
    """
    for name, entry in record["streams"].items():
        bound = _run_level(_bindings(make_dataset_fn, name))
        for key, value in bound.items():
            recorded = entry["input"].get(key)
            if recorded is not None and value != recorded:
                raise ValueError(
                    f"make_dataset.{key} = {value!r} differs from the "
                    f"{name} stream's recorded {recorded!r} ({path(workdir)});"
                    f" a workdir is evaluated and exported with its own input "
                    f"settings. Drop the binding, or train a new --workdir."
                )


def jsonable_arguments(arguments, *, drop=()):
    """Resolved arguments as JSON (callables and objects by their repr)."""
    kept = {k: v for k, v in arguments.items() if k not in drop}
    return json.loads(json.dumps(kept, default=repr))


def _flatten(value, prefix=""):
    """`{"a/b": leaf}` paths of a nested dict (lists are leaves)."""
    if not isinstance(value, dict):
        return {prefix: value}
    flat = {}
    for key, item in value.items():
        flat.update(_flatten(item, f"{prefix}/{key}" if prefix else key))
    return flat


def _extends_last_stage(key, old, new):
    """More updates in the last stage only: a rerun can extend that."""
    return (
        key.endswith("train_stream/stage_steps")
        and old
        and new
        and len(old) == len(new)
        and old[:-1] == new[:-1]
        and new[-1] >= old[-1]
    )


# Record entries a rerun may change: they decide what is evaluated, fused
# or exported after training, or how training runs, not what is trained.
_AFTER_TRAINING = ("num_crops", "evaluate_split", "fusion")
_EXECUTION = (
    "checkpoint_every",
    "max_to_keep",
    "log_every",
    "assignments_every",
    "jit_compile",
    "distribute",
    "devices",
)


def check_rerun(previous, current, *, workdir):
    """Compares a rerun's settings with the workdir's record, before anything
    is written.

    Applies what is well defined (more updates in the last stage; other
    evaluation crops or split, fusion weights) and refuses everything else.

    Returns:
        A list of the applied changes, for the log.

    Raises:
        ValueError: one line naming the differing settings (as
            `<stream>/<configurable>.<argument>`) and what to do.
    """
    old, new = _flatten(previous), _flatten(current)
    refused, applied = [], []
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key):
            continue
        change = f"{_binding(key)}: {old.get(key)!r} -> {new.get(key)!r}"
        if (
            _extends_last_stage(key, old.get(key), new.get(key))
            or key.split("/")[-1] in _AFTER_TRAINING + _EXECUTION
            or key.split("/")[0] == "fusion"
        ):
            applied.append(change)
        else:
            refused.append(change)
    if refused:
        raise ValueError(
            f"{workdir} was trained with other settings ({'; '.join(refused)})."
            f" Use a new --workdir, or the recorded settings ({path(workdir)})."
        )
    return applied


def _binding(record_path):
    """`streams/rgb/training/train_stream/batch_size` -> `rgb/train_stream.batch_size`."""
    parts = record_path.split("/")
    if parts[0] == "streams" and len(parts) >= 4 and parts[2] in ("training",):
        return f"{parts[1]}/{parts[3]}.{'/'.join(parts[4:])}"
    if parts[0] == "streams" and len(parts) >= 4 and parts[2] == "input":
        return f"{parts[1]}/make_dataset.{'/'.join(parts[3:])}"
    return ".".join(parts)
