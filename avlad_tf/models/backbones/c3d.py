"""C3D (Tran et al., "Learning Spatiotemporal Features with 3D Convolutional
Networks", ICCV 2015, Sec. 3.3 and Fig. 3) in Keras layers only, so it runs
on TensorFlow and JAX (docs/CLIP_MODELS.md).

- 8 convolutions, all 3x3x3 with stride 1, each followed by ReLU: conv1a 64,
  conv2a 128, conv3a / conv3b 256, conv4a / conv4b 512, conv5a / conv5b 512,
  padded by 1 in time and space ('same', the released prototxt's `pad: 1`
  and `temporal_pad: 1`);
- 5 max-pools, stride equal to the window: pool1 1x2x2 (it keeps time),
  pool2 ... pool5 2x2x2. Caffe rounds a pooled size up, so pool5 takes a
  112 px clip's 7x7 conv5b map to 4x4 and fc6 reads 512·4·4 = 8192 values;
  Keras' 'same' max-pool rounds up the same way (windows start at the first
  row and column, the one missing row and column is padding after them);
- fc6 and fc7, 4096 each, ReLU, dropout (0.5 in the released prototxt,
  `build_model.fc_dropout_rate`): `clip.fully_connected`, one fc vector per
  pool5 step, i.e. per 16 frames.

A 16-frame 112 px clip gives conv5b `[2, 7, 7, 512]`, pool5
`[1, 4, 4, 512]` and fc7 `[1, 1, 1, 4096]`; conv1a ... fc7 hold 77,995,776
weights (with the Sports-1M fc8 of 487 classes, 79,991,015). Each endpoint
is the output of the layer of that name: the convolutions' are pre-ReLU
(each has its own `relu*` layer), as ActionVLAD pools VGG16's pre-ReLU
conv5_3 (Sec. 5.2).
"""

import keras

from avlad_tf.layers import regularizers
from avlad_tf.models.backbones import clip

# (layer, kind, setting): a convolution's width or a max-pool's window.
_LAYOUT = (
    ("conv1a", "conv", 64),
    ("pool1", "pool", (1, 2, 2)),
    ("conv2a", "conv", 128),
    ("pool2", "pool", (2, 2, 2)),
    ("conv3a", "conv", 256),
    ("conv3b", "conv", 256),
    ("pool3", "pool", (2, 2, 2)),
    ("conv4a", "conv", 512),
    ("conv4b", "conv", 512),
    ("pool4", "pool", (2, 2, 2)),
    ("conv5a", "conv", 512),
    ("conv5b", "conv", 512),
    ("pool5", "pool", (2, 2, 2)),
)
FC_UNITS = 4096
ENDPOINTS = tuple(name for name, _, _ in _LAYOUT) + clip.FC_ENDPOINTS
# Sports-1M's classes, the width of the released fc8.
SPORTS1M_CLASSES = 487
# Widths divided by this: C3D, and a stand-in of 1/256 of its convolution
# weights (108,496) for tests and the toy dataset. 1/32 (27,248) left the
# toy's flow near chance: conv1a had 2 filters (docs/CLIP_MODELS.md).
WIDTH_DIVISORS = {"c3d": 1, "tiny_c3d": 16}


def c3d_layers(x, *, endpoint, width_divisor=1, weight_decay=0.0, dropout_rate=0.5):
    """C3D's layers on the clip tensor `x` `[B, T, S, S, C]`, up to
    `endpoint` (one of `ENDPOINTS`).

    Raises:
        ValueError: an unknown endpoint or a bad width divisor.
    """
    if endpoint not in ENDPOINTS:
        raise ValueError(
            f"Unknown C3D endpoint {endpoint!r}; expected one of {list(ENDPOINTS)}."
        )
    if not isinstance(width_divisor, int) or width_divisor < 1:
        raise ValueError(
            f"width_divisor must be a positive int. Received: {width_divisor!r}"
        )
    for name, kind, setting in _LAYOUT:
        if kind == "pool":
            x = keras.layers.MaxPooling3D(setting, padding="same", name=name)(x)
        else:
            x = keras.layers.Conv3D(
                max(1, setting // width_divisor),
                3,
                padding="same",
                kernel_regularizer=regularizers.weight_decay(weight_decay),
                name=name,
            )(x)
            if name == endpoint:
                return x  # (B, T', h, w, D), pre-ReLU
            x = keras.layers.ReLU(name=name.replace("conv", "relu"))(x)
        if name == endpoint:
            return x  # (B, T', h, w, D)
    return clip.fully_connected(
        x,
        units=max(1, FC_UNITS // width_divisor),
        endpoint=endpoint,
        weight_decay=weight_decay,
        dropout_rate=dropout_rate,
    )  # (B, T', 1, 1, 4096)


def build_c3d(
    *,
    input_channels=3,
    image_size=112,
    endpoint="fc7",
    width_divisor=1,
    weight_decay=0.0,
    dropout_rate=0.5,
    name="c3d",
):
    """C3D from `[B, T, S, S, C]` clips to an endpoint `[B, T', h, w, D]`.

    Args:
        input_channels: 3 for RGB (the paper's input), 2 for flow fields.
        image_size: S (the paper's crops are 112 of 128x171 frames).
        endpoint: one of `ENDPOINTS`.
        width_divisor: every width divided by this (at least 1); 16 is the
            tiny stand-in.
        weight_decay: slim-style L2 on every kernel.
        dropout_rate: after fc6.
        name: model name.
    """
    inputs = keras.Input((None, image_size, image_size, input_channels), name="clip")
    x = c3d_layers(
        inputs,
        endpoint=endpoint,
        width_divisor=width_divisor,
        weight_decay=weight_decay,
        dropout_rate=dropout_rate,
    )
    return keras.Model(inputs, x, name=name)


def build_c3d_backbone(
    backbone,
    *,
    input_channels,
    image_size,
    endpoint,
    weights,
    weight_decay,
    fc_dropout_rate,
    name,
):
    """`[B, T, S, S, C]` videos to C3D's `endpoint` map `[B, T', h, w, D]`
    as ActionVLAD's backbone (`clip.clip_backbone`): `'conv5b'` for the
    poolings, `'fc7'` (or `'fc6'`) for C3D's own classifier through the
    two-stream pooling.

    Args:
        backbone: `'c3d'` or `'tiny_c3d'` (`WIDTH_DIVISORS`).
        input_channels: 3 (RGB) or 2·L (flow stacks, unfolded into fields).
        image_size: S.
        endpoint: one of `ENDPOINTS`.
        weights: None or a file of this backbone's `save_weights`.
        weight_decay: slim-style L2 on every kernel.
        fc_dropout_rate: dropout after fc6.
        name: model name.
    """
    return clip.clip_backbone(
        lambda x: c3d_layers(
            x,
            endpoint=endpoint,
            width_divisor=WIDTH_DIVISORS[backbone],
            weight_decay=weight_decay,
            dropout_rate=fc_dropout_rate,
        ),
        family="C3D",
        input_channels=input_channels,
        image_size=image_size,
        min_steps=1,  # every layer pads: any clip length runs
        weights=weights,
        name=name,
    )
