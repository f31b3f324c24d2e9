"""One stream of ActionVLAD: backbone per frame -> pooling -> classifier.

Paper Sec. 3 / docs/RELEASE.md Sec. 5. The pieces here are shared by the
single-stream model and the fusion models (`fusion.py`).
"""

import keras

from avlad_tf.layers import conv_pooling
from avlad_tf.layers import frame_lstm
from avlad_tf.layers import netvlad
from avlad_tf.layers import pixels
from avlad_tf.layers import pooling as pooling_layers
from avlad_tf.layers import regularizers
from avlad_tf.layers import res_inception
from avlad_tf.layers import video_lstm
from avlad_tf.models import backbones
from avlad_tf.models import frames

MODALITY_CHANNELS_RGB = 3
# Name of the pooling layer for each `pooling` choice (docs/CONTRACTS.md).
POOLING_LAYER_NAMES = {
    "netvlad": "netvlad",
    "avg": "avg_pool",
    "max": "max_pool",
    "two_stream": "two_stream_pool",
    "conv_pooling": "conv_pool",
    "lstm": "lstm_pool",
    "videolstm": "videolstm_pool",
    "res_inception": "res_inception_pool",
}
# Aggregators whose weights start random (no k-means, no ImageNet): they
# train from stage 1 on (`trainable.set_stage`).
LEARNED_FROM_SCRATCH = ("conv_pooling", "lstm", "videolstm", "res_inception")
# Aggregators with an output per time step, which can take a loss at every
# step (`build_model.lstm_per_step_loss`).
RECURRENT_POOLINGS = ("lstm", "videolstm")


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
):
    """Builds the `modality` input and its per-frame backbone features.

    Returns:
        `(video_input, features)`: a `keras.Input` named `modality` of shape
        `[B, T, S, S, C]` and the backbone endpoint `[B, T, h, w, D]`. The
        backbone is a nested model named `<modality>_backbone`.
    """
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
    folded = frames.FoldFrames(name=f"{modality}_fold_frames")(video)
    if pixels.INPUT_RULES[backbone] == "inception":
        # The weights' own input rule, from the pipeline's release VGG input.
        folded = pixels.InceptionInput(modality, name=f"{modality}_inception_input")(
            folded
        )
    per_frame = net(folded)  # (B·T, h, w, D)
    features = frames.UnfoldFrames(name=f"{modality}_unfold_frames")(
        per_frame, video
    )  # (B, T, h, w, D)
    return video, features


def pool(features, *, pooling, num_clusters, alpha, fc_dropout_rate, weight_decay=0.0):
    """Pools `[B, T, h, w, D]` features into one descriptor `[B, D']`.

    `'netvlad'`, `'avg'` and `'max'` read the pre-ReLU map (Sec. 5.2).
    `'two_stream'` is the release's `avg` pooling, the two-stream baseline:
    the mean of per-frame classifier scores. The release's fc8 reads
    post-ReLU fc7 after dropout; the classifier is linear, so the mean of
    per-frame scores equals the classifier applied to the mean of the
    per-frame (post-ReLU, dropped-out) features, which is what this computes.
    On a conv endpoint the per-frame feature is the spatial mean (h = w = 1
    for fc7, where this is exactly the release's rule).

    `'conv_pooling'` and `'lstm'` are Ng et al.'s (CVPR 2015) aggregators:
    the max over time of the map, then FC layers (`ConvPooling`), or stacked
    LSTMs over per-frame spatial means whose per-step outputs are averaged
    over time (`FrameLSTM`), so the logits are the per-step logits averaged.
    Trained as built here, the loss is the cross-entropy of those averaged
    logits; the paper's loss at every step needs the classifier per step
    and `frame_lstm.TimeAveragedLogits`. Their widths follow the input depth
    D: VGG16's 4096-wide fc6 / fc7 are 8·D for conv5_3 (D = 512), and the
    paper's 512 LSTM cells; the tiny test backbone (D = 16) gets small ones.
    The FC layers' dropout is `fc_dropout_rate`, as for the backbone's fc6;
    their kernels (and the LSTMs' kernels) get the backbone's and the
    classifier's `weight_decay` (NetVLAD's weights have none, as in the
    release).

    `'videolstm'` is Li et al.'s (CVIU 2018) convolutional attention LSTM
    with attention from the frame itself (`video_lstm_outputs`); its
    motion-based attention needs both streams
    (`fusion.build_two_stream_model` with `fusion='motion_attention'`).

    `'res_inception'` is STFN's single-stream baseline: each frame's
    rectified spatial mean, a temporal res-inception module, then the mean
    over time (`layers.ResInceptionPooling`); its fusion of two streams is
    `fusion.build_two_stream_model` with `fusion='stfn'`.
    """
    name = POOLING_LAYER_NAMES.get(pooling)
    if name is None:
        raise ValueError(
            f"Unknown pooling {pooling!r}; expected one of "
            f"{sorted(POOLING_LAYER_NAMES)}."
        )
    if pooling == "netvlad":
        descriptor, _ = netvlad.NetVLAD(
            num_clusters=num_clusters, alpha=alpha, name=name
        )(features, return_assignments=True)
        return descriptor  # (B, K·D)
    if pooling == "max":
        return pooling_layers.SpatioTemporalMaxPooling(name=name)(features)
    if pooling == "conv_pooling":
        width = min(conv_pooling.VGG16_FC_UNITS[0], 8 * features.shape[-1])
        return conv_pooling.ConvPooling(
            units=(width, width),
            dropout_rate=fc_dropout_rate,
            weight_decay=weight_decay,
            name=name,
        )(features)  # (B, width)
    if pooling == "lstm":
        units = min(frame_lstm.PAPER_UNITS, features.shape[-1])
        return frame_lstm.FrameLSTM(units=units, weight_decay=weight_decay, name=name)(
            features
        )  # (B, units)
    if pooling == "videolstm":
        return video_lstm_outputs(features, weight_decay=weight_decay)[0]
    if pooling == "res_inception":
        return res_inception.ResInceptionPooling(weight_decay=weight_decay, name=name)(
            features
        )  # (B, D)
    if pooling == "two_stream":
        features = keras.layers.ReLU(name="two_stream_relu")(features)
        # The release's dropout7 (keep 0.2 at training).
        features = keras.layers.Dropout(fc_dropout_rate, name="two_stream_dropout")(
            features
        )
    return pooling_layers.SpatioTemporalAveragePooling(name=name)(features)


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


def video_lstm_outputs(features, *, weight_decay, motion=None, return_sequences=False):
    """VideoLSTM's `ConvALSTM` on `[B, T, h, w, D]` maps; with `motion` (the
    flow stream's maps `[B, T, h, w, D']`) its attention is motion-based.

    Widths follow the input depth D: the paper's 512 hidden channels and
    1024-wide FC layer are U = min(512, D) and 2·U, exactly 512 / 1024 on
    VGG16's conv5_3; the tiny test backbone (D = 16) gets 16 / 32, so toy
    runs stay small. Dropout is the paper's 0.7.

    Returns:
        The layer's outputs: the descriptor `[B, 2U]`, the per-step FC
        outputs `[B, T, 2U]` with `return_sequences`, then the attention
        maps `[B, T, h', w']` (`inspection.endpoints_model` reads them).
    """
    units = min(video_lstm.PAPER_UNITS, features.shape[-1])
    layer = video_lstm.ConvALSTM(
        units=units,
        dense_units=min(video_lstm.PAPER_DENSE_UNITS, 2 * units),
        attention="appearance" if motion is None else "motion",
        weight_decay=weight_decay,
        name=POOLING_LAYER_NAMES["videolstm"],
    )
    return layer(
        features,
        attention_inputs=motion,
        return_sequences=return_sequences,
        return_attention=True,
    )


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
    if pooling == "lstm":
        units = min(frame_lstm.PAPER_UNITS, features.shape[-1])
        _, steps = frame_lstm.FrameLSTM(
            units=units, weight_decay=weight_decay, name=POOLING_LAYER_NAMES["lstm"]
        )(features, return_sequences=True)  # (B, T, units)
    else:
        _, steps, _ = video_lstm_outputs(
            features, weight_decay=weight_decay, motion=motion, return_sequences=True
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
    )
    logits = classify(
        descriptor,
        num_classes=num_classes,
        dropout_rate=dropout_rate,
        weight_decay=weight_decay,
    )
    return keras.Model({modality: video}, logits, name=name)
