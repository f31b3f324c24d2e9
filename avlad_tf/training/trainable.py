"""Which layers each stage of the release's two-stage schedule trains
(docs/RELEASE.md Sec. 7.3).

Keras only, no TensorFlow: `bench/gpu.py` sets the stage of a model on a
JAX machine.
"""

import keras

from avlad_tf import settings
from avlad_tf.models import aggregators
from avlad_tf.models import backbones
from avlad_tf.models import inspection

# What stage 2 trains of each backbone (`fine_tuning`).
BACKBONE_LAYERS = ("pooled_block", "all")


@settings.configurable(setting=("backbone_layers",))
def fine_tuning(*, backbone_layers="pooled_block"):
    """Which backbone layers stage 2 trains: `'pooled_block'`, the block
    that ends at the pooled endpoint (the release, Sec. 7.3), or `'all'`,
    every layer but batch norm, as Karpathy et al.'s "all layers"
    fine-tuning. A network without trained weights learns its features only
    with `'all'` (the toy's clip models, docs/CLIP_MODELS.md)."""
    if backbone_layers not in BACKBONE_LAYERS:
        raise ValueError(
            f"fine_tuning.backbone_layers must be one of {BACKBONE_LAYERS}; "
            f"received {backbone_layers!r}."
        )
    return backbone_layers


def _stage_two_layers(backbone):
    """The layers of `backbone` that stage 2 trains (`fine_tuning`)."""
    if fine_tuning() == "pooled_block":
        return backbones.pooled_block_layers(backbone)
    return backbones.trainable_layers(backbone.layers)


def starts_from_scratch(model):
    """Whether `model`'s aggregator starts from random weights
    (`Aggregator.from_scratch`), in it or a nested stream model."""
    names = aggregators.layer_names(from_scratch=True)
    return any(layer.name in names for layer in inspection.walk_layers(model))


def set_stage(model, stage):
    """Sets `trainable` for the release's two-stage schedule (Sec. 7.3).

    Stage 1 trains only the classifier(s) `logits` (pooling at its k-means
    initialisation, backbone frozen), and aggregators that start from random
    weights (`Aggregator.from_scratch`). Stage 2 also trains the pooling layer
    and each backbone's pooled block (conv5_1..conv5_3 for conv5_3,
    conv4_1..conv4_3 for conv4_3, fc7 only for fc7), or every backbone
    layer with `fine_tuning.backbone_layers = 'all'`. Batch norm stays
    frozen.
    Recompile (or rebuild the train step) afterwards: Keras fixes the
    trainable set at compile time (docs/PITFALLS.md 3.4).

    Returns:
        The sorted names (`<container>/<layer>`) of the trainable layers.
    """
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2; received {stage!r}.")
    pooling_names = aggregators.layer_names()
    # Aggregators without an initialisation of their own (NetVLAD has
    # k-means) would feed stage 1's classifier random features: they train
    # from stage 1 on.
    from_scratch = aggregators.layer_names(from_scratch=True)
    chosen = []
    containers = [model] + [
        l for l in inspection.walk_layers(model) if isinstance(l, keras.Model)
    ]
    for container in containers:
        container.trainable = True
        for layer in container.layers:
            if (
                layer.name == "logits"
                or layer.name in from_scratch
                or (stage == 2 and layer.name in pooling_names)
            ):
                chosen.append((container, layer))
        if stage == 2 and container.name.endswith("_backbone"):
            chosen += [(container, layer) for layer in _stage_two_layers(container)]
    chosen_ids = {id(layer) for _, layer in chosen}
    for layer in inspection.walk_layers(model):
        if not isinstance(layer, keras.Model):
            layer.trainable = id(layer) in chosen_ids
    return sorted(f"{c.name}/{l.name}" for c, l in chosen)
