"""Per-frame CNN backbones ending at the pooled layer (docs/RELEASE.md Sec. 4).

Each builder returns a frame-level `keras.Model` mapping `[N, S, S, C]` frames
to the features that the pooling reads, `[N, h, w, D]` (a clip backbone: a
video-level one); one module per family:

- `'vgg16'`, `'tiny'` (`vgg.py`): the release's VGG-16 at its pre-ReLU
  endpoints, and its few-thousand-parameter stand-in for tests and the toy;
- `'inception_v3'` (`inception.py`): the Charades backbone, cut at a
  `mixed*` block;
- `'i3d'`, `'tiny_i3d'` (`clip.py`, on `i3d.py`): I3D, which convolves
  over time, so it maps whole `[B, T, S, S, C]` videos to `[B, T', h, w, D]`
  (`CLIP_BACKBONES`); `inflate.py` turns 2-D networks into such ones;
- `'c3d'`, `'tiny_c3d'` (`c3d.py`): C3D, a clip backbone too;
- `'single_frame'`, `'early_fusion'`, `'late_fusion'`, `'slow_fusion'` and
  their `'tiny_*'` stand-ins (`fusion_nets.py`): Karpathy et al.'s networks,
  clip backbones except the single-frame one (docs/CLIP_MODELS.md);
- `flow_input.py`: the release's rule that turns RGB first-layer weights
  into flow ones, for every family.
"""

import re

import keras

from avlad_tf.models.backbones import c3d
from avlad_tf.models.backbones import fusion_nets
from avlad_tf.models.backbones.clip import build_i3d_backbone
from avlad_tf.models.backbones.flow_input import flow_kernel_from_rgb
from avlad_tf.models.backbones.inception import build_inception_v3
from avlad_tf.models.backbones.vgg import build_tiny
from avlad_tf.models.backbones.vgg import build_vgg16
from avlad_tf.models.backbones.vgg import copy_vgg16_weights
from avlad_tf.models.backbones.vgg import image_network_fc

__all__ = [
    "CLIP_BACKBONES",
    "DEFAULT_ENDPOINTS",
    "build_backbone",
    "build_i3d_backbone",
    "build_inception_v3",
    "build_tiny",
    "build_vgg16",
    "copy_vgg16_weights",
    "flow_kernel_from_rgb",
    "image_network_fc",
    "pooled_block_layers",
    "trainable_layers",
]

DEFAULT_ENDPOINTS = {
    "vgg16": "conv5_3",
    "tiny": "conv5_3",
    "inception_v3": "mixed7",
    "i3d": "Mixed_5c",
    "tiny_i3d": "Mixed_5c",
    # The last convolution, pooled over space and time (docs/CLIP_MODELS.md).
    **dict.fromkeys(c3d.WIDTH_DIVISORS, "conv5b"),
    **dict.fromkeys(fusion_nets.WIDTH_DIVISORS, "conv5"),
}
# Backbones that read a whole video `[B, T, S, S, C]` and mix its frames.
CLIP_BACKBONES = ("i3d", "tiny_i3d", *c3d.WIDTH_DIVISORS) + tuple(
    name
    for name in fusion_nets.WIDTH_DIVISORS
    if fusion_nets.variant_of(name) != "single_frame"
)


def build_backbone(
    backbone,
    *,
    input_channels,
    image_size,
    endpoint=None,
    weights=None,
    weight_decay=4e-5,
    fc_dropout_rate=0.8,
    name,
):
    """Dispatches to the builder named `backbone` (`DEFAULT_ENDPOINTS`:
    'vgg16', 'tiny', 'inception_v3', 'i3d', 'c3d', 'slow_fusion', ...);
    `endpoint=None` takes that backbone's default."""
    if backbone not in DEFAULT_ENDPOINTS:
        raise ValueError(
            f"Unknown backbone {backbone!r}; expected one of "
            f"{sorted(DEFAULT_ENDPOINTS)}."
        )
    endpoint = endpoint or DEFAULT_ENDPOINTS[backbone]
    kwargs = dict(
        input_channels=input_channels,
        image_size=image_size,
        endpoint=endpoint,
        weights=weights,
        weight_decay=weight_decay,
        name=name,
    )
    if backbone == "inception_v3":
        return build_inception_v3(**kwargs)
    if backbone in c3d.WIDTH_DIVISORS:
        return c3d.build_c3d_backbone(
            backbone, fc_dropout_rate=fc_dropout_rate, **kwargs
        )
    if backbone in fusion_nets.WIDTH_DIVISORS:
        return fusion_nets.build_fusion_net_backbone(
            backbone, fc_dropout_rate=fc_dropout_rate, **kwargs
        )
    if backbone in CLIP_BACKBONES:
        return build_i3d_backbone(backbone, **kwargs)
    builder = build_vgg16 if backbone == "vgg16" else build_tiny
    return builder(fc_dropout_rate=fc_dropout_rate, **kwargs)


def pooled_block_layers(backbone):
    """Layers of the block that ends at the pooled endpoint (trained in stage 2).

    conv5_1..conv5_3 for conv5_3, conv4_1..conv4_3 for conv4_3, fc7 alone for
    fc7 (docs/RELEASE.md Sec. 7.3); for InceptionV3 and I3D the layers of
    the endpoint's mixed block; for C3D and Karpathy et al.'s networks the
    convolutions since the last pool (conv5a, conv5b; conv3 ... conv5) or
    the fc layer. Batch norm is never included (always frozen).
    """
    block = []
    for layer in backbone.layers:
        if layer.name.endswith(("_pool", "_dropout")) or re.fullmatch(
            r"mixed\d+|Mixed_\d[a-z]|pool\d", layer.name
        ):
            if layer is backbone.layers[-1]:
                block.append(layer)
                break
            block = []  # a block boundary before the endpoint
            continue
        block.append(layer)
    return trainable_layers(block)


def trainable_layers(layers):
    """The layers of `layers` that a stage may train: those with weights,
    but batch norm (always frozen)."""
    return [
        layer
        for layer in layers
        if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
    ]
