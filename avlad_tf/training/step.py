"""One optimizer update: accumulate, clip per tensor, apply (docs/RELEASE.md Sec. 7.2).

The release computes the gradient of each sub-batch (summed over GPU clones,
i.e. averaged over the sub-batch's videos), clips *each tensor* of it to norm
`clip_norm`, adds the clipped gradients over `iter_size` sub-batches and
applies their mean (Sec. 12.11). Keras' `gradient_accumulation_steps` clips
after averaging and refuses tf.distribute strategies (docs/PITFALLS.md 3.6), so the
update is written out here:

    for each of `accumulation_steps` sub-batches (one `next(iterator)` each):
        g = all-replica mean gradient of (mean CE + regularisation losses)
        acc += [clip_by_norm(t, clip_norm) for t in g]
    optimizer.apply(acc / accumulation_steps)

Under a `tf.distribute.MirroredStrategy` the host iterator yields the whole
sub-batch for all replicas (`batch_size * num_replicas` videos) and each
replica takes its own slice, so the one tf.data iterator stays checkpointable.
Under a `MultiWorkerMirroredStrategy` the same code runs on every worker: its
iterator yields its own part of the sub-batch (`batch_size` videos per local
replica, `make_dataset(num_shards=...)`), and the all-reduce, hence the
clipped sum, spans every replica of every worker.
The per-replica gradient (of loss / num_replicas) runs under XLA
(`jit_compile`); the all-reduce, clipping and Adam update run outside it.
On several replicas, trainable batch norm all-reduces its batch statistics
(`sync_batch_norm`), so the update is still the one-process update; that
all-reduce cannot run inside a nested compiled function, so such a model's
gradient runs without XLA.
"""

from absl import logging
import tensorflow as tf

from avlad_tf.models import inspection
from avlad_tf.training import distribution
from avlad_tf.training import sync_batch_norm


def classification_loss(labels, logits, *, multi_label):
    """Mean over the batch of the per-video loss (release Sec. 5.5).

    Softmax cross-entropy on one-hot labels; for multi-label data (Charades)
    the per-class sigmoid cross-entropies are summed per video (the release
    has no Charades training recipe, Sec. 13).
    """
    logits = tf.cast(logits, tf.float32)
    if multi_label:
        per_class = tf.nn.sigmoid_cross_entropy_with_logits(labels, logits)
        return tf.reduce_mean(tf.reduce_sum(per_class, axis=-1))
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels, logits))


def _accuracy(labels, logits):
    """Top-1 accuracy: the arg-max class is one of the video's labels."""
    top = tf.argmax(logits, axis=-1)
    hit = tf.gather(labels, top, batch_dims=1)  # (B,)
    return tf.reduce_mean(tf.cast(hit > 0, tf.float32))


def _replica_slice(tree, batch_size, num_local):
    """This replica's `batch_size` videos of its worker's sub-batch."""
    replica_id = tf.distribute.get_replica_context().replica_id_in_sync_group
    # Its place among the worker's `num_local` replicas: TensorFlow numbers
    # each worker's replicas consecutively.
    start = (replica_id % num_local) * batch_size
    return tf.nest.map_structure(lambda x: x[start : start + batch_size], tree)


def make_update_fn(
    *,
    model,
    optimizer,
    strategy,
    batch_size,
    accumulation_steps,
    clip_norm,
    jit_compile,
    multi_label,
):
    """Builds `update(iterator) -> metrics` for the model's *current* trainable set.

    Call it again after changing which layers are trainable (a new stage):
    the variable list is fixed when the function is built (docs/PITFALLS.md 3.4).

    Args:
        model: the Keras model; inputs are the feature dict of the dataset
            (extra keys such as `video_id` are dropped).
        optimizer: a Keras optimizer built for `model.trainable_variables`
            inside `strategy.scope()`.
        strategy: a `tf.distribute.Strategy` (the default one when not
            distributed).
        batch_size: videos per replica per sub-batch.
        accumulation_steps: sub-batches per optimizer update.
        clip_norm: per-tensor gradient norm limit; 0 or None disables it.
        jit_compile: compile the per-replica gradient with XLA (not while
            batch norm is synchronized across replicas).
        multi_label: sigmoid instead of softmax cross-entropy.

    Returns:
        A `tf.function` taking the host iterator and returning a dict of
        scalars: `loss` (CE + regularisation), `cross_entropy`, `accuracy`,
        `grad_norm` (global norm of the applied, clipped mean gradient) and
        `raw_grad_norm` (mean over sub-batches of the unclipped global norm).
    """
    variables = model.trainable_variables
    if not variables:
        raise ValueError("The model has no trainable variables in this stage.")
    num_replicas = strategy.num_replicas_in_sync
    num_local = distribution.num_local_replicas(strategy)
    input_names = inspection.input_names(model)
    batch_norms = sync_batch_norm.layers_to_sync(model, strategy)

    def gradients(features, labels):
        with tf.GradientTape() as tape:
            logits = model(features, training=True)
            cross_entropy = classification_loss(labels, logits, multi_label=multi_label)
            # Weight decay is a loss term (release Sec. 12.10), so it passes
            # through clipping and Adam like the data term.
            regularization = tf.add_n(
                [tf.cast(l, tf.float32) for l in model.losses] or [0.0]
            )
            loss = cross_entropy + regularization
            # Replicas' gradients are summed by the all-reduce below.
            scaled = loss / num_replicas
        grads = tape.gradient(scaled, variables)
        return grads, loss, cross_entropy, _accuracy(labels, logits)

    if jit_compile and batch_norms:
        # MirroredStrategy all-reduces through `merge_call`, which a nested
        # (compiled) tf.function refuses: the BN statistics' all-reduce must
        # sit in the replica function itself.
        logging.warning(
            "train_stream.jit_compile: the gradient runs without XLA, since "
            "%d batch norm layer(s) synchronize across %d replicas.",
            len(batch_norms),
            num_replicas,
        )
    elif jit_compile:
        gradients = tf.function(gradients, jit_compile=True)

    def replica_sub_step(features, labels):
        features, labels = _replica_slice((features, labels), batch_size, num_local)
        grads, loss, cross_entropy, accuracy = gradients(features, labels)
        context = tf.distribute.get_replica_context()
        grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        raw_norm = tf.linalg.global_norm(grads)
        if clip_norm:
            grads = [tf.clip_by_norm(g, clip_norm) for g in grads]
        return grads, loss, cross_entropy, accuracy, raw_norm

    def replica_apply(grads):
        # Keras' optimizer sums gradients over replicas in replica context;
        # every replica holds the same mean gradient, so hand in 1/R of it
        # (exact for power-of-two replica counts, a no-op for one replica).
        optimizer.apply([g / num_replicas for g in grads], variables)

    def first(value):
        # After the all-reduce every replica holds the same value.
        return strategy.experimental_local_results(value)[0]

    def mean(value):
        return strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)

    @tf.function
    def update(iterator):
        total = None
        sums = {
            "loss": 0.0,
            "cross_entropy": 0.0,
            "accuracy": 0.0,
            "raw_grad_norm": 0.0,
        }
        # A Python loop: accumulation_steps is small and each sub-step is one
        # call of the same compiled gradient function.
        for _ in range(accumulation_steps):
            features, labels = next(iterator)
            features = {name: features[name] for name in input_names}
            # Runs while tracing: the graph keeps the statistics' all-reduce,
            # the layers (and their saved config) keep synchronized=False.
            with sync_batch_norm.synchronized(batch_norms):
                grads, loss, cross_entropy, accuracy, raw_norm = strategy.run(
                    replica_sub_step, args=(features, labels)
                )
            grads = [first(g) for g in grads]
            total = grads if total is None else [a + g for a, g in zip(total, grads)]
            sums["loss"] += mean(loss)
            sums["cross_entropy"] += mean(cross_entropy)
            sums["accuracy"] += mean(accuracy)
            sums["raw_grad_norm"] += first(raw_norm)
        averaged = [g / accumulation_steps for g in total]
        strategy.run(replica_apply, args=(averaged,))
        metrics = {k: v / accumulation_steps for k, v in sums.items()}
        metrics["grad_norm"] = tf.linalg.global_norm(averaged)
        return metrics

    return update
