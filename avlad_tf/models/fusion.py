"""Two-stream fusion models (paper Sec. 3.3; docs/RELEASE.md Sec. 5.4).

- `late`: two separately trained stream models; the fused score is a weighted
  sum of their raw logits, 1/3 RGB + 2/3 flow by default (the release's 1:2,
  Sec. 9.2 / 12.17). The paper's final model.
- `concat`: RGB and flow conv maps concatenated per location on the channel
  axis (2D channels), one NetVLAD (release `concat-last-conv-and-netvlad`).
- `early`: one NetVLAD over the union of RGB and flow descriptors: the maps
  are concatenated along the height axis, so both modalities' descriptors
  fall in one bag and share one vocabulary (release `one-bag-and-netvlad`).
- `motion_attention`: VideoLSTM's motion-based attention (Li et al., CVIU
  2018): the flow maps choose where the ConvALSTM reading the RGB maps
  attends (`build_motion_attention_model`).
- `stfn`: the STFN poster's spatio-temporal fusion networks: temporal
  res-inception modules over both streams' per-segment features, fused in
  blocks (`build_stfn_model`, `layers/stfn.py`).

The release applies pooled dropout (keep 0.5) to its fusion heads only
(Sec. 5.4), so `dropout_rate` defaults to 0.5 here (concat, early, stfn)
and to 0 in single-stream models.
"""

import keras
from keras import ops

from avlad_tf.layers import stfn
from avlad_tf.models import stream

# The release's in-graph late fusion: 0.333 RGB + 0.667 flow.
DEFAULT_LATE_WEIGHTS = (1.0 / 3.0, 2.0 / 3.0)
FUSION_DROPOUT_RATE = 0.5
# Axis of [B, T, h, w, D] along which each fusion concatenates the streams.
_CONCAT_AXIS = {"concat": -1, "early": 2}


def build_late_fusion(
    rgb_model, flow_model, *, weights=DEFAULT_LATE_WEIGHTS, name="late_fusion"
):
    """Combines two stream models; logits = w_rgb·rgb + w_flow·flow.

    Args:
        rgb_model: a stream model with input `rgb` (from `build_model`).
        flow_model: a stream model with input `flow`.
        weights: `(w_rgb, w_flow)` applied to raw logits.
        name: model name.

    Returns:
        A `keras.Model` with inputs `rgb` and `flow` and fused logits
        `[B, C]`; the stream models are nested, renamed in place to
        `rgb_stream` and `flow_stream`.

    Raises:
        ValueError: on missing inputs or mismatched class counts.
    """
    if len(weights) != 2:
        raise ValueError(f"weights must be (w_rgb, w_flow); got {weights!r}.")
    for model, modality in ((rgb_model, "rgb"), (flow_model, "flow")):
        if modality not in model.input:
            raise ValueError(
                f"The {modality} model must have an input named "
                f"{modality!r}; it has {sorted(model.input)}."
            )
    if rgb_model.output.shape[-1] != flow_model.output.shape[-1]:
        raise ValueError(
            f"The streams predict different numbers of classes: "
            f"{rgb_model.output.shape[-1]} (rgb) vs "
            f"{flow_model.output.shape[-1]} (flow)."
        )
    inputs = {
        modality: keras.Input(model.input[modality].shape[1:], name=modality)
        for model, modality in ((rgb_model, "rgb"), (flow_model, "flow"))
    }
    rgb_model.name = "rgb_stream"
    flow_model.name = "flow_stream"
    rgb_logits = rgb_model({"rgb": inputs["rgb"]})
    flow_logits = flow_model({"flow": inputs["flow"]})
    w_rgb, w_flow = (float(w) for w in weights)
    fused = ops.add(
        ops.multiply(rgb_logits, w_rgb), ops.multiply(flow_logits, w_flow)
    )  # (B, C)
    return keras.Model(inputs, fused, name=name)


def two_stream_features(**backbone_settings):
    """Both streams' inputs and backbone maps, each a dict keyed `rgb` and
    `flow`; the maps are `[B, T, h, w, D]` (`stream.video_features`, which
    takes `backbone_settings`)."""
    inputs, maps = {}, {}
    for modality in ("rgb", "flow"):
        inputs[modality], maps[modality] = stream.video_features(
            modality, **backbone_settings
        )  # (B, T, h, w, D)
    return inputs, maps


def build_two_stream_pooling_model(
    *,
    fusion,
    num_classes,
    backbone,
    endpoint,
    pooling,
    num_clusters,
    alpha,
    image_size,
    flow_stack,
    weights,
    dropout_rate,
    fc_dropout_rate,
    weight_decay,
    name,
):
    """`concat` or `early` fusion: one pooling over both streams' maps.

    Both backbones must give maps of the same spatial size (`concat`) or the
    same depth (`early`), which holds when they are the same architecture.
    """
    if fusion not in _CONCAT_AXIS:
        raise ValueError(
            f"Unknown fusion {fusion!r} for one pooling over both streams; "
            f"expected one of {sorted(_CONCAT_AXIS)}."
        )
    inputs, maps = two_stream_features(
        backbone=backbone,
        endpoint=endpoint,
        image_size=image_size,
        flow_stack=flow_stack,
        weights=weights,
        weight_decay=weight_decay,
        fc_dropout_rate=fc_dropout_rate,
    )
    # concat: (B, T, h, w, 2D); early: (B, T, 2h, w, D), one bag of both.
    fused = keras.layers.Concatenate(
        axis=_CONCAT_AXIS[fusion], name=f"{fusion}_fusion"
    )([maps["rgb"], maps["flow"]])
    descriptor = stream.pool(
        fused,
        pooling=pooling,
        num_clusters=num_clusters,
        alpha=alpha,
        fc_dropout_rate=fc_dropout_rate,
        weight_decay=weight_decay,
    )
    logits = stream.classify(
        descriptor,
        num_classes=num_classes,
        dropout_rate=dropout_rate,
        weight_decay=weight_decay,
    )
    return keras.Model(inputs, logits, name=name)


def build_motion_attention_model(
    *,
    num_classes,
    backbone,
    endpoint,
    pooling,
    image_size,
    flow_stack,
    weights,
    dropout_rate,
    fc_dropout_rate,
    weight_decay,
    name,
    per_step_loss=None,
):
    """VideoLSTM with motion-based attention: one model reading both streams.

    The ConvALSTM reads the RGB maps; the flow maps drive its attention
    (`layers/conv_alstm_cell.py`). Both backbones must give maps of the same
    spatial size, which holds when they are the same architecture. Trained
    as one `fused` stream (`train.streams = ('fused',)`), like concat /
    early fusion; `per_step_loss` as in `stream.per_step_logits`.

    Raises:
        ValueError: unless `pooling` is `'videolstm'`.
    """
    if pooling != "videolstm":
        raise ValueError(
            "fusion='motion_attention' is VideoLSTM's motion-based attention "
            f"and needs pooling='videolstm'. Received: pooling={pooling!r}"
        )
    inputs, maps = two_stream_features(
        backbone=backbone,
        endpoint=endpoint,
        image_size=image_size,
        flow_stack=flow_stack,
        weights=weights,
        weight_decay=weight_decay,
        fc_dropout_rate=fc_dropout_rate,
    )
    head = dict(
        num_classes=num_classes, dropout_rate=dropout_rate, weight_decay=weight_decay
    )
    if per_step_loss is not None:
        logits = stream.per_step_logits(
            maps["rgb"],
            pooling=pooling,
            loss=per_step_loss,
            motion=maps["flow"],
            **head,
        )
    else:
        descriptor = stream.video_lstm_outputs(
            maps["rgb"], weight_decay=weight_decay, motion=maps["flow"]
        )[0]  # (B, 2U)
        logits = stream.classify(descriptor, **head)
    return keras.Model(inputs, logits, name=name)


def build_stfn_model(
    *,
    num_classes,
    backbone,
    endpoint,
    pooling,
    image_size,
    flow_stack,
    weights,
    dropout_rate,
    fc_dropout_rate,
    weight_decay,
    name,
    num_blocks,
    direction,
    fusion_op,
):
    """STFN: one model reading both streams, fused by temporal res-inception
    blocks (`layers.SpatioTemporalFusion`, named as `'res_inception'`'s
    pooling layer). Trained as one `fused` stream
    (`train.streams = ('fused',)`), like concat / early fusion.

    Args:
        num_blocks, direction, fusion_op: `build_model.stfn_num_blocks`,
            `stfn_direction` and `stfn_fusion_op` (`layers/stfn.py`).
        Others: as `build_model`'s.

    Raises:
        ValueError: unless `pooling` is `'res_inception'`, or on a bad STFN
            setting (naming its binding).
    """
    if pooling != "res_inception":
        raise ValueError(
            "build_model.fusion='stfn' fuses STFN's temporal res-inception "
            "modules and needs build_model.pooling='res_inception'. "
            f"Received: build_model.pooling={pooling!r}"
        )
    stfn.check_settings(
        num_blocks=num_blocks,
        direction=direction,
        fusion_op=fusion_op,
        prefix="build_model.stfn_",
    )
    inputs, maps = two_stream_features(
        backbone=backbone,
        endpoint=endpoint,
        image_size=image_size,
        flow_stack=flow_stack,
        weights=weights,
        weight_decay=weight_decay,
        fc_dropout_rate=fc_dropout_rate,
    )
    descriptor = stfn.SpatioTemporalFusion(
        num_blocks=num_blocks,
        direction=direction,
        fusion_op=fusion_op,
        weight_decay=weight_decay,
        name=stream.POOLING_LAYER_NAMES[pooling],
    )(maps["rgb"], motion_inputs=maps["flow"])  # (B, D)
    logits = stream.classify(
        descriptor,
        num_classes=num_classes,
        dropout_rate=dropout_rate,
        weight_decay=weight_decay,
    )
    return keras.Model(inputs, logits, name=name)
