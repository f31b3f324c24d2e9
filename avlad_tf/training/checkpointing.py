"""Exact-resume checkpoints: model, optimizer and step.

One `tf.train.CheckpointManager` per stage under
`<workdir>/<stream>/checkpoints/stage<k>/`. A checkpoint holds every model
variable (including dropout seed-generator states, so the random stream
resumes too) and the stage's Adam state with its `iterations` (the stage's
update counter, which also drives the learning-rate schedule). The data
position follows from that count: a resumed run rebuilds the training
stream and skips the records already consumed, before any decoding
(`schedule._stream_arguments`). Restoring the latest checkpoint and running
on therefore gives the same weights as a run that was never interrupted.

Checkpoints hold no tf.data iterator: its state holds the shuffle buffer of
serialised records, so it grew with the records (docs/TRAINING.md,
"Checkpoint size"). Checkpoints written when they held one (`holds_iterator`)
still resume from it.
"""

import math

from absl import logging
import keras
import tensorflow as tf

from avlad_tf import storage


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or inf; the message names the last good checkpoint."""


def stage_directory(workdir, stream, stage):
    """`<workdir>/<stream>/checkpoints/stage<stage>`."""
    return storage.join(workdir, stream, "checkpoints", f"stage{stage}")


def _model_variables(model):
    """Every model variable keyed by a unique, readable path.

    Keras 3 functional models do not expose their layers to
    `tf.train.Checkpoint`, so the variables are listed explicitly. Keys are
    `<nested model>/.../<layer>/<variable>`: two-stream models nest backbones
    whose layers share names (`rgb_backbone/block1_conv1/kernel`).
    """
    variables = {}

    def visit(container, prefix):
        for layer in container.layers:
            if isinstance(layer, keras.Model):
                visit(layer, f"{prefix}{layer.name}/")
                continue
            for variable in layer.variables:
                key = f"{prefix}{variable.path}"
                if variables.get(key, variable) is not variable:
                    raise ValueError(
                        f"Two model variables share the path {key!r}; "
                        f"checkpoints need unique layer names."
                    )
                variables[key] = variable

    visit(model, "")
    missing = {id(v) for v in model.variables} - {id(v) for v in variables.values()}
    if missing:
        raise ValueError(
            f"{len(missing)} variables of {model.name!r} are "
            f"not in any of its layers; cannot checkpoint them."
        )
    return variables


def make_manager(*, directory, model, optimizer, iterator, max_to_keep):
    """A `tf.train.CheckpointManager` for one stage of one stream.

    `iterator=None` leaves the data position out: a multi-worker run
    rebuilds its data stream at the checkpoint's update instead (each
    worker's iterator differs, and every worker restores the chief's
    checkpoint; `training.loop`).
    """
    objects = dict(model_variables=_model_variables(model), optimizer=optimizer)
    if iterator is not None:
        objects["data_iterator"] = iterator
    return tf.train.CheckpointManager(
        tf.train.Checkpoint(**objects),
        directory,
        max_to_keep=max_to_keep,
        checkpoint_name="ckpt",
    )


def checkpoint_step(path):
    """The update count in a checkpoint's name (`save`), 0 for None."""
    return int(path.rsplit("-", 1)[1]) if path else 0


def holds_iterator(path):
    """Whether the checkpoint at `path` holds a data iterator position."""
    return any(
        name.startswith("data_iterator/") for name, _ in tf.train.list_variables(path)
    )


def restore(manager, path):
    """Restores the checkpoint at `path` (None: nothing) into the manager's
    objects; returns `path`.

    A non-chief worker's manager writes to a temporary directory and
    restores the chief's checkpoint, hence the explicit path.
    """
    if path is None:
        return None
    # assert_existing_objects_matched: a checkpoint from another model or
    # stage layout fails loudly instead of restoring half the state.
    manager.checkpoint.restore(path).assert_existing_objects_matched()
    logging.info("Restored %s", path)
    return path


def save(manager, step):
    """Saves with `step` (the stage's update count) as checkpoint number."""
    path = manager.save(checkpoint_number=int(step))
    logging.info("Saved %s", path)
    return path


def check_finite(metrics, *, stream, stage, step, last_good):
    """Raises `NonFiniteLossError` unless `metrics['loss']` is finite.

    Args:
        metrics: dict of NumPy scalars from one update.
        stream, stage, step: where the run is, for the message.
        last_good: path of the newest checkpoint saved before this update, or
            None.
    """
    loss = float(metrics["loss"])
    if math.isfinite(loss):
        return
    where = (
        f"the last good checkpoint is {last_good}"
        if last_good
        else "no checkpoint of this stage was saved yet"
    )
    raise NonFiniteLossError(
        f"The training loss became {loss} in stream {stream!r}, stage {stage}, "
        f"update {step}; stopping. {where}. Lower the learning rate or check "
        f"the input data, then restart the same command to resume from the "
        f"last checkpoint (delete newer ones to go further back)."
    )
