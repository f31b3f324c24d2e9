"""The poolings' builders and their own settings (`aggregators.AGGREGATORS`
names each one's row).

A builder takes `[B, T, h, w, D]` features and keyword settings
(`name, num_clusters, alpha, fc_dropout_rate, weight_decay`, plus its
options configurable's) and returns the descriptor `[B, D']`; it reads the
settings it needs and ignores the others. An options configurable
(`recurrent_pooling`, `ghostvlad_pooling`, `nextvlad_pooling`,
`conv_pooling_fc`) holds the settings of one pooling, never more
`build_model` arguments.
"""

import keras

from avlad_tf import settings
from avlad_tf.layers import conv_pooling
from avlad_tf.layers import frame_lstm
from avlad_tf.layers import ghostvlad
from avlad_tf.layers import netrvlad
from avlad_tf.layers import netvlad
from avlad_tf.layers import nextvlad
from avlad_tf.layers import pooling as pooling_layers
from avlad_tf.layers import res_inception
from avlad_tf.layers import video_lstm
from avlad_tf.models import backbones


@settings.configurable(setting=("per_step_loss", "frame_pooling"))
def recurrent_pooling(*, per_step_loss=None, frame_pooling="mean"):
    """Settings of the recurrent poolings, Ng et al.'s `'lstm'` and
    `'videolstm'` (single streams, late fusion and motion attention).

    Args:
        per_step_loss: the papers' loss at every time step: `'softmax'` or
            `'sigmoid'` (match `train_stream.loss`, which training checks),
            applied through `layers.TimeAveragedLogits`; None trains the loss
            of the time-averaged logits. The logits are the same either way.
        frame_pooling: `'lstm'`'s frame vector, the map's spatial `'mean'`
            or `'max'` (`layers.FrameLSTM`).
    """
    return {
        "per_step_loss": per_step_loss,
        "frame_pooling": frame_pooling,
    }


def build_netvlad(features, *, name, num_clusters, alpha, **_):
    """ActionVLAD (Sec. 3): NetVLAD over every frame and position of the
    pre-ReLU map (Sec. 5.2)."""
    descriptor, _ = netvlad.NetVLAD(num_clusters=num_clusters, alpha=alpha, name=name)(
        features, return_assignments=True
    )
    return descriptor  # (B, K·D)


def build_netrvlad(features, *, name, num_clusters, alpha, **_):
    """NetRVLAD (Miech et al. 2017, LOUPE, eq. 4): NetVLAD's soft assignment
    with no residual, V_k = sum_i a_k(x_i) x_i, then NetVLAD's norms; its
    assignment starts from k-means centres as NetVLAD's does."""
    descriptor, _ = netrvlad.NetRVLAD(
        num_clusters=num_clusters, alpha=alpha, name=name
    )(features, return_assignments=True)
    return descriptor  # (B, K·D)


@settings.configurable(setting=("num_ghost_clusters",))
def ghostvlad_pooling(*, num_ghost_clusters=1):
    """Settings of `'ghostvlad'`: G ghost clusters, which take assignment
    weight and are left out of the descriptor."""
    return {"num_ghost_clusters": num_ghost_clusters}


def build_ghostvlad(features, *, name, num_clusters, alpha, num_ghost_clusters, **_):
    """GhostVLAD (Zhong et al., ACCV 2018): NetVLAD over K + G clusters whose
    G ghost rows are dropped before normalisation, so frames and positions
    nearest a ghost barely count; k-means centres set the K real ones."""
    descriptor, _ = ghostvlad.GhostVLAD(
        num_clusters=num_clusters,
        num_ghost_clusters=num_ghost_clusters,
        alpha=alpha,
        name=name,
    )(features, return_assignments=True)
    return descriptor  # (B, K·D)


@settings.configurable(setting=("expansion", "groups"))
def nextvlad_pooling(*, expansion=2, groups=8):
    """Settings of `'nextvlad'`: the expansion λ and the G groups; the
    descriptor is K·λD/G wide, λ/G of NetVLAD's K·D."""
    return {"expansion": expansion, "groups": groups}


def build_nextvlad(
    features, *, name, num_clusters, weight_decay, expansion, groups, **_
):
    """NeXtVLAD (Lin et al., 2018): each descriptor expanded λ times and
    split into G groups with their own attention, residuals to K centres of
    λD/G; without the paper's BatchNorm (`layers/nextvlad.py`). Its centres
    start at zero, so it trains from stage 1."""
    return nextvlad.NeXtVLAD(
        num_clusters=num_clusters,
        expansion=expansion,
        groups=groups,
        weight_decay=weight_decay,
        name=name,
    )(features)  # (B, K·λD/G)


def build_avg(features, *, name, **_):
    """The spatio-temporal mean of the pre-ReLU map (Sec. 5.2)."""
    return pooling_layers.SpatioTemporalAveragePooling(name=name)(features)  # (B, D)


def build_max(features, *, name, **_):
    """The spatio-temporal max of the pre-ReLU map (Sec. 5.2)."""
    return pooling_layers.SpatioTemporalMaxPooling(name=name)(features)  # (B, D)


def build_two_stream(features, *, name, fc_dropout_rate, **_):
    """The release's `avg` pooling, the two-stream baseline: the mean of
    per-frame classifier scores. The release's fc8 reads post-ReLU fc7 after
    dropout7 (keep 0.2 at training); the classifier is linear, so the mean
    of per-frame scores equals the classifier applied to the mean of the
    per-frame (post-ReLU, dropped-out) features, which is what this
    computes. On a conv endpoint the per-frame feature is the spatial mean
    (h = w = 1 for fc7, where this is exactly the release's rule)."""
    features = keras.layers.ReLU(name="two_stream_relu")(features)
    features = keras.layers.Dropout(fc_dropout_rate, name="two_stream_dropout")(
        features
    )
    return build_avg(features, name=name)


# `conv_pooling_fc.init` values: the image network's fc6 / fc7, or random.
IMAGE_NETWORK = "image_network"
FC_INIT = (IMAGE_NETWORK, "random")


@settings.configurable(setting=("dropout_rate", "init"))
def conv_pooling_fc(*, dropout_rate=None, init=IMAGE_NETWORK):
    """Settings of `'conv_pooling'`'s fully connected layers.

    Args:
        dropout_rate: their dropout; None for `build_model.fc_dropout_rate`
            (the backbone fc6's).
        init: `'image_network'` starts them from the backbone weights' fc6 /
            fc7 as Ng et al. do (VGG16 weights with the top; the tiny and
            Inception backbones have none, so theirs start random), or
            `'random'`.
    """
    if init not in FC_INIT:
        raise ValueError(
            f"conv_pooling_fc.init must be one of {FC_INIT}. Received: {init!r}"
        )
    return {"fc_dropout": dropout_rate, "fc_init": init}


def build_conv_pooling(
    features,
    *,
    name,
    fc_dropout_rate,
    weight_decay,
    fc_dropout,
    fc_init,
    image_network,
    **_,
):
    """Ng et al.'s (CVPR 2015) conv pooling: the max over time of the map,
    then FC layers (`ConvPooling`) as wide as VGG16's 4096-wide fc6 / fc7,
    8·D for conv5_3 (D = 512); the tiny test backbone gets small ones. Their
    dropout is `conv_pooling_fc.dropout_rate`, by default `fc_dropout_rate`
    as for the backbone's fc6, and their kernels get the backbone's and the
    classifier's `weight_decay`. With `conv_pooling_fc.init =
    'image_network'` they start from the fc6 / fc7 of `image_network`
    (`{'backbone', 'weights'}`), which needs conv5_3 at 224 px: fc6 reads
    the 7x7x512 pool5 map."""
    width = min(conv_pooling.VGG16_FC_UNITS[0], 8 * features.shape[-1])
    layer = conv_pooling.ConvPooling(
        units=(width, width),
        dropout_rate=fc_dropout_rate if fc_dropout is None else fc_dropout,
        weight_decay=weight_decay,
        name=name,
    )
    descriptor = layer(features)  # (B, width)
    if fc_init == IMAGE_NETWORK and image_network is not None:
        top = backbones.image_network_fc(
            **image_network, needed_by="conv_pooling_fc.init='image_network'"
        )
        if top is not None:
            try:
                layer.set_fully_connected_weights(top)
            except ValueError as error:
                raise ValueError(
                    f"conv_pooling_fc.init='image_network': {error} The image "
                    "network's fc6 reads VGG16's 7x7x512 pool5 map: use the "
                    "conv5_3 endpoint at image_size 224 on one stream, or bind "
                    "conv_pooling_fc.init = 'random'."
                ) from error
    return descriptor


def frame_lstm_layer(features, *, name, weight_decay):
    """`'lstm'`'s `FrameLSTM` for `[B, T, h, w, D]` features: the paper's 512
    cells, at most D, and `recurrent_pooling.frame_pooling`."""
    return frame_lstm.FrameLSTM(
        units=min(frame_lstm.PAPER_UNITS, features.shape[-1]),
        weight_decay=weight_decay,
        frame_pooling=recurrent_pooling()["frame_pooling"],
        name=name,
    )


def build_lstm(features, *, name, weight_decay, **_):
    """Ng et al.'s LSTM: stacked LSTMs (the paper's 512 cells, at most D)
    over per-frame spatial means, whose per-step outputs are averaged over
    time (`FrameLSTM`), so the logits are the per-step logits averaged.
    Trained as built here, the loss is the cross-entropy of those averaged
    logits; the paper's loss at every step is `stream.per_step_logits`."""
    return frame_lstm_layer(features, name=name, weight_decay=weight_decay)(
        features
    )  # (B, units)


def build_videolstm(features, *, name, weight_decay, **_):
    """Li et al.'s (CVIU 2018) convolutional attention LSTM with attention
    from the frame itself; its motion-based attention needs both streams
    (`fusion='motion_attention'`)."""
    return video_lstm_outputs(features, weight_decay=weight_decay, name=name)[0]


def build_res_inception(features, *, name, weight_decay, **_):
    """STFN's single-stream baseline: each frame's rectified spatial mean, a
    temporal res-inception module, then the mean over time
    (`layers.ResInceptionPooling`); its fusion of two streams is
    `fusion='stfn'`."""
    return res_inception.ResInceptionPooling(weight_decay=weight_decay, name=name)(
        features
    )  # (B, D)


def video_lstm_outputs(
    features, *, weight_decay, name, motion=None, return_sequences=False
):
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
        name=name,
    )
    return layer(
        features,
        attention_inputs=motion,
        return_sequences=return_sequences,
        return_attention=True,
    )
