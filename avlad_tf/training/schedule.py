"""The release's two-stage schedule, stage by stage (docs/RELEASE.md Sec. 7).

Where a stream resumes (its newest checkpoint), then for each stage from
there: its data stream (continued from the earlier stage's while the batch
size agrees, or skipped to the checkpoint's update where the checkpoint
holds no iterator), its trainable layers (`trainable.set_stage`), a fresh
Adam on its own staircase schedule, its checkpoints and the update loop
(`stage.run_stage`). `loop.train_stream` calls `resume_point` and
`train_stages`.
"""

from absl import logging
import keras
import tensorflow as tf

from avlad_tf import settings
from avlad_tf import storage
from avlad_tf.training import checkpointing
from avlad_tf.training import distribution
from avlad_tf.training import stage as stage_lib
from avlad_tf.training import step as step_lib
from avlad_tf.training import trainable


@settings.configurable(setting=("learning_rates", "decay_steps"))
def from_scratch_schedule(*, learning_rates=None, decay_steps=None):
    """The schedule of a stream whose aggregator starts from random weights
    (conv pooling, the LSTMs, res-inception, STFN, NeXtVLAD;
    `Aggregator.from_scratch`) instead of `train_stream.learning_rates` /
    `decay_steps`, which the release tuned for a k-means-initialised
    NetVLAD; None keeps `train_stream`'s. A run whose aggregator starts
    random records it (docs/TRAINING.md)."""
    return {"learning_rates": learning_rates, "decay_steps": decay_steps}


def stream_schedule(model, *, learning_rates, decay_steps):
    """`(learning_rates, decay_steps)` for `model`: `train_stream`'s, or
    `from_scratch_schedule`'s where it binds them and the model's
    aggregator starts from random weights."""
    if not trainable.starts_from_scratch(model):
        return learning_rates, decay_steps
    override = from_scratch_schedule()
    return (
        override["learning_rates"] or learning_rates,
        override["decay_steps"] or decay_steps,
    )


def resume_point(strategy, workdir, stream, stage_steps):
    """`(stage_dirs, resume_step)`: the stream's checkpoint directory of each
    stage in `workdir` and its update count at the newest checkpoint (0:
    none), checked to be the same on every worker."""
    stage_dirs = [
        checkpointing.stage_directory(workdir, stream, k + 1)
        for k in range(len(stage_steps))
    ]
    resume_step = _resume_global_step(stage_dirs, stage_steps)
    distribution.check_agrees(
        strategy, resume_step, what=f"the {stream} update count to resume at"
    )
    return stage_dirs, resume_step


def train_stages(
    model,
    *,
    strategy,
    out,
    stream,
    stage_dirs,
    resume_step,
    make_dataset_fn,
    data,
    seed,
    stage_steps,
    learning_rates,
    batch_size,
    accumulation_steps,
    **stage_settings,
):
    """Trains the stages from the stream's newest checkpoint on, in order.

    `data`: `make_dataset_fn`'s split arguments; `stage_settings`: the rest
    of `_train_stage`'s arguments, the same for every stage.
    """
    batch_sizes = _per_stage(batch_size, len(stage_steps), "batch_size")
    accumulation = _per_stage(
        accumulation_steps, len(stage_steps), "accumulation_steps"
    )
    probe = stage_lib.probe_batch(make_dataset_fn, **data)
    stage_lib.drop_logs_after(out, stream, resume_step)
    writer = tf.summary.create_file_writer(storage.join(out, "tensorboard", stream))
    resume_stage = 1 + max(
        [k for k, d in enumerate(stage_dirs) if tf.train.latest_checkpoint(d)],
        default=0,
    )
    for stage in range(resume_stage, len(stage_steps) + 1):
        latest = tf.train.latest_checkpoint(stage_dirs[stage - 1])
        keep_iterator = _keeps_iterator(strategy, latest)
        if stage == resume_stage or batch_sizes[stage - 1] != batch_sizes[stage - 2]:
            # Stage 2 continues stage 1's data stream unless its batch size
            # differs; either way the position is in the checkpoints.
            stream_arguments = _stream_arguments(
                stage,
                latest,
                keep_iterator=keep_iterator,
                strategy=strategy,
                stage_steps=stage_steps,
                batch_sizes=batch_sizes,
                accumulation=accumulation,
            )
            iterator = iter(
                make_dataset_fn(**data, training=True, seed=seed, **stream_arguments)
            )
        _train_stage(
            model,
            stage,
            iterator=iterator,
            latest=latest,
            keep_iterator=keep_iterator,
            strategy=strategy,
            out=out,
            stream=stream,
            probe=probe,
            writer=writer,
            num_steps=stage_steps[stage - 1],
            learning_rate=learning_rates[stage - 1],
            step_offset=sum(stage_steps[: stage - 1]),
            batch_size=batch_sizes[stage - 1],
            accumulation_steps=accumulation[stage - 1],
            **stage_settings,
        )


def _keeps_iterator(strategy, latest):
    """Whether a stage's checkpoints hold the data iterator: only those of a
    single-process run written before they stopped holding it.

    An iterator's state holds its shuffle buffer of serialised records, so
    it grows with the records (hundreds of MB per checkpoint at real
    sizes), and a multi-worker checkpoint cannot hold one (each worker's
    differs). Every run now rebuilds the stream at the checkpoint's update
    instead (`_stream_arguments`' skip), which resumes as exactly.
    """
    return (
        not distribution.is_multi_worker(strategy)
        and latest is not None
        and checkpointing.holds_iterator(latest)
    )


def _train_stage(
    model,
    stage,
    *,
    iterator,
    latest,
    keep_iterator,
    strategy,
    out,
    stream,
    probe,
    writer,
    num_steps,
    learning_rate,
    step_offset,
    batch_size,
    accumulation_steps,
    decay,
    adam,
    clip_norm,
    jit_compile,
    multi_label,
    max_to_keep,
    checkpoint_every,
    log_every,
    assignments_every,
    step_callback,
):
    """Trains `stage`'s layers with a fresh Adam (`adam`) on its own
    staircase schedule (`decay`), from the checkpoint `latest` if any, up to
    `num_steps` updates."""
    names = trainable.set_stage(model, stage)
    logging.info("%s stage %d trains %s", stream, stage, names)
    with strategy.scope():
        schedule = keras.optimizers.schedules.ExponentialDecay(
            learning_rate, **decay, staircase=True
        )
        optimizer = keras.optimizers.Adam(schedule, **adam)
        # Built now so that a checkpoint can restore its slots.
        optimizer.build(model.trainable_variables)
    manager = checkpointing.make_manager(
        directory=checkpointing.stage_directory(out, stream, stage),
        model=model,
        optimizer=optimizer,
        iterator=iterator if keep_iterator else None,
        max_to_keep=max_to_keep,
    )
    checkpointing.restore(manager, latest)
    # A new function per stage: the trainable set was fixed when traced.
    update = step_lib.make_update_fn(
        model=model,
        optimizer=optimizer,
        strategy=strategy,
        batch_size=batch_size,
        accumulation_steps=accumulation_steps,
        clip_norm=clip_norm,
        jit_compile=jit_compile,
        multi_label=multi_label,
    )
    stage_lib.run_stage(
        update=update,
        iterator=iterator,
        strategy=strategy,
        optimizer=optimizer,
        schedule=schedule,
        manager=manager,
        model=model,
        probe=probe,
        writer=writer,
        workdir=out,
        stream=stream,
        stage=stage,
        num_steps=num_steps,
        step_offset=step_offset,
        checkpoint_every=checkpoint_every,
        log_every=log_every,
        assignments_every=assignments_every,
        step_callback=step_callback,
    )


def _resume_global_step(stage_dirs, stage_steps):
    """The stream's update count at its newest checkpoint (0: none)."""
    for k in reversed(range(len(stage_dirs))):
        latest = tf.train.latest_checkpoint(stage_dirs[k])
        if latest:
            return sum(stage_steps[:k]) + checkpointing.checkpoint_step(latest)
    return 0


def _stream_arguments(
    stage, latest, *, keep_iterator, strategy, stage_steps, batch_sizes, accumulation
):
    """`make_dataset`'s arguments for this worker's data stream of `stage`.

    Its batch and share of the stream and, when the checkpoint `latest`
    holds no iterator, the videos the stream has yielded up to it (the
    stream is the earlier stages' one while their batch sizes agree).
    """
    arguments = dict(
        batch_size=batch_sizes[stage - 1] * distribution.num_local_replicas(strategy),
        **distribution.dataset_shard(strategy),
    )
    if keep_iterator:
        return arguments
    updates = checkpointing.checkpoint_step(latest)
    records = updates * accumulation[stage - 1] * batch_sizes[stage - 1]
    for k in range(stage - 1, 0, -1):  # k: an earlier stage
        if batch_sizes[k - 1] != batch_sizes[k]:
            break
        records += stage_steps[k - 1] * accumulation[k - 1] * batch_sizes[k - 1]
    if records:
        arguments["skip"] = records * strategy.num_replicas_in_sync
    return arguments


def _per_stage(value, num_stages, name):
    """An int for every stage, or a tuple with one entry per stage."""
    values = (
        tuple(value) if isinstance(value, (tuple, list)) else ((value,) * num_stages)
    )
    if len(values) != num_stages or not all(
        isinstance(v, int) and v > 0 for v in values
    ):
        raise ValueError(
            f"{name} must be a positive int or {num_stages} of "
            f"them (one per stage). Received: {value!r}"
        )
    return values
