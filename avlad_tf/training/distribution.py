"""Which tf.distribute strategy trains, and where each worker writes.

`train_stream.distribute` chooses (docs/TRAINING.md, "Training on several
machines"):

- `'none'` (or False): TensorFlow's default strategy, one device;
- `'mirrored'` (or True): `MirroredStrategy` over `train_stream.devices`
  (None: every local GPU);
- `'multi_worker'`: `MultiWorkerMirroredStrategy` over the cluster that the
  `TF_CONFIG` environment variable names; every worker runs the same command;
- `'auto'`: `'multi_worker'` when `TF_CONFIG` names more than one task, else
  `'mirrored'` with several local GPUs, else `'none'`.

In a multi-worker job the chief writes the workdir. Every other worker runs
the same code with its writes sent to a temporary directory of its own,
removed at the end: TF's multi-worker guide has every worker save, so that a
collective inside saving runs everywhere, and keeps only the chief's copy.
"""

import contextlib
import json
import os
import shutil
import tempfile

import tensorflow as tf

KINDS = ("none", "mirrored", "multi_worker", "auto")
_BOOLS = {False: "none", True: "mirrored"}  # the binding's values before 'auto'
_STRATEGIES = {}


def _tf_config():
    text = os.environ.get("TF_CONFIG", "")
    try:
        return json.loads(text) if text.strip() else {}
    except ValueError as error:
        raise ValueError(f"TF_CONFIG is not JSON ({error}): {text!r}") from error


def cluster_size(tf_config):
    """How many training tasks (chief and workers) `tf_config` names."""
    cluster = tf_config.get("cluster", {})
    return sum(len(cluster.get(job, ())) for job in ("chief", "worker"))


def resolve(distribute, *, tf_config=None, num_gpus=None, binding=None):
    """The strategy `distribute` means: 'none', 'mirrored' or 'multi_worker'.

    Args:
        distribute: the `train_stream.distribute` value.
        tf_config: the parsed `TF_CONFIG` (None: read the environment).
        num_gpus: local GPUs, for 'auto' (None: ask TensorFlow, which does
            not start its runtime).
        binding: the binding's name in messages.

    Raises:
        ValueError: an unknown value, or 'multi_worker' without a cluster.
    """
    binding = binding or "train_stream.distribute"
    kind = _BOOLS[distribute] if isinstance(distribute, bool) else distribute
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(
            f"{binding} = {distribute!r}: must be 'none', 'mirrored', "
            f"'multi_worker' or 'auto' (False and True mean 'none' and "
            f"'mirrored')."
        )
    tf_config = _tf_config() if tf_config is None else tf_config
    if kind == "auto":
        if cluster_size(tf_config) > 1:
            return "multi_worker"
        if num_gpus is None:
            num_gpus = len(tf.config.list_physical_devices("GPU"))
        return "mirrored" if num_gpus > 1 else "none"
    if kind == "multi_worker" and not (cluster_size(tf_config) and "task" in tf_config):
        raise ValueError(
            f"{binding} = 'multi_worker' needs TF_CONFIG naming the cluster "
            f"and this process's task (docs/TRAINING.md). Received: "
            f"TF_CONFIG={os.environ.get('TF_CONFIG')!r}"
        )
    return kind


def make_strategy(distribute, devices=None, *, binding=None):
    """The process's strategy for `distribute` (see `resolve`).

    Created once and reused (e.g. by the flow stream after the RGB one): a
    second MirroredStrategy over the same devices in one process reuses
    collective instance keys and fails with "Shape mismatch in the
    collective instance", and a process can join only one cluster.
    `'multi_worker'` must come before TensorFlow runs anything: the strategy
    configures the runtime's collectives (`experiment.train` makes it first).
    """
    kind = resolve(distribute, binding=binding)
    if kind == "none":
        return tf.distribute.get_strategy()
    if kind == "multi_worker" and devices:
        raise ValueError(
            f"train_stream.devices = {devices!r} applies to 'mirrored'; a "
            f"multi-worker job uses every local GPU (or the CPU) of each worker."
        )
    key = (kind, tuple(devices) if devices else None)
    if key not in _STRATEGIES:
        if kind == "mirrored":
            _STRATEGIES[key] = tf.distribute.MirroredStrategy(devices)
        else:
            # Collectives: AUTO, i.e. NCCL between GPUs, RING (gRPC) on CPUs.
            _STRATEGIES[key] = tf.distribute.MultiWorkerMirroredStrategy()
    return _STRATEGIES[key]


def is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy):
    """Whether this process writes the workdir (always, without a cluster)."""
    return strategy.extended.should_checkpoint


def num_local_replicas(strategy):
    """Replicas on this worker's own devices."""
    if is_multi_worker(strategy):
        return len(strategy.extended.worker_devices)
    return strategy.num_replicas_in_sync


def worker_index(strategy):
    """This worker's place in the job, 0 on the chief (TensorFlow numbers
    the replicas of each worker consecutively, the chief's first)."""
    replica_ids = strategy.run(
        lambda: tf.distribute.get_replica_context().replica_id_in_sync_group
    )
    first = strategy.experimental_local_results(replica_ids)[0]
    return int(first) // num_local_replicas(strategy)


def dataset_shard(strategy):
    """`make_dataset`'s arguments that give this worker its part of every
    global batch: `{}` for a single process."""
    num_workers = strategy.num_replicas_in_sync // num_local_replicas(strategy)
    if num_workers == 1:
        return {}
    return {"num_shards": num_workers, "shard_index": worker_index(strategy)}


@contextlib.contextmanager
def write_dir(workdir, strategy):
    """Yields where this process writes: `workdir` on the chief, else a
    temporary directory that is removed afterwards."""
    if is_chief(strategy):
        yield workdir
        return
    temporary = tempfile.mkdtemp(prefix=f"avlad_worker{worker_index(strategy)}_")
    try:
        yield temporary
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def from_chief(strategy, values):
    """The chief's `values` (float tensors), on every worker.

    An all-reduce sum in which only the first replica (the chief's) adds its
    values: adding zeros keeps them bit for bit.
    """
    values = [tf.convert_to_tensor(v) for v in values]

    def replica_fn():
        context = tf.distribute.get_replica_context()
        first = tf.equal(context.replica_id_in_sync_group, 0)
        return context.all_reduce(
            tf.distribute.ReduceOp.SUM,
            [tf.where(first, v, tf.zeros_like(v)) for v in values],
        )

    results = strategy.run(tf.function(replica_fn))
    return [strategy.experimental_local_results(r)[0] for r in results]


def sync_from_chief(strategy, variables):
    """Gives every worker the chief's values of `variables` (no-op on one)."""
    if not is_multi_worker(strategy):
        return
    for variable, value in zip(variables, from_chief(strategy, variables)):
        variable.assign(value)


def check_agrees(strategy, value, *, what):
    """Raises ValueError on a worker whose integer `value` differs from the
    chief's (no-op on one)."""
    if not is_multi_worker(strategy):
        return
    chief = int(from_chief(strategy, [tf.constant(value, tf.float64)])[0])
    if chief != value:
        raise ValueError(
            f"Worker {worker_index(strategy)} finds {what} = {value}, the chief "
            f"{chief}: every worker must read the same --workdir (shared storage)."
        )


def barrier(strategy):
    """Returns once every worker has reached it (no-op on one process)."""
    if is_multi_worker(strategy):
        from_chief(strategy, [tf.zeros(())])
