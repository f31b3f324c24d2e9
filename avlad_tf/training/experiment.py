"""A whole run: record its settings, train every stream, evaluate, fuse, export.

`python -m avlad_tf.train` calls `train` with its workdir. Before anything
else is written, `train` resolves the run's settings (dataset, per-stream
input settings and crops, fusion weights) and records them in
`WORKDIR/run.json` (`avlad_tf.run_record`); every later step, here and in
the evaluate / export / visualize programs, reads that record. A rerun in the
same workdir is first compared with that record (`run_record.check_rerun`).

In a multi-worker job (`train_stream.distribute`, `training.distribution`)
every worker runs `train`; the chief writes the workdir, evaluates, fuses and
exports, the others write to a temporary directory and wait for it at the end.
"""

import functools

from absl import logging
import gin
import tensorflow as tf

from avlad_tf import run_record
from avlad_tf import settings
from avlad_tf import storage
from avlad_tf.data import video_input
from avlad_tf.evaluation import late_fusion
from avlad_tf.evaluation import scoring
from avlad_tf.layers import pixels
from avlad_tf.models import action_vlad
from avlad_tf.models import aggregators
from avlad_tf.models import fusion as fusion_lib
from avlad_tf.models import initial_weights
from avlad_tf.serving import saved_model
from avlad_tf.training import checks
from avlad_tf.training import distribution
from avlad_tf.training import kmeans_init
from avlad_tf.training import loop
from avlad_tf.training import results
from avlad_tf.training import schedule
from avlad_tf.training import stage as stage_lib


def _training_settings(stream):
    """What decides a stream's trained model, as gin resolves it: with
    `build_model`'s, the settings of its aggregator and fusion head."""
    training = {
        fn.__name__: run_record.recorded_settings(fn, scope=stream)
        for fn in (loop.train_stream, action_vlad.build_model, kmeans_init.init_centers)
    }
    model = training["build_model"]
    for fn in action_vlad.option_builders(model["pooling"], model["fusion"]):
        training[fn.__name__] = run_record.recorded_settings(fn, scope=stream)
    if aggregators.get(model["pooling"]).from_scratch:
        training["from_scratch_schedule"] = run_record.recorded_settings(
            schedule.from_scratch_schedule, scope=stream
        )
    gating = run_record.recorded_settings(aggregators.context_gating, scope=stream)
    if gating["enabled"]:
        training["context_gating"] = gating
    return training


def _resolve_streams(streams):
    """`{stream: record entry}` as gin resolves them in each stream's scope."""
    entries = {}
    for stream in streams:
        eval_args = run_record.resolved_arguments(scoring.evaluate, scope=stream)
        training = _training_settings(stream)
        entries[stream] = {
            "training": training,
            # The backbone's weights' own input rule, applied in the model.
            "input_rule": pixels.INPUT_RULES[training["build_model"]["backbone"]],
            "modalities": list(loop.STREAM_MODALITIES[stream]),
            "train_split": training["train_stream"]["train_split"],
            # `make_dataset` is the settings' home, also when a test injects
            # another factory.
            "input": run_record.recorded_settings(
                video_input.make_dataset, scope=stream
            ),
            "num_crops": eval_args["num_crops"] or run_record.DEFAULT_NUM_CROPS,
        }
    return entries


def _make_strategy(streams):
    """The run's strategy, made before anything runs TensorFlow (a
    multi-worker strategy configures the runtime, which only works before it
    starts); one multi-worker job trains every stream."""
    strategies = {}
    for stream in streams:
        arguments = run_record.resolved_arguments(loop.train_stream, scope=stream)
        strategies[stream] = distribution.make_strategy(
            arguments["distribute"],
            arguments["devices"],
            binding=f"{stream}/train_stream.distribute",
        )
    kinds = {s: distribution.is_multi_worker(v) for s, v in strategies.items()}
    if len(set(kinds.values())) > 1:
        raise ValueError(
            f"train_stream.distribute: a multi-worker job trains every stream "
            f"on every worker; bind 'multi_worker' (or 'auto') for all of "
            f"{list(streams)}. Multi-worker per stream: {kinds}"
        )
    return strategies[streams[0]]


def _recorded_fuse_weights(streams, fuse_weights):
    """The weights the run fuses with (or its export would): the bound ones,
    else the release's RGB : flow = 1 : 2 for a two-stream run."""
    if fuse_weights is not None:
        return fuse_weights
    if tuple(streams) == ("rgb", "flow"):
        return fusion_lib.DEFAULT_LATE_WEIGHTS
    return None


@settings.configurable(
    setting=("data_dir", "streams", "deterministic"),
    execution=("prepare_toy_dataset",),
    evaluation=("evaluate_split", "fuse_weights", "export"),
    call=("workdir", "command", "make_dataset_fn", "build_model_fn", "step_callback"),
)
def train(
    *,
    workdir,
    data_dir=gin.REQUIRED,
    streams=("rgb",),
    prepare_toy_dataset=False,
    evaluate_split=None,
    fuse_weights=None,
    export=False,
    make_dataset_fn=video_input.make_dataset,
    build_model_fn=action_vlad.build_model,
    step_callback=None,
    command=None,
    deterministic=False,
):
    """Trains every stream, then evaluates, fuses and exports.

    Args:
        workdir: the run directory; a run restarted with the same workdir
            resumes from its checkpoints.
        data_dir: the prepared dataset (bind the `DATA_DIR` macro). The only
            home of the dataset: evaluation reads it from the run's record.
        streams: streams trained one after the other, each under its gin
            scope: `('rgb',)`, `('flow',)`, `('rgb', 'flow')` (late fusion)
            or `('fused',)` (concat / early fusion model).
        prepare_toy_dataset: generate and prepare the embedded toy dataset in
            `data_dir` first if it is missing (`data_prep.toy`).
        evaluate_split: if set, evaluate each stream on this split afterwards
            (`scoring.evaluate` in the stream's gin scope, so
            `flow/evaluate.num_crops = 5` sets the flow crops).
        fuse_weights: one weight per stream for late fusion of the raw
            logits (release: RGB 1, flow 2); needs `evaluate_split`. The one
            home of the fusion weights: export reads them from the record.
        export: write a SavedModel (`saved_model.export`).
        make_dataset_fn, build_model_fn: injectable factories (tests); the
            dataset factory serves evaluation too.
        step_callback: passed to `loop.train_stream`.
        command: the command line, written to `WORKDIR/command.txt` once the
            run's settings are checked against a previous run's record.
        deterministic: make every TensorFlow op deterministic
            (`tf.config.experimental.enable_op_determinism`), so that a rerun
            of the same command gives bit-identical weights (slower; seeds
            are fixed either way: `train_stream.seed`). Recorded in
            run.json when on: a rerun that switches it is refused, as one
            run of mixed determinism would be reproducible by neither.

    Returns:
        dict with each stream's evaluation metrics, the `late_fusion` top-1
        and the `export_dir`, where those steps ran (on the chief of a
        multi-worker job; the other workers return an empty dict).
    """
    strategy = _make_strategy(streams)  # first: see there
    if fuse_weights is not None and (
        evaluate_split is None or len(fuse_weights) != len(streams)
    ):
        raise ValueError(
            f"train.fuse_weights needs train.evaluate_split and one weight "
            f"per stream. Received: fuse_weights={fuse_weights}, "
            f"streams={streams}, evaluate_split={evaluate_split}"
        )
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    if prepare_toy_dataset:
        from data_prep import toy  # pylint: disable=import-outside-toplevel

        toy.ensure_toy_dataset(data_dir)  # only toy configs need OpenCV
    info = video_input.dataset_info(data_dir)  # checked once per run
    record = run_record.build(
        data_dir=data_dir,
        info=info,
        evaluate_split=evaluate_split,
        streams=_resolve_streams(streams),
        fuse_weights=_recorded_fuse_weights(streams, fuse_weights),
        deterministic=deterministic,
    )
    checks.check_record(record, info)  # before k-means and training
    # A weights file fine-tuned on the test videos inflates the results.
    initial_weights.check_record(record, info)
    if export:
        saved_model.check_exportable(record)
    if storage.exists(run_record.path(workdir)):
        for change in run_record.check_rerun(
            run_record.read(workdir), record, workdir=workdir
        ):
            logging.info("Rerun of %s applies %s", workdir, change)
    with distribution.write_dir(workdir, strategy) as out:
        run_record.write(out, record)
        if command is not None:
            storage.write_text(storage.join(out, "command.txt"), command + "\n")
        stage_lib.write_labels(out, info["labels"])
        # Every dataset of the run reads with the recorded settings.
        datasets = {
            s: functools.partial(
                make_dataset_fn, info=info, **record["streams"][s]["input"]
            )
            for s in streams
        }
        for stream in streams:
            with gin.config_scope(stream):
                loop.train_stream(
                    workdir=workdir,
                    write_dir=out,
                    stream=stream,
                    data_dir=record["data"]["data_dir"],
                    info=info,
                    make_dataset_fn=datasets[stream],
                    build_model_fn=build_model_fn,
                    step_callback=step_callback,
                )
    outcome = {}
    if distribution.is_chief(strategy):
        outcome = _after_training(
            workdir,
            streams=streams,
            evaluate_split=evaluate_split,
            fuse_weights=fuse_weights,
            export=export,
            make_dataset_fn=make_dataset_fn,
        )
        # Now that every configurable of the run has been called.
        stage_lib.write_operative_config(workdir)
    # The job ends together: a worker that left first would be reported as
    # crashed to the chief.
    distribution.barrier(strategy)
    return outcome


def _after_training(
    workdir, *, streams, evaluate_split, fuse_weights, export, make_dataset_fn
):
    """Evaluates, fuses, exports and prints the results table."""
    outcome, fused_top1 = {}, None
    if evaluate_split is not None:
        for stream in streams:
            logging.info("Evaluating %s on %s", stream, evaluate_split)
            with gin.config_scope(stream):
                outcome[stream] = scoring.evaluate(
                    workdir=workdir,
                    stream=stream,
                    split=evaluate_split,
                    make_dataset_fn=make_dataset_fn,
                )
        if fuse_weights is not None:
            fusion = late_fusion.fuse_files(
                [outcome[s]["scores_path"] for s in streams],
                list(fuse_weights),
                labels=None,
            )
            # Not "fused": that key is the concat / early fusion stream's.
            fused_top1 = outcome["late_fusion"] = fusion["fused"]
    if export:
        outcome["export_dir"] = saved_model.export(workdir=workdir)
    if evaluate_split is not None:
        # Printed last, so the table ends the run's output.
        table = results.results_table(
            split=evaluate_split,
            stream_metrics={s: outcome[s] for s in streams},
            fused=fused_top1,
            fuse_weights=fuse_weights,
        )
        if export:
            table += f"\nSavedModel: {outcome['export_dir']}\n"
        path = results.write_results(workdir, table)
        print(f"\nResults ({path}):\n\n{table}", flush=True)
    return outcome
