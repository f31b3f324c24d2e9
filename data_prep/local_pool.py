"""The local executor of `writer.write_dataset`: a process pool over the
videos on this machine, writing each shard here as its results arrive.

The workers only encode; shards and notes are written by this process, so
`output_dir` may be any URL. Inputs at a URL are read by the workers
themselves (`video_io.local_copy`), except on `ram://`, whose files no other
process sees: those are encoded in this process, with a notice.
"""

from concurrent import futures
import dataclasses
import multiprocessing
import signal
import sys

from avlad_tf import progress
from avlad_tf import storage
from data_prep import records
from data_prep import shards


def _worker_init(options):
    # Ctrl-C reaches the whole process group: the parent reports it once and
    # ends the pool; workers must not each print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    records.prepare_worker(options)


def _map(items, options, workers, *, start_method="fork"):
    """`shards.encode_task` over `items`, results in order.

    A `concurrent.futures` pool rather than `multiprocessing.Pool`: when a
    worker dies (a decoder segfault), the former raises `BrokenProcessPool`
    where the latter waits forever for the lost result.
    """
    if workers <= 1:
        records.prepare_worker(options)
        yield from (shards.encode_task(item, options) for item in items)
        return
    context = multiprocessing.get_context(start_method)
    with futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_worker_init, initargs=(options,)
    ) as pool:
        # Submitted here rather than by `pool.map`, whose iterator cancels
        # the pending futures when it stops: ending the workers then makes
        # the pool's thread fail those cancelled futures (InvalidStateError).
        pending = [pool.submit(shards.encode_task, item, options) for item in items]
        try:
            for future in pending:
                yield future.result()
        except futures.process.BrokenProcessPool as e:
            raise RuntimeError(
                "a worker process died while preparing a video (a crashing "
                "decoder?); finished shards are kept, so rerun with "
                "--workers=1 to see which video, or prepare on Beam, which "
                "isolates each video (docs/DATA_PREP.md, On Apache Beam)"
            ) from e
        except BaseException:
            # Ctrl-C, or a shard that cannot be written (a full disk): the
            # pool would otherwise encode every queued video before leaving.
            # Its workers hold nothing to keep (shards are written here).
            # Ended, they break the pool, which fails the queued videos, and
            # the `with` returns at once.
            for worker in multiprocessing.active_children():
                worker.terminate()
            raise


@dataclasses.dataclass(frozen=True)
class LocalPool:
    """Writes the planned shards with a process pool on this machine."""

    workers: int = 1

    @property
    def description(self):
        return f"with {self.workers} worker(s)"

    def write(self, output_dir, todo, options):
        """Writes `todo` (`[(split, shard, items)]`); returns the record count."""
        items = [item for _, _, shard_items in todo for item in shard_items]
        paths = [p for item in items for p in (item.path, item.flow_path) if p]
        workers = self.workers
        if workers > 1 and any(storage.process_local(p) for p in paths):
            print(
                "Inputs on ram:// exist only in this process: encoding them "
                f"here, not in {workers} worker processes.",
                file=sys.stderr,
            )
            workers = 1
        # The keras flow backend runs XLA in the workers, and a forked child
        # of a process whose TensorFlow runtime has started can hang; so can
        # one that reads a URL through it (tf.io.gfile).
        remote = not all(storage.is_local(p) for p in paths)
        spawn = options.flow_backend == "keras" or remote
        start_method = "spawn" if spawn else "fork"
        results = _map(items, options, workers, start_method=start_method)
        bar = progress.Progress(len(items), what="prepare")
        return sum(
            shards.write_shard(
                output_dir,
                split,
                shard,
                shard_items,
                results,
                bar.update,
                flow_backend=options.flow_backend,
            )
            for split, shard, shard_items in todo
        )
