"""I3D: the inflated Inception-V1 (Carreira & Zisserman, "Quo Vadis, Action
Recognition?", CVPR 2017), in Keras layers only, so it runs on TF and JAX.

The layout is DeepMind's (`kinetics-i3d`, docs/I3D.md):

- every unit is a 3-D convolution ('SAME' padding, no bias, Sonnet's
  initial kernels), then batch norm
  as Sonnet v1's (offset, no scale, ε 1e-3, decay 0.999), then ReLU;
- the stem `Conv3d_1a_7x7` (stride 2 in time and space), `MaxPool3d_2a_3x3`
  and `MaxPool3d_3a_3x3` (1x3x3: the first two max-pools do not pool time),
  `Conv3d_2b_1x1`, `Conv3d_2c_3x3`;
- nine Inception blocks `Mixed_3b` ... `Mixed_5c` (four branches: 1x1;
  1x1 then 3x3x3; 1x1 then 3x3x3; a stride-1 3x3x3 max-pool then 1x1),
  with 3x3x3 and 2x2x2 max-pools (stride 2) before blocks 4 and 5;
- `Logits`: a 2x7x7 VALID average pool, dropout, a 1x1x1 convolution with
  bias, then the mean over the remaining time steps (and positions: at
  224 px there is one, where this is DeepMind's squeeze).

Each endpoint is the output of a layer named after it, so
`model.get_layer('Mixed_5c').output` is that map. The weights of a unit
`scope` (e.g. `Mixed_4b/Branch_1/Conv3d_0b_3x3`) live in the layers
`layer_name(scope, 'conv_3d')` and `layer_name(scope, 'batch_norm')`
(`i3d_weights` maps both weight formats onto them). Time: 64 frames give
8 steps at `Mixed_5c` and 7 logit steps.
"""

import keras

from avlad_tf.layers import regularizers

# Kinetics-400's classes, the width of the released logits.
KINETICS_CLASSES = 400
# (endpoint, kind, settings): a unit's (filters, kernel, strides), a pool's
# (window, strides), a block's branch widths (b0, b1a, b1b, b2a, b2b, b3).
_LAYOUT = (
    ("Conv3d_1a_7x7", "unit", (64, (7, 7, 7), (2, 2, 2))),
    ("MaxPool3d_2a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("Conv3d_2b_1x1", "unit", (64, (1, 1, 1), (1, 1, 1))),
    ("Conv3d_2c_3x3", "unit", (192, (3, 3, 3), (1, 1, 1))),
    ("MaxPool3d_3a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("Mixed_3b", "mixed", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", "mixed", (128, 128, 192, 32, 96, 64)),
    ("MaxPool3d_4a_3x3", "pool", ((3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", "mixed", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", "mixed", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", "mixed", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", "mixed", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", "mixed", (256, 160, 320, 32, 128, 128)),
    ("MaxPool3d_5a_2x2", "pool", ((2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", "mixed", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", "mixed", (384, 192, 384, 48, 128, 128)),
)
LOGITS = "Logits"
ENDPOINTS = tuple(name for name, _, _ in _LAYOUT) + (LOGITS,)
# A block's units, in the order of its widths (the fourth branch pools first).
MIXED_UNITS = (
    ("Branch_0/Conv3d_0a_1x1", (1, 1, 1)),
    ("Branch_1/Conv3d_0a_1x1", (1, 1, 1)),
    ("Branch_1/Conv3d_0b_3x3", (3, 3, 3)),
    ("Branch_2/Conv3d_0a_1x1", (1, 1, 1)),
    ("Branch_2/Conv3d_0b_3x3", (3, 3, 3)),
    ("Branch_3/Conv3d_0b_1x1", (1, 1, 1)),
)
LOGITS_SCOPE = "Logits/Conv3d_0c_1x1"
# Sonnet v1's default convolution kernels (DeepMind's I3D is built from
# them): a truncated normal of parameter 1/sqrt(fan_in), cut at 2 of it.
# Keras divides its stddev by 0.8796 (the truncated normal's own std), so
# this scale gives back Sonnet's parameter exactly.
SONNET_KERNELS = keras.initializers.VarianceScaling(
    scale=0.87962566103423978**2, mode="fan_in", distribution="truncated_normal"
)


def layer_name(scope, part):
    """The Keras layer holding `part` ('conv_3d', 'batch_norm') of the unit
    `scope`; Keras names cannot contain '/', so scopes use '.'."""
    return f"{scope.replace('/', '.')}.{part}"


def unit_scopes(endpoint=LOGITS):
    """The scopes of the units with batch norm up to `endpoint`, in order."""
    scopes = []
    for name, kind, _ in _LAYOUT:
        if kind == "unit":
            scopes.append(name)
        elif kind == "mixed":
            scopes.extend(f"{name}/{unit}" for unit, _ in MIXED_UNITS)
        if name == endpoint:
            break
    return scopes


def _unit(x, scope, filters, kernel, strides, *, weight_decay, name=None):
    """Conv3D ('same', no bias) -> Sonnet-v1 batch norm -> ReLU."""
    x = keras.layers.Conv3D(
        filters,
        kernel,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer=SONNET_KERNELS,
        kernel_regularizer=regularizers.weight_decay(weight_decay),
        name=layer_name(scope, "conv_3d"),
    )(x)
    x = keras.layers.BatchNormalization(
        momentum=0.999, epsilon=1e-3, scale=False, name=layer_name(scope, "batch_norm")
    )(x)
    return keras.layers.ReLU(name=name or layer_name(scope, "relu"))(x)


def _mixed(x, block, widths, *, weight_decay):
    """An Inception block: four branches concatenated on channels."""
    unit = dict(weight_decay=weight_decay, strides=(1, 1, 1))
    (s0, k0), (s1a, k1a), (s1b, k1b), (s2a, k2a), (s2b, k2b), (s3, k3) = [
        (f"{block}/{scope}", kernel) for scope, kernel in MIXED_UNITS
    ]
    branch_0 = _unit(x, s0, widths[0], k0, **unit)
    branch_1 = _unit(_unit(x, s1a, widths[1], k1a, **unit), s1b, widths[2], k1b, **unit)
    branch_2 = _unit(_unit(x, s2a, widths[3], k2a, **unit), s2b, widths[4], k2b, **unit)
    pooled = keras.layers.MaxPooling3D(
        (3, 3, 3), strides=1, padding="same", name=f"{block}.Branch_3.MaxPool3d_0a_3x3"
    )(x)
    branch_3 = _unit(pooled, s3, widths[5], k3, **unit)
    return keras.layers.Concatenate(name=block)(
        [branch_0, branch_1, branch_2, branch_3]
    )


def i3d_layers(x, *, endpoint=LOGITS, width_divisor=1, weight_decay=0.0):
    """I3D's layers on the clip tensor `x` `[B, T, S, S, C]`, up to
    `endpoint` (`Mixed_5c` for `Logits`, whose head `build_i3d` adds).

    Raises:
        ValueError: an unknown endpoint or a bad width divisor.
    """
    if endpoint not in ENDPOINTS:
        raise ValueError(
            f"Unknown I3D endpoint {endpoint!r}; expected one of {list(ENDPOINTS)}."
        )
    if not isinstance(width_divisor, int) or width_divisor < 1:
        raise ValueError(
            f"width_divisor must be a positive int. Received: {width_divisor!r}"
        )

    def width(w):
        return max(1, w // width_divisor)

    for block, kind, settings in _LAYOUT:
        if kind == "unit":
            filters, kernel, strides = settings
            x = _unit(
                x,
                block,
                width(filters),
                kernel,
                strides,
                weight_decay=weight_decay,
                name=block,
            )
        elif kind == "pool":
            window, strides = settings
            x = keras.layers.MaxPooling3D(window, strides, padding="same", name=block)(
                x
            )
        else:
            x = _mixed(
                x, block, [width(w) for w in settings], weight_decay=weight_decay
            )
        if block == endpoint:
            break
    return x  # (B, T', h, w, D)


def build_i3d(
    *,
    input_channels=3,
    image_size=None,
    endpoint=LOGITS,
    num_classes=KINETICS_CLASSES,
    width_divisor=1,
    dropout_rate=0.0,
    weight_decay=0.0,
    name="i3d",
):
    """I3D from `[B, T, S, S, C]` clips to an endpoint.

    Args:
        input_channels: 3 for RGB in [-1, 1], 2 for TV-L1 flow (x, y)
            clipped to ±20 and scaled to [-1, 1].
        image_size: S, or None for any size (224 for `Logits` as released).
        endpoint: one of `ENDPOINTS`; `'Logits'` gives `[B, num_classes]`,
            a map endpoint `[B, T', h, w, D]` (`Mixed_5c`: T/8, S/32, 1024).
        num_classes: width of the logits.
        width_divisor: every width divided by this (at least 1); 1 is I3D,
            16 a tiny stand-in for tests and the toy dataset.
        dropout_rate: before the logits (DeepMind trained with keep 0.5).
        weight_decay: slim-style L2 on every kernel.
        name: model name.

    Raises:
        ValueError: an unknown endpoint or a bad width divisor.
    """
    inputs = keras.Input((None, image_size, image_size, input_channels), name="clip")
    x = i3d_layers(
        inputs,
        endpoint=endpoint,
        width_divisor=width_divisor,
        weight_decay=weight_decay,
    )
    if endpoint != LOGITS:
        return keras.Model(inputs, x, name=name)  # (B, T', h, w, D)
    x = keras.layers.AveragePooling3D((2, 7, 7), strides=1, padding="valid")(x)
    x = keras.layers.Dropout(dropout_rate, name="Logits.dropout")(x)
    x = keras.layers.Conv3D(
        num_classes,
        1,
        use_bias=True,
        kernel_initializer=SONNET_KERNELS,
        kernel_regularizer=regularizers.weight_decay(weight_decay),
        name=layer_name(LOGITS_SCOPE, "conv_3d"),
    )(x)  # (B, T' - 1, h - 6, w - 6, classes)
    logits = keras.layers.GlobalAveragePooling3D(name=LOGITS, dtype="float32")(x)
    return keras.Model(inputs, logits, name=name)  # (B, classes)
