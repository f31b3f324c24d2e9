"""One stream of ActionVLAD: backbone per frame -> pooling -> classifier.

Paper Sec. 3 / docs/RELEASE.md Sec. 5. The pieces here are shared by the
single-stream model and the fusion models (`fusion.py`).
"""

import keras

from avlad_tf.layers import frame_lstm
from avlad_tf.layers import pixels
from avlad_tf.layers import regularizers
from avlad_tf.models import aggregators
from avlad_tf.models import backbones
from avlad_tf.models import frames
from avlad_tf.models import poolings

MODALITY_CHANNELS_RGB = 3


def input_channels(modality, flow_stack):
    """3 for RGB; 2·flow_stack interleaved x/y channels for flow."""
    if modality == "rgb":
        return MODALITY_CHANNELS_RGB
    if modality == "flow":
        return 2 * flow_stack
    raise ValueError(f"Unknown modality {modality!r}; expected 'rgb' or 'flow'.")


def video_features(
    modality,
    *,
    backbone,
    endpoint,
    image_size,
    flow_stack,
    weights,
    weight_decay,
    fc_dropout_rate,
    clip_length=None,
):
    """Builds the `modality` input and its per-frame backbone features.

    `clip_length`: with a clip backbone, T: the input is N clips of T
    frames (`sampling='clips'`), each through the backbone alone and their
    maps concatenated over time; None reads the whole input as one clip.

    Returns:
        `(video_input, features)`: a `keras.Input` named `modality` of shape
        `[B, T, S, S, C]` and the backbone endpoint `[B, T, h, w, D]` (a clip
        backbone's own time axis T', `backbones.CLIP_BACKBONES`). The
        backbone is a nested model named `<modality>_backbone`.
    """
    if clip_length is not None and backbone not in backbones.CLIP_BACKBONES:
        raise ValueError(
            f"build_model.clip_length={clip_length} is for clip backbones "
            f"({backbones.CLIP_BACKBONES}); {backbone!r} reads frames: unbind it."
        )
    channels = input_channels(modality, flow_stack)
    video = keras.Input((None, image_size, image_size, channels), name=modality)
    net = backbones.build_backbone(
        backbone,
        input_channels=channels,
        image_size=image_size,
        endpoint=endpoint,
        weights=weights,
        weight_decay=weight_decay,
        fc_dropout_rate=fc_dropout_rate,
        name=f"{modality}_backbone",
    )
    if backbone in backbones.CLIP_BACKBONES:
        # A clip backbone reads a whole clip: no folding into frames.
        if clip_length is None:
            return video, net(_to_input_rule(video, modality, backbone))
        clips = frames.FoldClips(clip_length, name=f"{modality}_fold_clips")(
            video
        )  # (B·N, T, S, S, C)
        maps = net(_to_input_rule(clips, modality, backbone))  # (B·N, T', h, w, D)
        features = frames.UnfoldClips(name=f"{modality}_unfold_clips")(
            maps, video
        )  # (B, N·T', h, w, D)
        return video, features
    folded = frames.FoldFrames(name=f"{modality}_fold_frames")(video)
    per_frame = net(_to_input_rule(folded, modality, backbone))  # (B·T, h, w, D)
    features = frames.UnfoldFrames(name=f"{modality}_unfold_frames")(
        per_frame, video
    )  # (B, T, h, w, D)
    return video, features


def _to_input_rule(x, modality, backbone):
    """`x` (the pipeline's release VGG input) in the input rule the
    backbone's weights were trained on (`pixels.INPUT_RULES`)."""
    if pixels.INPUT_RULES[backbone] == "inception":
        return pixels.InceptionInput(modality, name=f"{modality}_inception_input")(x)
    return x


def pool(
    features,
    *,
    pooling,
    num_clusters,
    alpha,
    fc_dropout_rate,
    weight_decay=0.0,
    image_network=None,
):
    """Pools `[B, T, h, w, D]` features into one descriptor `[B, D']` with
    the aggregator `pooling` names (`aggregators.AGGREGATORS`; each
    builder's docstring says what it computes). `image_network`: the
    backbone and weights the features come from (`image_network`), for an
    aggregator that starts from the image network's fully connected
    layers."""
    aggregator = aggregators.get(pooling)
    options = aggregator.options() if aggregator.options else {}
    descriptor = aggregator.build(
        features,
        name=aggregator.layer_name,
        num_clusters=num_clusters,
        alpha=alpha,
        fc_dropout_rate=fc_dropout_rate,
        weight_decay=weight_decay,
        image_network=image_network,
        **options,
    )
    return aggregators.gated(descriptor, weight_decay=weight_decay)


def image_network(backbone_settings):
    """The backbone and its weights, of `video_features`' settings."""
    return {k: backbone_settings[k] for k in ("backbone", "weights")}


def classify(descriptor, *, num_classes, dropout_rate, weight_decay):
    """Pooled dropout, then the linear classifier `logits` (Sec. 5.3)."""
    x = keras.layers.Dropout(dropout_rate, name="pooled_dropout")(descriptor)
    return keras.layers.Dense(
        num_classes,
        name="logits",
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.01),
        bias_initializer="zeros",
        kernel_regularizer=regularizers.weight_decay(weight_decay),
        dtype="float32",
    )(x)  # (B, C)


def per_step_logits(
    features,
    *,
    pooling,
    loss,
    num_classes,
    dropout_rate,
    weight_decay,
    motion=None,
):
    """A recurrent aggregator trained with a loss at every step, as Ng et
    al.'s LSTM and VideoLSTM are: the classifier applied to each step's
    output, then `TimeAveragedLogits`, whose output (the same logits as the
    time-averaged output's) is the model's and whose added loss makes the
    training loss the per-step loss (`layers/frame_lstm.py`). `motion`: the
    flow maps of VideoLSTM's motion-based attention."""
    name = aggregators.get(pooling).layer_name
    if pooling == aggregators.LSTM:
        _, steps = poolings.frame_lstm_layer(
            features, name=name, weight_decay=weight_decay
        )(features, return_sequences=True)  # (B, T, units)
    else:
        _, steps, _ = poolings.video_lstm_outputs(
            features,
            weight_decay=weight_decay,
            name=name,
            motion=motion,
            return_sequences=True,
        )  # (B, T, 2U)
    per_step = classify(
        steps,
        num_classes=num_classes,
        dropout_rate=dropout_rate,
        weight_decay=weight_decay,
    )  # (B, T, C)
    return frame_lstm.TimeAveragedLogits(
        per_step_loss=loss, name="time_averaged_logits"
    )(per_step)  # (B, C)


def build_stream_model(
    *,
    num_classes,
    modality,
    pooling,
    num_clusters,
    alpha,
    dropout_rate,
    name,
    backbone_settings,
    per_step_loss=None,
):
    """A single-stream ActionVLAD (or baseline) model; see `build_model`.
    `backbone_settings` go to `video_features`, as in
    `fusion.build_two_stream_model`."""
    video, features = video_features(modality, **backbone_settings)
    weight_decay = backbone_settings["weight_decay"]
    fc_dropout_rate = backbone_settings["fc_dropout_rate"]
    if per_step_loss is not None:
        logits = per_step_logits(
            features,
            pooling=pooling,
            loss=per_step_loss,
            num_classes=num_classes,
            dropout_rate=dropout_rate,
            weight_decay=weight_decay,
        )
        return keras.Model({modality: video}, logits, name=name)
    descriptor = pool(
        features,
        pooling=pooling,
        num_clusters=num_clusters,
        alpha=alpha,
        fc_dropout_rate=fc_dropout_rate,
        weight_decay=weight_decay,
        image_network=image_network(backbone_settings),
    )
    logits = classify(
        descriptor,
        num_classes=num_classes,
        dropout_rate=dropout_rate,
        weight_decay=weight_decay,
    )
    return keras.Model({modality: video}, logits, name=name)
