"""Karpathy et al.'s single-frame, early, late and slow fusion networks
("Large-scale Video Classification with Convolutional Neural Networks",
CVPR 2014, Sec. 3.1 and Fig. 1) in Keras layers only (docs/CLIP_MODELS.md).

Every variant has the single-frame network's layers, in the paper's notation
C(96, 11, 3)-N-P-C(256, 5, 1)-N-P-C(384, 3, 1)-C(384, 3, 1)-C(256, 3, 1)-P-
FC(4096)-FC(4096): C(d, f, s) d filters of f x f at stride s; N local
response normalisation with k = 2, n = 5, α = 1e-4, β = 0.5; P max-pooling
over non-overlapping 2 x 2 regions. The variants differ in time:

- single frame: none; a frame backbone (`[N, S, S, C]` frames), as VGG16;
- early fusion: conv1's filters span T = 10 frames;
- late fusion: two single-frame towers 15 frames apart, merged at the first
  fully connected layer (fc6 reads both towers' pool5 maps);
- slow fusion: conv1 spans 4 frames at temporal stride 2, a VALID
  convolution that gives 4 responses on a 10-frame clip; conv2 and conv3
  span 2 at stride 2, so conv3 sees all 10 frames.

Time is never padded, so a clip backbone needs its window (10 frames; 16
for late fusion's fc layers) and a longer clip gives one step per window:
early fusion's slides by 1 frame, slow fusion's by 8 (2·2·2), and late
fusion pairs each frame with the one 15 later.

Our choices where the paper says nothing, AlexNet's (Krizhevsky et al.
2012), whose network the paper's is modelled on: ReLU after every
convolution, before N; no padding for conv1, (f - 1)/2 for the others;
pools that drop a last odd row ('valid'). A 170 px frame then gives conv5
13 x 13 and pool5 6 x 6 x 256 = 9216 values, AlexNet's fc6 input; frames
need at least `MIN_IMAGE_SIZE` pixels. Endpoints are named as AlexNet's
(`conv1` ... `conv5`, `pool5`, `fc6`, `fc7`), the convolutions' pre-ReLU.
"""

import keras

from avlad_tf.layers import local_response_norm
from avlad_tf.layers import regularizers
from avlad_tf.models import frames
from avlad_tf.models.backbones import clip

# (layer, filters d, size f, stride s, then N): the single-frame network's
# convolutions (Sec. 3.1); P follows conv1's N, conv2's N and conv5.
_CONVS = (
    ("conv1", 96, 11, 3, True),
    ("conv2", 256, 5, 1, True),
    ("conv3", 384, 3, 1, False),
    ("conv4", 384, 3, 1, False),
    ("conv5", 256, 3, 1, False),
)
_POOLS = {"conv1": "pool1", "conv2": "pool2", "conv5": "pool5"}
# The smallest frame that leaves pool5 a pixel: conv1 (11 at stride 3) must
# give 8, halved three times.
MIN_IMAGE_SIZE = 32
FC_UNITS = 4096
ENDPOINTS = ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5")
ENDPOINTS += ("pool5",) + clip.FC_ENDPOINTS
# Each variant's temporal (extent, stride) by layer; 2-D (1, 1) elsewhere.
TIME = {
    "single_frame": {},
    "early_fusion": {"conv1": (10, 1)},
    "late_fusion": {},
    "slow_fusion": {"conv1": (4, 2), "conv2": (2, 2), "conv3": (2, 2)},
}
LATE_FUSION_DISTANCE = 15
# The paper's networks, and stand-ins of 1/16 of every width for tests and
# the toy dataset.
WIDTH_DIVISORS = {**dict.fromkeys(TIME, 1), **{f"tiny_{v}": 16 for v in TIME}}


def variant_of(backbone):
    """The variant ('slow_fusion', ...) of a backbone name, tiny or not."""
    return backbone.removeprefix("tiny_")


def min_frames(variant, endpoint):
    """The frames one step of `endpoint` reads: the temporal window."""
    window, jump = 1, 1
    for name, *_ in _CONVS:
        extent, stride = TIME[variant].get(name, (1, 1))
        window, jump = window + (extent - 1) * jump, jump * stride
        if endpoint in (name, _POOLS.get(name)):
            return window
    late = variant == "late_fusion" and endpoint in clip.FC_ENDPOINTS
    return window + LATE_FUSION_DISTANCE * jump if late else window


def _convolution(x, name, filters, size, stride, *, time, weight_decay):
    """C(d, f, s), `time` its (extent, stride): padded in space only (time
    is VALID) and not for conv1 (module docstring)."""
    pad = 0 if name == "conv1" else (size - 1) // 2
    if pad:
        x = keras.layers.ZeroPadding3D(
            ((0, 0), (pad, pad), (pad, pad)), name=f"{name}_pad"
        )(x)
    extent, time_stride = time
    return keras.layers.Conv3D(
        filters,
        (extent, size, size),
        strides=(time_stride, stride, stride),
        kernel_regularizer=regularizers.weight_decay(weight_decay),
        name=name,
    )(x)


def fusion_net_layers(
    x, *, variant, endpoint, width_divisor=1, weight_decay=0.0, dropout_rate=0.5
):
    """A variant's layers on the clip tensor `x` `[B, T, S, S, C]`, up to
    `endpoint`: `[B, T', h, w, D]`, T' the windows of `min_frames` frames.

    Raises:
        ValueError: an unknown variant or endpoint.
    """
    if variant not in TIME or endpoint not in ENDPOINTS:
        raise ValueError(
            f"Unknown fusion network {variant!r} or endpoint {endpoint!r}; "
            f"expected one of {list(TIME)} and of {list(ENDPOINTS)}."
        )
    if x.shape[2] is not None and x.shape[2] < MIN_IMAGE_SIZE:
        raise ValueError(
            f"Karpathy et al.'s {variant} network needs frames of at least "
            f"{MIN_IMAGE_SIZE} px (build_model.image_size); received {x.shape[2]}."
        )
    for name, filters, size, stride, normalised in _CONVS:
        x = _convolution(
            x,
            name,
            max(1, filters // width_divisor),
            size,
            stride,
            time=TIME[variant].get(name, (1, 1)),
            weight_decay=weight_decay,
        )  # (B, T', h, w, d)
        if name == endpoint:
            return x  # pre-ReLU
        x = keras.layers.ReLU(name=name.replace("conv", "relu"))(x)
        if normalised:
            x = local_response_norm.LocalResponseNormalization(
                name=name.replace("conv", "norm")
            )(x)
        if name in _POOLS:
            x = keras.layers.MaxPooling3D((1, 2, 2), name=_POOLS[name])(x)
            if _POOLS[name] == endpoint:
                return x
    if variant == "late_fusion":
        # fc6 reads the two towers' pool5 maps, frames t and t + 15.
        pairs = frames.FramePairs(LATE_FUSION_DISTANCE, name="fc6_pairs")
        x = pairs(x)  # (B, T - 15, h, w, 2d)
    return clip.fully_connected(
        x,
        units=max(1, FC_UNITS // width_divisor),
        endpoint=endpoint,
        weight_decay=weight_decay,
        dropout_rate=dropout_rate,
    )  # (B, T', 1, 1, 4096)


def build_fusion_net(
    *,
    variant="slow_fusion",
    input_channels=3,
    image_size=170,
    endpoint="fc7",
    width_divisor=1,
    weight_decay=0.0,
    dropout_rate=0.5,
    name=None,
):
    """A variant from `[B, T, S, S, C]` clips to `endpoint` (`ENDPOINTS`),
    `[B, T', h, w, D]`. `width_divisor` 16 is the tiny stand-in."""
    inputs = keras.Input((None, image_size, image_size, input_channels), name="clip")
    x = fusion_net_layers(
        inputs,
        variant=variant,
        endpoint=endpoint,
        width_divisor=width_divisor,
        weight_decay=weight_decay,
        dropout_rate=dropout_rate,
    )
    return keras.Model(inputs, x, name=name or variant)


def build_fusion_net_backbone(
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
    """A fusion network as ActionVLAD's backbone: `'conv5'` for the
    poolings, `'fc7'` for its own classifier through the two-stream pooling.

    The single-frame network maps frames `[N, S, S, C]` to `[N, h, w, D]`
    (a flow stack's 2·L channels in its first layer, as VGG16's); the
    others read whole videos `[B, T, S, S, C]` (`clip.clip_backbone`: flow
    stacks unfold into fields) to `[B, T', h, w, D]`.

    Args:
        backbone: a `TIME` variant, or it prefixed `tiny_` (1/16 widths).
        weights: None or a file of this backbone's `save_weights`.
        Others: as `clip.clip_backbone` and `fusion_net_layers`.
    """
    variant = variant_of(backbone)
    family = variant.replace("_", " ")
    settings = dict(
        variant=variant,
        endpoint=endpoint,
        width_divisor=WIDTH_DIVISORS[backbone],
        weight_decay=weight_decay,
        dropout_rate=fc_dropout_rate,
    )
    if variant != "single_frame":
        return clip.clip_backbone(
            lambda x: fusion_net_layers(x, **settings),
            family=family,
            input_channels=input_channels,
            image_size=image_size,
            min_steps=min_frames(variant, endpoint),
            weights=weights,
            name=name,
        )
    inputs = keras.Input((image_size, image_size, input_channels), name="frames")
    x = keras.layers.Reshape((1,) + tuple(inputs.shape[1:]), name="as_clip")(inputs)
    x = fusion_net_layers(x, **settings)  # (N, 1, h, w, D)
    x = keras.layers.Reshape(tuple(x.shape[2:]), name="as_frames")(x)  # (N, h, w, D)
    return clip.load_own_weights(
        keras.Model(inputs, x, name=name), weights, family=family
    )
