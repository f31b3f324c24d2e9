"""Running one training stage: updates, NaN guard, checkpoints, summaries."""

import json
import time

from absl import logging
import gin
import numpy as np

from avlad_tf import progress
from avlad_tf import storage
from avlad_tf.models import inspection
from avlad_tf.training import checkpointing
from avlad_tf.training import summaries


def probe_batch(make_dataset_fn, *, data_dir, split, modalities):
    """A fixed two-video test-mode batch for assignment summaries.

    Taken from its own evaluation pipeline so that summaries never move the
    training iterator (which would break exact resume).
    """
    dataset = make_dataset_fn(
        data_dir=data_dir,
        split=split,
        training=False,
        modalities=modalities,
        batch_size=2,
    )
    features, _ = next(iter(dataset))
    return {name: features[name] for name in modalities}


def write_labels(workdir, labels):
    """`<workdir>/labels.txt`: one class name per line, in label-index order."""
    text = "".join(f"{label}\n" for label in labels)
    storage.write_text(storage.join(workdir, "labels.txt"), text)


def write_operative_config(workdir, writer=None):
    """`<workdir>/operative_config.gin` (and a text summary with `writer`)."""
    text = gin.operative_config_str()
    storage.write_text(storage.join(workdir, "operative_config.gin"), text)
    if writer is not None:
        summaries.write_gin_config(writer, text)
    return text


def drop_logs_after(workdir, stream, global_step):
    """Forgets what an interrupted run logged after its last checkpoint.

    The resumed run repeats those updates; `train_metrics.jsonl` and the
    TensorBoard events then hold each step once.
    """
    path = storage.join(workdir, stream, "train_metrics.jsonl")
    if storage.exists(path):
        lines = storage.read_text(path).splitlines(keepends=True)
        kept = [
            line for line in lines if json.loads(line)["global_step"] <= global_step
        ]
        storage.write_text(path, "".join(kept))
    logdir = storage.join(workdir, "tensorboard", stream)
    if storage.isdir(logdir):
        summaries.drop_events_after(logdir, global_step)


def _append_metrics(path, record):
    """One JSON line per log step: a greppable copy of the scalars. (An
    object store has no append: TensorFlow rewrites the small file whole.)"""
    with storage.open_file(path, "a") as f:
        f.write(
            json.dumps(
                {
                    k: v if isinstance(v, (int, str)) else float(v)
                    for k, v in record.items()
                }
            )
            + "\n"
        )


def _write_assignments(endpoints, probe, writer, step):
    outputs = endpoints(probe, training=False)
    if "assignments" in outputs:
        summaries.write_assignments(writer, step, np.asarray(outputs["assignments"]))


def run_stage(**kwargs):
    """`_run_stage`; Ctrl-C names the stage, update and last checkpoint."""
    try:
        _run_stage(**kwargs)
    except KeyboardInterrupt as interrupt:
        optimizer, manager = kwargs["optimizer"], kwargs["manager"]
        raise KeyboardInterrupt(
            f"{kwargs['stream']} stage {kwargs['stage']} at update "
            f"{int(optimizer.iterations.numpy())} of {kwargs['num_steps']}, "
            f"last checkpoint {manager.latest_checkpoint or 'none'}"
        ) from interrupt


def _run_stage(
    *,
    update,
    iterator,
    strategy,
    optimizer,
    schedule,
    manager,
    model,
    probe,
    writer,
    workdir,
    stream,
    stage,
    num_steps,
    step_offset,
    checkpoint_every,
    log_every,
    assignments_every,
    step_callback,
):
    """Runs updates until the stage's optimizer has made `num_steps` of them.

    Starts from `optimizer.iterations` (non-zero after a restore). Checkpoints
    every `checkpoint_every` updates and at the end; raises
    `NonFiniteLossError` (naming the last good checkpoint) on a NaN / inf
    loss, before anything of that update is saved.
    """
    step = int(optimizer.iterations.numpy())
    if step >= num_steps:
        logging.info("%s stage %d already complete (%d updates)", stream, stage, step)
        return
    metrics_path = storage.join(workdir, stream, "train_metrics.jsonl")
    logging.info("%s stage %d: updates %d..%d", stream, stage, step, num_steps)
    last_time, last_step = time.time(), step
    endpoints = inspection.endpoints_model(model)  # shares model's weights
    bar = progress.Progress(num_steps, what=f"{stream} stage {stage}", unit="updates")
    while step < num_steps:
        with strategy.scope():
            metrics = {k: v.numpy() for k, v in update(iterator).items()}
        step += 1
        checkpointing.check_finite(
            metrics,
            stream=stream,
            stage=stage,
            step=step,
            last_good=manager.latest_checkpoint,
        )
        global_step = step_offset + step
        if step % log_every == 0 or step == num_steps:
            now = time.time()
            metrics["learning_rate"] = float(schedule(step - 1))
            metrics["steps_per_second"] = (step - last_step) / max(
                now - last_time, 1e-9
            )
            last_time, last_step = now, step
            summaries.write_scalars(writer, global_step, metrics)
            _append_metrics(
                metrics_path,
                dict(stage=stage, step=step, global_step=global_step, **metrics),
            )
            bar.suffix = f"loss {metrics['loss']:.4f} acc {metrics['accuracy']:.3f}"
        bar.update(done=step)
        if global_step == 1 or step == num_steps or step % assignments_every == 0:
            _write_assignments(endpoints, probe, writer, global_step)
        if global_step == 1:
            # After the first update every configurable has been called.
            write_operative_config(workdir, writer)
        if step % checkpoint_every == 0 or step == num_steps:
            checkpointing.save(manager, step)
        writer.flush()
        if step_callback is not None:
            step_callback(stream=stream, stage=stage, step=step)
