"""Looking inside built models: input names, layers, the pooling layer, and
the sub-models k-means, evaluation and the visualiser read.

Every model `models.action_vlad.build_model` builds names its pooling layer
after its aggregator (`aggregators.AGGREGATORS`) and its classifier `logits`; these helpers
find them in single-stream, fusion and nested (late-fusion) models alike.
"""

import keras

from avlad_tf.models import aggregators
from avlad_tf.models import frames


def input_names(model):
    """The names of `model`'s inputs (`rgb`, `flow`): the feature keys of the
    input pipeline. A Keras input tensor's name can carry a `:0` suffix."""
    return [tensor.name.split(":")[0] for tensor in model.inputs]


def walk_layers(model):
    """Yields every layer of `model`, descending into nested models."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from walk_layers(layer)


def find_layer(model, name):
    """The unique layer called `name` anywhere in `model` (nested included).

    Raises:
        ValueError: if there is no such layer or more than one.
    """
    found = [layer for layer in walk_layers(model) if layer.name == name]
    if len(found) != 1:
        raise ValueError(
            f"Expected one layer named {name!r} in model {model.name!r}; "
            f"found {len(found)}. Nested backbones are "
            f"{[l.name for l in walk_layers(model) if isinstance(l, keras.Model)]}."
        )
    return found[0]


def mixes_frames(model):
    """Whether `model` (or a nested model) convolves over time: a clip
    backbone (`frames.ClipFrames`), whose features of some frames depend on
    their neighbours."""
    return any(isinstance(layer, frames.ClipFrames) for layer in walk_layers(model))


def check_crops(model, num_crops):
    """Raises a one-line ValueError when `model` mixes frames and would read
    a bag of `num_crops` > 1 crops: the bag interleaves the crops frame by
    frame (`[B, T·crops]`, frame-major), so its time axis is no clip."""
    if num_crops != 1 and mixes_frames(model):
        raise ValueError(
            f"{model.name} convolves over time (a clip backbone), and a "
            f"{num_crops}-crop bag interleaves the crops frame by frame: "
            "evaluate and export it with 1 crop (evaluate.num_crops = 1, "
            "export.num_crops = 1)."
        )


def pooling_layer(model):
    """The pooling layer (`netvlad`, `avg_pool`, `max_pool`, ...) of a
    single-stream or concat / early fusion model."""
    names = aggregators.layer_names()
    found = [layer for layer in model.layers if layer.name in names]
    if len(found) != 1:
        raise ValueError(
            f"Model {model.name!r} has {len(found)} top-level pooling layers "
            f"(expected one of {sorted(names)}); late-fusion models have one "
            f"per nested stream model, use those instead."
        )
    return found[0]


def feature_model(model):
    """Model from `model`'s inputs to the pooled layer's input `[B, T, h, w, D]`.

    These are the (pre-ReLU) features that k-means clusters (Sec. 8); for
    `early` fusion they are the joint bag `[B, T, 2h, w, D]`.
    """
    return keras.Model(
        model.input, pooling_layer(model).input, name=f"{model.name}_features"
    )


def endpoints_model(model):
    """Model with `model`'s inputs and a dict of outputs.

    `logits` `[B, C]`, `descriptor` (the pooled vector), for NetVLAD
    `assignments` `[B, T, h, w, K]` (docs/CONTRACTS.md), and for VideoLSTM
    its `attention` maps `[B, T, h', w']` (each sums to 1 over positions).
    """
    pool = pooling_layer(model)
    outputs = {
        "logits": model.output,
        **aggregators.of_layer(pool).endpoints(pool.output),
    }
    return keras.Model(model.input, outputs, name=f"{model.name}_endpoints")
