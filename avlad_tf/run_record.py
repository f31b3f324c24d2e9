"""What a training run resolved, recorded in `WORKDIR/run.json`.

`avlad_tf.train` resolves every setting that decides what a run means once,
before it writes anything else, and records it here:

- `data`: the dataset (`data_dir`, absolute, or a URL), its label map and whether it is
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
  None;
- `train`: whether every op was deterministic (`train.deterministic`;
  records written before it was recorded were not).

Evaluation, export, visualisation and `predict` (through the export) read
this record rather than gin: a workdir alone is enough to evaluate, export or
visualise it. A program may still override an evaluation-only setting
(crops, split) by binding it; a binding that would change what the run means
(`make_dataset.*`) and differs from the record is refused
(`check_input_bindings`).
"""

import inspect

import gin

from avlad_tf import settings
from avlad_tf import storage
from avlad_tf.data import schema

RECORD_FILE = "run.json"
FORMAT_VERSION = 1
# The release evaluated one centre crop unless told otherwise.
DEFAULT_NUM_CROPS = 1


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


def recorded_arguments(fn, arguments):
    """`arguments` of `fn` but its call arguments (`settings`), as JSON
    (callables and objects by their repr)."""
    roles = fn.roles
    kept = {k: v for k, v in arguments.items() if roles.get(k) != "call"}
    return settings.jsonable(kept, default=repr)


def recorded_settings(fn, *, scope=""):
    """What a run records of `fn`: its arguments as gin resolves them in
    `scope`, but the call's own."""
    return recorded_arguments(fn, resolved_arguments(fn, scope=scope))


def build(
    *, data_dir, info, evaluate_split, streams, fuse_weights, deterministic=False
):
    """The record of a run (see the module docstring).

    Args:
        data_dir: the prepared dataset.
        info: its checked metadata (`video_input.dataset_info`).
        evaluate_split: the split evaluated after training, or None.
        streams: `{stream: {"modalities", "train_split", "input",
            "num_crops"}}`.
        fuse_weights: one weight per stream, in `streams` order, or None.
        deterministic: `train.deterministic`.
    """
    fusion = None
    if fuse_weights is not None:
        fusion = {"weights": dict(zip(streams, map(float, fuse_weights)))}
    return settings.jsonable(
        {
            "format_version": FORMAT_VERSION,
            "data": {
                "data_dir": storage.absolute(data_dir),
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
            "train": {"deterministic": bool(deterministic)},
        }
    )


def path(workdir):
    return storage.join(workdir, RECORD_FILE)


def write(workdir, record):
    """Writes `WORKDIR/run.json` atomically."""
    storage.makedirs(workdir)
    # Insertion order: streams stay in training order (fusion weights,
    # evaluation and the results table follow it).
    settings.write_json(path(workdir), record)


def read(workdir):
    """Reads `WORKDIR/run.json`.

    Raises:
        FileNotFoundError: the workdir has no record (not a training run of
            this version: rerun the same `avlad_tf.train` command, which
            resumes from the checkpoints and writes it).
        ValueError: an unknown format version.
    """
    if not storage.exists(path(workdir)):
        raise FileNotFoundError(
            f"{path(workdir)} does not exist: {workdir} is not a workdir "
            f"written by `python -m avlad_tf.train` (an older run: rerun its "
            f"train command, which resumes and writes the record)."
        )
    record = settings.read_json(path(workdir))
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
        bound = recorded_arguments(make_dataset_fn, _bindings(make_dataset_fn, name))
        for key, value in bound.items():
            recorded = entry["input"].get(key)
            if recorded is not None and value != recorded:
                raise ValueError(
                    f"make_dataset.{key} = {value!r} differs from the "
                    f"{name} stream's recorded {recorded!r} ({path(workdir)});"
                    f" a workdir is evaluated and exported with its own input "
                    f"settings. Drop the binding, or train a new --workdir."
                )


def _role(key):
    """The role (`settings.ROLES`) of the setting at record path `key`: the
    role of the configurable argument the entry records."""
    parts = key.split("/")
    if parts[0] == "fusion":
        return settings.role("train", "fuse_weights")
    if parts[0] == "train" and len(parts) > 1:
        return settings.role("train", parts[1])
    if parts[:2] == ["data", "evaluate_split"]:
        return settings.role("train", "evaluate_split")
    if parts[0] == "streams" and len(parts) > 2:
        if parts[2] == "training" and len(parts) > 4:
            return settings.role(parts[3], parts[4])
        if parts[2] == "input" and len(parts) > 3:
            return settings.role("make_dataset", parts[3])
        if parts[2] == "num_crops":
            return settings.role("evaluate", "num_crops")
    return "setting"


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


def check_rerun(previous, current, *, workdir):
    """Compares a rerun's settings with the workdir's record, before anything
    is written.

    Applies what is well defined (more updates in the last stage; a change of
    an execution or evaluation setting: `settings.CHANGEABLE`) and refuses
    everything else.

    Returns:
        A list of the applied changes, for the log.

    Raises:
        ValueError: one line naming the differing settings (as
            `<stream>/<configurable>.<argument>`) and what to do.
    """
    refused, applied = [], []
    previous = {"train": {"deterministic": False}, **previous}  # older records
    for key, before, after in settings.differences(previous, current):
        if _role(key) == "call":
            continue  # an older record's entry that is no setting
        changeable = _role(key) in settings.CHANGEABLE
        if changeable or _extends_last_stage(key, before, after):
            applied.append((key, before, after))
        else:
            refused.append((key, before, after))
    if refused:
        raise ValueError(
            f"{workdir} was trained with other settings "
            f"({settings.describe(refused, name=_binding)}). Use a new "
            f"--workdir, or the recorded settings ({path(workdir)})."
        )
    return [settings.describe([change], name=_binding) for change in applied]


def _binding(record_path):
    """`streams/rgb/training/train_stream/batch_size` -> `rgb/train_stream.batch_size`."""
    parts = record_path.split("/")
    if parts[0] == "streams" and len(parts) >= 4 and parts[2] in ("training",):
        return f"{parts[1]}/{parts[3]}.{'/'.join(parts[4:])}"
    if parts[0] == "streams" and len(parts) >= 4 and parts[2] == "input":
        return f"{parts[1]}/make_dataset.{'/'.join(parts[3:])}"
    return ".".join(parts)
