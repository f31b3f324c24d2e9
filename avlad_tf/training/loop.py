"""The two-stage ActionVLAD training driver (docs/RELEASE.md Sec. 7, 8).

Per stream (`rgb`, `flow`, or `fused` for concat / early fusion models), under
the gin scope of that name (so `flow/train_stream.batch_size = ...` binds one
stream only):

1. build the model (`stream_model`), initialise NetVLAD from k-means centres
   (`kmeans_init`);
2. stage 1: classifier only, Adam lr 1e-2; stage 2: classifier + NetVLAD +
   the pooled conv block, lr 1e-4. Each stage has a fresh Adam (ε = 1e-4) and
   its own staircase schedule (×0.1 every 5000 updates), per-tensor gradient
   clipping at 5 of every sub-batch before averaging over the accumulated
   sub-batches (`step`), weight decay as a loss term;
3. checkpoints for exact resume (`checkpointing`), TensorBoard (`summaries`);
4. the final model as `<workdir>/<stream>/model.keras`.

On one device, several GPUs or several machines (`distribution`); in a
multi-worker job every worker reads the chief's checkpoints from the workdir
and writes to its own `write_dir`.

`training.experiment.train` runs this for every stream of a run, then
evaluates, fuses and exports.
"""

import functools

from avlad_tf import settings
from avlad_tf import storage
from avlad_tf.data import video_input
from avlad_tf.models import action_vlad
from avlad_tf.training import distribution
from avlad_tf.training import kmeans_init
from avlad_tf.training import schedule
from avlad_tf.training import stream_model

STREAM_MODALITIES = {"rgb": ("rgb",), "flow": ("flow",), "fused": ("rgb", "flow")}


@settings.configurable(
    setting=(
        "train_split",
        "stage_steps",
        "learning_rates",
        "decay_steps",
        "decay_rate",
        "adam_beta_1",
        "adam_beta_2",
        "adam_epsilon",
        "clip_norm",
        "batch_size",
        "accumulation_steps",
        "kmeans_batch_size",
        "loss",
        "seed",
    ),
    execution=(
        "jit_compile",
        "distribute",
        "devices",
        "checkpoint_every",
        "max_to_keep",
        "log_every",
        "assignments_every",
    ),
    call=(
        "workdir",
        "stream",
        "data_dir",
        "info",
        "write_dir",
        "make_dataset_fn",
        "build_model_fn",
        "step_callback",
    ),
)
def train_stream(
    *,
    workdir,
    stream,
    data_dir,
    train_split="train",
    make_dataset_fn=video_input.make_dataset,
    build_model_fn=action_vlad.build_model,
    stage_steps=(10000, 8000),
    learning_rates=(1e-2, 1e-4),
    decay_steps=5000,
    decay_rate=0.1,
    adam_beta_1=0.9,
    adam_beta_2=0.999,
    adam_epsilon=1e-4,
    clip_norm=5.0,
    batch_size=4,
    accumulation_steps=4,
    jit_compile=True,
    distribute="none",
    devices=None,
    checkpoint_every=500,
    max_to_keep=3,
    log_every=10,
    assignments_every=500,
    kmeans_batch_size=16,
    loss="auto",
    seed=0,
    info=None,
    step_callback=None,
    write_dir=None,
):
    """Trains one stream through both stages; returns the trained model.

    Args:
        workdir: the run directory (layout in docs/CONTRACTS.md).
        stream: `'rgb'`, `'flow'` or `'fused'` (a concat / early fusion model
            reading both modalities).
        data_dir: the prepared dataset.
        train_split: split to train on (`train_split1`, ...; toy: `train`).
        make_dataset_fn, build_model_fn: injectable factories (tests).
        stage_steps: optimizer updates per stage (release: 10000, 8000).
        learning_rates: initial Adam learning rate per stage (1e-2, 1e-4).
        decay_steps, decay_rate: staircase decay of each stage's schedule,
            counted in updates from the start of the stage.
        adam_beta_1, adam_beta_2, adam_epsilon: Adam (release ε = 1e-4).
        clip_norm: per-tensor gradient norm limit per sub-batch (0: off).
        batch_size: videos per replica per sub-batch, an int or one per
            stage.
        accumulation_steps: sub-batches per update, an int or one per stage;
            the effective batch is batch_size x replicas x accumulation_steps
            (release: 16). Clipping acts per sub-batch, so the release's
            exact grouping (stage 1: two clipped 8-video gradients, stage 2:
            one 16-video gradient, Sec. 12.12) is batch_size = (8, 16),
            accumulation_steps = (2, 1).
        jit_compile: XLA for the gradient computation.
        distribute: 'none', 'mirrored' (`MirroredStrategy`), 'multi_worker'
            (`MultiWorkerMirroredStrategy` over the cluster in `TF_CONFIG`)
            or 'auto' (`distribution`; False and True mean 'none' and
            'mirrored'). Each replica takes `batch_size` videos of every
            sub-batch.
        devices: the mirrored strategy's devices; None means all visible
            GPUs.
        checkpoint_every: updates between checkpoints (and at stage ends).
        max_to_keep: checkpoints kept per stage.
        log_every: updates between scalar summaries.
        assignments_every: updates between cluster-usage / assignment-map
            summaries (computed on a fixed test-mode batch).
        kmeans_batch_size: videos per batch while collecting k-means features.
        loss: 'softmax' (cross-entropy on one label), 'sigmoid' (per-class
            sigmoid cross-entropies summed per video, for multi-label
            training data) or 'auto': softmax unless the training split has
            videos with several labels. Charades training clips carry one
            label each, so they get the paper's softmax (`training_loss`).
        seed: model initialisation, data order and dropout.
        info: the dataset's checked metadata, when the caller has it.
        step_callback: `fn(stream=, stage=, step=)` after every update, once
            its checkpoint (if any) is written; used by tests to interrupt.
        write_dir: where this process writes (None: `workdir`); a non-chief
            worker's temporary directory. Checkpoints are restored from
            `workdir` either way.
    """
    _check_stages(stream, stage_steps, learning_rates)
    modalities = STREAM_MODALITIES[stream]
    info = info or video_input.dataset_info(data_dir)
    loss = stream_model.training_loss(info, train_split, loss)
    strategy = distribution.make_strategy(distribute, devices)
    out, stream_dir = _write_directories(strategy, workdir, write_dir, stream)
    # What every pipeline of the stream reads (k-means, probe, training).
    data = dict(data_dir=data_dir, split=train_split, modalities=modalities)

    # ---- Model, resume point, k-means initialisation -----------------------
    model = stream_model.build(
        build_model_fn, strategy, info, stream, seed=seed, loss=loss, split=train_split
    )
    learning_rates, decay_steps = schedule.stream_schedule(
        model, learning_rates=learning_rates, decay_steps=decay_steps
    )
    _check_stages(stream, stage_steps, learning_rates)
    # Read from the workdir (the chief's), written to `out`.
    stage_dirs, resume_step = schedule.resume_point(
        strategy, workdir, stream, stage_steps
    )
    if not resume_step:  # a resumed run's centres are in its checkpoint
        kmeans_init.init_stream_centers(
            model,
            strategy=strategy,
            stream_dir=stream_dir,
            dataset_fn=functools.partial(make_dataset_fn, **data),
            modalities=modalities,
            batch_size=kmeans_batch_size,
            seed=seed,
        )

    # ---- Input pipeline and stages -----------------------------------------
    schedule.train_stages(
        model,
        strategy=strategy,
        out=out,
        stream=stream,
        stage_dirs=stage_dirs,
        resume_step=resume_step,
        make_dataset_fn=make_dataset_fn,
        data=data,
        seed=seed,
        stage_steps=stage_steps,
        learning_rates=learning_rates,
        batch_size=batch_size,
        accumulation_steps=accumulation_steps,
        decay=dict(decay_steps=decay_steps, decay_rate=decay_rate),
        adam=dict(beta_1=adam_beta_1, beta_2=adam_beta_2, epsilon=adam_epsilon),
        clip_norm=clip_norm,
        jit_compile=jit_compile,
        multi_label=loss == "sigmoid",
        max_to_keep=max_to_keep,
        checkpoint_every=checkpoint_every,
        log_every=log_every,
        assignments_every=assignments_every,
        step_callback=step_callback,
    )
    stream_model.save(model, stream_dir)
    return model


def _check_stages(stream, stage_steps, learning_rates):
    """Raises ValueError on an unknown stream or unequal per-stage lists."""
    if stream not in STREAM_MODALITIES:
        raise ValueError(
            f"stream must be one of {sorted(STREAM_MODALITIES)}. Received: {stream!r}"
        )
    if len(stage_steps) != len(learning_rates):
        raise ValueError(
            f"stage_steps and learning_rates need one entry per stage. "
            f"Received: {stage_steps} and {learning_rates}"
        )


def _write_directories(strategy, workdir, write_dir, stream):
    """`(out, stream_dir)`: where this process writes, and its (created)
    `<out>/<stream>`."""
    if write_dir is None and not distribution.is_chief(strategy):
        raise ValueError(
            "train_stream: a non-chief worker needs a write_dir of its own "
            "(experiment.train passes a temporary directory)."
        )
    out = write_dir or workdir
    stream_dir = storage.join(out, stream)
    storage.makedirs(stream_dir)
    return out, stream_dir
