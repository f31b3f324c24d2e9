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
  attends (`build_two_stream_model`).
- `stfn`: the STFN poster's spatio-temporal fusion networks: temporal
  res-inception modules over both streams' per-segment features, fused in
  blocks (`build_two_stream_model`, `layers/stfn.py`).

The release applies pooled dropout (keep 0.5) to its fusion heads only
(Sec. 5.4), so `dropout_rate` defaults to 0.5 here (concat, early, stfn)
and to 0 in single-stream models.
"""

import keras
from keras import ops

from avlad_tf import settings
from avlad_tf.layers import stfn
from avlad_tf.models import aggregators
from avlad_tf.models import poolings
from avlad_tf.models import stream

# The `build_model.fusion` names (a fusion name is written here only).
LATE = "late"
CONCAT = "concat"
EARLY = "early"
MOTION_ATTENTION = "motion_attention"
STFN = "stfn"
FUSIONS = (LATE, CONCAT, EARLY, MOTION_ATTENTION, STFN)
# The heads that pool both streams' maps as one bag.
POOLED_TOGETHER = (CONCAT, EARLY)
# The heads with the release's pooled dropout (Sec. 5.4).
DROPOUT_HEADS = (CONCAT, EARLY, STFN)

# The release's in-graph late fusion: 0.333 RGB + 0.667 flow.
DEFAULT_LATE_WEIGHTS = (1.0 / 3.0, 2.0 / 3.0)
FUSION_DROPOUT_RATE = 0.5
# Axis of [B, T, h, w, D] along which each fusion concatenates the streams.
_CONCAT_AXIS = {CONCAT: -1, EARLY: 2}


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


def build_two_stream_model(
    *,
    fusion,
    num_classes,
    pooling,
    dropout_rate,
    weight_decay,
    name,
    backbone_settings,
    **options,
):
    """One model reading both streams: `concat`, `early`, `motion_attention`
    or `stfn`, trained as one `fused` stream (`train.streams = ('fused',)`).

    Both backbones (`stream.video_features` with `backbone_settings`) must
    give maps of the same spatial size (`concat`, motion attention) or the
    same depth (`early`, STFN, which averages over space), which holds when
    they are the same architecture.

    Args:
        fusion: one of `TWO_STREAM_HEADS`.
        options: the fusion's own settings: `num_clusters`, `alpha`,
            `fc_dropout_rate`, `image_network` (concat / early); `per_step_loss` (motion
            attention, as in `stream.per_step_logits`); `num_blocks`,
            `direction`, `fusion_op` (STFN, `layers/stfn.py`).
        Others: as `action_vlad.build_model`'s.

    Raises:
        ValueError: on a pooling the fusion cannot use, or a bad STFN setting
            (naming its binding).
    """
    head_fn = TWO_STREAM_HEADS[fusion]
    _check_two_stream(fusion, pooling, options)
    inputs, maps = {}, {}
    for modality in ("rgb", "flow"):
        inputs[modality], maps[modality] = stream.video_features(
            modality, **backbone_settings
        )  # (B, T, h, w, D)
    head = dict(
        num_classes=num_classes, dropout_rate=dropout_rate, weight_decay=weight_decay
    )
    logits = head_fn(maps, fusion=fusion, pooling=pooling, head=head, **options)
    return keras.Model(inputs, logits, name=name)


def _check_two_stream(fusion, pooling, options):
    if fusion == MOTION_ATTENTION and pooling != aggregators.VIDEOLSTM:
        raise ValueError(
            "fusion='motion_attention' is VideoLSTM's motion-based attention "
            f"and needs pooling='videolstm'. Received: pooling={pooling!r}"
        )
    if fusion == STFN:
        if pooling != aggregators.RES_INCEPTION:
            raise ValueError(
                "build_model.fusion='stfn' fuses STFN's temporal res-inception "
                "modules and needs build_model.pooling='res_inception'. "
                f"Received: build_model.pooling={pooling!r}"
            )
        stfn.check_settings(**options, prefix="stfn_fusion.")


def _pooled_together(
    maps, *, fusion, pooling, head, num_clusters, alpha, fc_dropout_rate, image_network
):
    """concat / early: one pooling over both streams' maps."""
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
        weight_decay=head["weight_decay"],
        image_network=image_network,
    )
    return stream.classify(descriptor, **head)


def _motion_attention(maps, *, fusion, pooling, head, per_step_loss=None):
    """VideoLSTM's motion-based attention: the ConvALSTM reads the RGB maps,
    the flow maps drive its attention (`layers/conv_alstm_cell.py`)."""
    del fusion  # one head per fusion
    if per_step_loss is not None:
        return stream.per_step_logits(
            maps["rgb"],
            pooling=pooling,
            loss=per_step_loss,
            motion=maps["flow"],
            **head,
        )
    descriptor = poolings.video_lstm_outputs(
        maps["rgb"],
        weight_decay=head["weight_decay"],
        name=aggregators.get(pooling).layer_name,
        motion=maps["flow"],
    )[0]  # (B, 2U)
    return stream.classify(descriptor, **head)


def _stfn(maps, *, fusion, pooling, head, num_blocks, direction, fusion_op):
    """STFN: temporal res-inception modules over both streams, fused in
    blocks (`layers.SpatioTemporalFusion`, named as `'res_inception'`'s
    pooling layer)."""
    del fusion
    descriptor = stfn.SpatioTemporalFusion(
        num_blocks=num_blocks,
        direction=direction,
        fusion_op=fusion_op,
        weight_decay=head["weight_decay"],
        name=aggregators.get(pooling).layer_name,
    )(maps["rgb"], motion_inputs=maps["flow"])  # (B, D)
    return stream.classify(descriptor, **head)


@settings.configurable(setting=("num_blocks", "direction", "fusion_op"))
def stfn_fusion(*, num_blocks=stfn.PAPER_NUM_BLOCKS, direction="bi", fusion_op="avg"):
    """Settings of the `'stfn'` head (`layers/stfn.py`).

    Args:
        num_blocks: fusion blocks: 0 is the poster's feature fusion, 2 its
            best.
        direction: `'bi'` (the poster's best) or `'uni'` (motion into
            appearance).
        fusion_op: `'avg'` (the poster's best), `'max'` or `'multiply'`.
    """
    return {"num_blocks": num_blocks, "direction": direction, "fusion_op": fusion_op}


# The configurable holding each head's own settings, as `Aggregator.options`.
HEAD_OPTIONS = {STFN: stfn_fusion}

# The head of each model that reads both streams: (maps, ...) -> logits.
TWO_STREAM_HEADS = {
    CONCAT: _pooled_together,
    EARLY: _pooled_together,
    MOTION_ATTENTION: _motion_attention,
    STFN: _stfn,
}
