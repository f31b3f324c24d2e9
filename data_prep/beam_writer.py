"""Writes the planned shards with an Apache Beam pipeline (docs/DATA_PREP.md,
"On Apache Beam"); `pip install -e '.[beam]'`.

The pipeline does the same work as `local_pool.LocalPool`, through the same two
functions, so its output is the same byte for byte:

    planned shards, as (shard, offset, length) of a plan file line
      → reshuffled over the workers
      → PrepareShard: its items from the plan file (`beam_plan`),
        `shards.encode_task` on each video, in order, in an
        isolating subprocess, then at once `shards.write_shard`
        ├ (shard, record count)
        └ left out, crashed twice, or raised past encode_task ─ dead letters

A shard is written as soon as its own videos are encoded, so a run killed
midway keeps every shard it finished (a rerun verifies and skips them),
instead of waiting for a group-by over every video. Which video goes into
which shard, and in which order, is decided by the resolved plan
(`writer.plan_shards`), never by the runner. `metadata.json` and the report
are written by the launching process once the pipeline has finished and
every shard exists (`writer.write_dataset`, `writer.finish`). Paths may be
URLs: shards go through `avlad_tf.storage`, each attempt under a temporary
name of its own (`shards.write_shard`), the plan through Beam's FileSystems.
"""

from concurrent import futures
import multiprocessing
import sys

import apache_beam as beam
from apache_beam.options import pipeline_options as beam_options

from avlad_tf import storage
from data_prep import beam_plan
from data_prep import records
from data_prep import shards

DEAD_LETTERS = "dead_letters"
CRASH_ATTEMPTS = 2


def dead_letter(task, reason):
    """A left-out video as `report.json` lists it, plus its planned place."""
    shard, position, split, item = task
    return {
        "shard": shard,
        "position": position,
        "split": split,
        "video_id": item.video_id,
        "path": item.path,
        "reason": reason,
    }


class PrepareShard(beam.DoFn):
    """Encodes one planned shard's videos in order, each in an isolating
    subprocess, and writes the shard: `(shard, record count)`, and a dead
    letter with the reason for each video left out.

    The subprocess is spawned, not forked. Beam's own isolation
    (`with_exception_handling(use_subprocess=True)`) forks the worker, whose
    gRPC threads make the child die now and then: 1 run in 6 of
    tests/data_prep/beam_test.py's videos lost two healthy ones. A video on
    `ram://` (tests) is encoded in the worker itself: no other process sees
    it.
    """

    def __init__(self, output_dir, plan_path, options, encode_fn=shards.encode_task):
        self._output_dir = output_dir
        self._plan_path = plan_path
        self._options = options
        self._encode_fn = encode_fn
        self._pool = None  # started on the worker, at the first video
        self._prepared = False  # `records.prepare_worker` run in the worker

    def _start(self):
        # Once per subprocess: OpenCV's thread count, the compiled flow.
        return futures.ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=records.prepare_worker,
            initargs=(self._options,),
        )

    def _encode(self, item):
        """`encode_fn`'s `(serialized, reason, note)`; a video whose
        subprocess dies twice (a decoder segfault, the OOM killer) is left
        out as crashed, one that raises past `encode_fn` with the error."""
        if any(storage.process_local(p) for p in (item.path, item.flow_path)):
            return self._encode_here(item)
        for attempt in range(CRASH_ATTEMPTS):
            self._pool = self._pool or self._start()
            try:
                return self._pool.submit(self._encode_fn, item, self._options).result()
            except futures.process.BrokenProcessPool as e:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
                crash = f"crashed: its process died {attempt + 1} time(s) ({e})"
            except Exception as e:  # pylint: disable=broad-except
                return None, f"error: {type(e).__name__}: {e}", ""
        return None, crash, ""

    def _encode_here(self, item):
        """`encode_fn` in this process, without isolation."""
        if not self._prepared:
            records.prepare_worker(self._options)
            self._prepared = True
        try:
            return self._encode_fn(item, self._options)
        except Exception as e:  # pylint: disable=broad-except
            return None, f"error: {type(e).__name__}: {e}", ""

    def process(self, element):
        shard, offset, length = element
        split, items = beam_plan.read(self._plan_path, shard, offset, length)
        dead = []

        def results():
            for position, item in enumerate(items):
                serialized, reason, note = self._encode(item)
                if serialized is None:
                    dead.append(dead_letter((shard, position, split, item), reason))
                yield serialized, reason, note

        count = shards.write_shard(
            self._output_dir,
            split,
            shard,
            items,
            results(),
            flow_backend=self._options.flow_backend,
        )
        print(f"{shard}: {count} of {len(items)} videos written.", file=sys.stderr)
        for letter in dead:
            yield beam.pvalue.TaggedOutput(DEAD_LETTERS, letter)
        yield shard, count

    def teardown(self):
        if self._pool:
            self._pool.shutdown(cancel_futures=True)


def build(pipeline, output_dir, plan, options, *, encode_fn=shards.encode_task):
    """Adds the preparation of the shards of `plan` (a `beam_plan.Plan`) to
    `pipeline`.

    Returns:
        PCollections `{"shards": (shard, record count), "dead_letters":
        report entries plus "shard" and "position"}`.
    """
    prepare = PrepareShard(output_dir, plan.path, options, encode_fn)
    prepared = (
        pipeline
        | "Plan" >> beam.Create(plan.shards)
        # One shard per element: spread them over the workers.
        | "Spread" >> beam.Reshuffle()
        | "Prepare" >> beam.ParDo(prepare).with_outputs(DEAD_LETTERS, main="shards")
    )
    return {"shards": prepared.shards, "dead_letters": prepared[DEAD_LETTERS]}


def pipeline_options(args):
    """Beam's `PipelineOptions` from command-line `args`, passed unchanged.

    Raises:
        ValueError: naming the arguments no Beam option takes (Beam itself
            would only log that it discards them).
    """
    options = beam_options.PipelineOptions(args)
    known = options.get_all_options()
    unknown = sorted(
        set(options.get_all_options(retain_unknown_options=True)) - set(known)
    )
    if unknown:
        raise ValueError(
            f"unknown flag(s) {', '.join('--' + k for k in unknown)}: neither "
            f"data_prep.prepare nor Beam's pipeline options take them"
        )
    return options


class BeamPipeline:
    """`writer.write_dataset`'s executor on Beam; `args` are Beam's pipeline
    options (`--runner=DirectRunner`, `--direct_num_workers=2`, Dataflow's
    `--project`, ...), passed unchanged."""

    def __init__(self, args):
        self._options = pipeline_options(args)

    @property
    def description(self):
        runner = self._options.view_as(beam_options.StandardOptions).runner
        return f"on Beam's {runner or 'DirectRunner'}"

    def write(self, output_dir, todo, options):
        """Runs the pipeline for `todo` (`[(split, shard, items)]`) and waits;
        returns the record count."""
        plan = beam_plan.write(output_dir, todo)
        with beam.Pipeline(options=self._options) as pipeline:
            build(pipeline, output_dir, plan, options)
        # Only now: a job that goes on without its launcher (Dataflow's,
        # after Ctrl-C) still reads it.
        beam_plan.remove(plan)
        return shards.finished_records(output_dir, [shard for _, shard, _ in todo])
