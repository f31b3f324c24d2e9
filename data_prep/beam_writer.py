"""Writes the planned shards with an Apache Beam pipeline (docs/DATA_PREP.md,
"On Apache Beam"); `pip install -e '.[beam]'`.

The pipeline does the same work as `writer.LocalPool`, through the same two
functions, so its output is the same byte for byte:

    planned (shard, position, item)
      → EncodeVideo: `writer.encode_task`, in a subprocess per worker
        ├ records ──────────────────────────────────────┐
        ├ left out, or crashed twice (reason) ─ dead letters ┤
        └ raised past encode_task (Beam's dead-letter output) ┤
      → group by shard → WriteShard: `writer.write_shard` in `position` order

Which video goes into which shard, and in which order, is decided by the
resolved plan (`writer.plan_shards`), never by the runner. `metadata.json`
and the report are written by the launching process once the pipeline has
finished and every shard exists (`writer.write_dataset`, `writer.finish`).
"""

from concurrent import futures
import multiprocessing
import sys

import apache_beam as beam
from apache_beam.options import pipeline_options as beam_options

from data_prep import records
from data_prep import writer

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


# Beam infers a union with `TaggedOutput` from `process`, which GroupByKey
# refuses: say what the main output is.
@beam.typehints.with_output_types(beam.typehints.Tuple[str, beam.typehints.Any])
class EncodeVideo(beam.DoFn):
    """`encode_fn` on one planned video, in an isolating subprocess: its
    record, or a dead letter with the reason.

    The subprocess is spawned, not forked. Beam's own isolation
    (`with_exception_handling(use_subprocess=True)`) forks the worker, whose
    gRPC threads make the child die now and then: 1 run in 6 of
    tests/data_prep/beam_test.py's videos lost two healthy ones.
    """

    def __init__(self, options, encode_fn=writer.encode_task):
        self._options = options
        self._encode_fn = encode_fn
        self._pool = None  # started on the worker, at the first video

    def _start(self):
        # Once per subprocess: OpenCV's thread count, the compiled flow.
        return futures.ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=records.prepare_worker,
            initargs=(self._options,),
        )

    def _encode(self, item):
        """`encode_fn`'s result; a video whose subprocess dies twice (a
        decoder segfault, the OOM killer) is left out as crashed."""
        for attempt in range(CRASH_ATTEMPTS):
            self._pool = self._pool or self._start()
            try:
                return self._pool.submit(self._encode_fn, item, self._options).result()
            except futures.process.BrokenProcessPool as e:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
                crash = f"crashed: its process died {attempt + 1} time(s) ({e})"
        return None, crash, ""

    def process(self, task):
        shard, position, _, item = task
        serialized, reason, note = self._encode(item)
        if serialized is None:
            yield beam.pvalue.TaggedOutput(DEAD_LETTERS, dead_letter(task, reason))
        else:
            yield shard, (position, serialized, "", note)

    def teardown(self):
        if self._pool:
            self._pool.shutdown(cancel_futures=True)


def _raised(failure):
    """A video whose encoding raised past `encode_fn`'s own handling."""
    task, (exc_type, exc, _) = failure
    name = getattr(exc_type, "__name__", str(exc_type))
    return dead_letter(task, f"error: {name}: {exc}")


class WriteShard(beam.DoFn):
    """Writes one shard from its videos' results, in planned order."""

    def __init__(self, output_dir, plan, flow_backend):
        self._output_dir = output_dir
        self._plan = plan  # {shard: (split, items)}
        self._flow_backend = flow_backend

    def process(self, grouped):
        shard, results = grouped
        split, items = self._plan[shard]
        by_position = {}
        for position, serialized, reason, note in results:
            by_position[position] = (serialized, reason, note)
        if sorted(by_position) != list(range(len(items))):
            raise RuntimeError(
                f"{shard}: {len(by_position)} results for {len(items)} planned "
                f"videos; nothing is written rather than a shard that lacks some"
            )
        ordered = (by_position[i] for i in range(len(items)))
        count = writer.write_shard(
            self._output_dir,
            split,
            shard,
            items,
            ordered,
            flow_backend=self._flow_backend,
        )
        print(f"{shard}: {count} of {len(items)} videos written.", file=sys.stderr)
        yield shard, count


def build(pipeline, output_dir, todo, options, *, encode_fn=writer.encode_task):
    """Adds the preparation of `todo` (`[(split, shard, items)]`) to `pipeline`.

    Returns:
        PCollections `{"records": (shard, (position, serialized, "", note)),
        "dead_letters": report entries plus "shard" and "position",
        "shards": (shard, record count)}`.
    """
    plan = {shard: (split, items) for split, shard, items in todo}
    tasks = [
        (shard, position, split, item)
        for split, shard, items in todo
        for position, item in enumerate(items)
    ]
    encoded = (
        pipeline
        | "Plan" >> beam.Create(tasks)
        | "Encode"
        >> beam.ParDo(EncodeVideo(options, encode_fn))
        .with_outputs(DEAD_LETTERS, main="records")
        .with_exception_handling()
    )
    raised = encoded.bad | "Raised" >> beam.Map(_raised)
    dead = (encoded[DEAD_LETTERS], raised) | "DeadLetters" >> beam.Flatten()
    left_out = dead | "LeftOut" >> beam.Map(
        lambda d: (d["shard"], (d["position"], None, d["reason"], ""))
    )
    shards = (
        (encoded.records, left_out)
        | "Results" >> beam.Flatten()
        | "ByShard" >> beam.GroupByKey()
        | "Write" >> beam.ParDo(WriteShard(output_dir, plan, options.flow_backend))
    )
    return {"records": encoded.records, "dead_letters": dead, "shards": shards}


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
        with beam.Pipeline(options=self._options) as pipeline:
            build(pipeline, output_dir, todo, options)
        return writer.finished_records(output_dir, [shard for _, shard, _ in todo])
