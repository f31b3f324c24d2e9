"""Batch norm synchronized across replicas while the update is traced.

Keras' `BatchNormalization` normalises each replica's slice of the batch
with that slice's mean and variance (`synchronized=False`): several replicas
would not give the one-process update, and each replica's copy of the moving
statistics would follow its own data, of which the checkpoint keeps one
(docs/TRAINING.md, "Training on several machines"). `synchronized=True`
(TensorFlow backend only) all-reduces the batch statistics, so every replica
normalises with the whole sub-batch's and the moving statistics agree.

The attribute is switched on only while `training.step` traces the replica
step, never in the layer's config: a saved `.keras` file or an export keeps
`synchronized=False`, which loads under JAX (where `True` raises).
"""

import contextlib

import keras


def layers_to_sync(model, strategy):
    """The trainable `BatchNormalization` layers of `model`, nested ones
    included, when `strategy` has several replicas on the TensorFlow
    backend; otherwise `[]`.

    A frozen BN (the backbones') runs in inference mode, with its moving
    statistics, and needs no batch statistics.
    """
    if strategy.num_replicas_in_sync < 2 or keras.backend.backend() != "tensorflow":
        return []
    # `_flatten_layers` also reaches a layer's own sub-layers (the BN inside
    # `TemporalResInception`), which `model.layers` does not list.
    return [
        layer
        for layer in model._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
    ]


@contextlib.contextmanager
def synchronized(layers):
    """`synchronized=True` on `layers` inside the block, restored after.

    Enter it in cross-replica context, around `strategy.run`: the replica
    functions of a `MirroredStrategy` run on threads of their own, which
    would restore each other's values out of order.
    """
    previous = [layer.synchronized for layer in layers]
    for layer in layers:
        layer.synchronized = True
    try:
        yield
    finally:
        for layer, value in zip(layers, previous):
            layer.synchronized = value
