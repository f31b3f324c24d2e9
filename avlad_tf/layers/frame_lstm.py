"""Stacked LSTMs over per-frame features (Ng et al., CVPR 2015).

"Beyond Short Snippets: Deep Networks for Video Classification" (ActionVLAD's
ref. [31]): five stacked LSTM layers of 512 cells read one CNN feature vector
per frame; a softmax classifier shared over time predicts the class at every
step, is trained with a loss at every step, and the video's prediction
combines the per-step predictions. Reported: 88.6 % on UCF101 (3 splits;
image frames and optical flow, 30-frame unroll; Table 7 of Ng et al.).

`FrameLSTM` returns the per-step outputs `h_t` and their weighted mean
`sum_t w_t h_t` (`sum_t w_t = 1`). The classifier after it is affine, so the
classifier of the mean is the same weighted mean of the per-step logits
`z_t`: the model's logits are the per-step logits combined over time.

`TimeAveragedLogits` supplies the per-step *loss* without labels. For softmax
cross-entropy with any target distribution y,
`CE(z, y) = logsumexp(z) - <y, z>` is affine in z but for logsumexp, so

    sum_t w_t CE(z_t, y) = CE(zbar, y) + [sum_t w_t lse(z_t) - lse(zbar)],

where `zbar = sum_t w_t z_t`. The bracket (>= 0 by Jensen) does not involve
the labels: added with `add_loss`, the training step's cross-entropy of
`zbar` plus `model.losses` is exactly the weighted per-step loss. For the
sigmoid loss (summed over classes) the bracket is
`sum_c [sum_t w_t softplus(z_tc) - softplus(zbar_c)]`.
"""

import keras
from keras import ops

from avlad_tf.layers import netvlad
from avlad_tf.layers import regularizers

# Ng et al.'s stack: five layers of 512 cells.
PAPER_UNITS = 512
PAPER_NUM_LAYERS = 5
WEIGHTINGS = ("uniform", "linear")
FRAME_POOLINGS = ("mean", "max")
PER_STEP_LOSSES = ("softmax", "sigmoid")


def _is_positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_weighting(weighting):
    if weighting not in WEIGHTINGS:
        raise ValueError(
            f"weighting must be one of {WEIGHTINGS}. Received: weighting={weighting!r}"
        )


def time_weights(num_steps, weighting, dtype="float32"):
    """Combination weights `[T]` over time steps; they sum to 1.

    `'uniform'`: 1 / T, the average of the per-step predictions. `'linear'`:
    proportional to t = 1..T, later steps (which have seen more of the video)
    count more; Ng et al. also report this linear weighting.
    """
    _check_weighting(weighting)
    # float32 first: TensorFlow has no float16 range.
    steps = ops.arange(1, num_steps + 1, dtype="float32")  # (T,)
    if weighting == "uniform":
        steps = ops.ones_like(steps)
    return ops.cast(steps / ops.sum(steps), dtype)


def rectified_frame_means(maps, dtype, pooling="mean"):
    """Each frame's feature vector: the ReLU'd map averaged (or maxed, as
    VGG's pool5 does over its window) over space, `(B, T, h, w, D)` ->
    `(B, T, D)` in `dtype`. Post-ReLU fc7 (h = w = 1) passes unchanged, as
    do post-ReLU (InceptionV3) maps."""
    # The spatial mean sums h·w activations: float32 even under mixed
    # precision, where float16 sums of large conv maps can overflow.
    x = ops.relu(ops.cast(maps, "float32"))  # (B, T, h, w, D)
    reduce = ops.mean if pooling == "mean" else ops.max
    return ops.cast(reduce(x, axis=(2, 3)), dtype)  # (B, T, D)


@keras.saving.register_keras_serializable(package="avlad_tf")
class FrameLSTM(keras.layers.Layer):
    """Stacked LSTMs over the spatial means of a video's frame features.

    Each frame's (pre-ReLU) endpoint map is rectified and averaged over
    space to one vector; h = w = 1 for fc7 gives post-ReLU fc7 itself. ReLU
    is idempotent, so post-ReLU (InceptionV3) features pass unchanged.

    Args:
        units: LSTM cells per layer (512 in Ng et al.).
        num_layers: stacked LSTM layers (5 in Ng et al.).
        dropout_rate: dropout on each LSTM layer's input.
        weighting: `'uniform'` or `'linear'` combination over time
            (`time_weights`).
        frame_pooling: `'mean'` (the frame vector is the map's spatial
            mean) or `'max'` (its spatial max, which keeps a small moving
            region's activation that the mean dilutes).
        **kwargs: base `Layer` arguments (`name`, `trainable`, ...).

    Input shape:
        `(batch, time, height, width, channels)`, channels known.

    Output shape:
        `(batch, units)`: the weighted mean over time of the last layer's
        outputs. With `return_sequences=True` in the call, also the per-step
        outputs `(batch, time, units)`.

    Example:
        >>> features = keras.random.normal((2, 25, 14, 14, 512))
        >>> FrameLSTM()(features).shape
        (2, 512)
    """

    def __init__(
        self,
        *,
        units=PAPER_UNITS,
        num_layers=PAPER_NUM_LAYERS,
        dropout_rate=0.0,
        weighting="uniform",
        weight_decay=0.0,
        frame_pooling="mean",
        **kwargs,
    ):
        if frame_pooling not in FRAME_POOLINGS:
            raise ValueError(
                f"frame_pooling must be one of {FRAME_POOLINGS}. "
                f"Received: frame_pooling={frame_pooling!r}"
            )
        if not _is_positive_int(units):
            raise ValueError(f"units must be a positive int. Received: units={units!r}")
        if not _is_positive_int(num_layers):
            raise ValueError(
                f"num_layers must be a positive int. Received: num_layers={num_layers!r}"
            )
        if not 0.0 <= float(dropout_rate) < 1.0:
            raise ValueError(
                f"dropout_rate must be in [0, 1). Received: dropout_rate={dropout_rate!r}"
            )
        _check_weighting(weighting)
        if float(weight_decay) < 0:
            raise ValueError(
                f"weight_decay must be >= 0. Received: weight_decay={weight_decay!r}"
            )
        super().__init__(**kwargs)
        self.weight_decay = float(weight_decay)
        self.units = units
        self.num_layers = num_layers
        self.dropout_rate = float(dropout_rate)
        self.weighting = weighting
        self.frame_pooling = frame_pooling
        self.input_spec = keras.layers.InputSpec(ndim=5)
        self.lstms = [
            keras.layers.LSTM(
                units,
                dropout=self.dropout_rate,
                kernel_regularizer=regularizers.weight_decay(self.weight_decay),
                recurrent_regularizer=regularizers.weight_decay(self.weight_decay),
                return_sequences=True,
                name=f"lstm{i}",
                dtype=self.dtype_policy,
            )
            for i in range(1, num_layers + 1)
        ]

    def build(self, input_shape):
        netvlad.check_video_features_shape("FrameLSTM", input_shape)
        depth = input_shape[-1]
        for layer in self.lstms:
            layer.build((None, None, depth))
            depth = self.units

    def call(self, inputs, return_sequences=False, training=None):
        x = rectified_frame_means(inputs, self.compute_dtype, self.frame_pooling)
        # (B, T, D)
        for layer in self.lstms:
            x = layer(x, training=training)  # (B, T, units)
        weights = time_weights(ops.shape(x)[1], self.weighting, x.dtype)
        pooled = ops.einsum("bth,t->bh", x, weights)  # (B, units)
        if return_sequences:
            return pooled, x
        return pooled

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def compute_output_spec(self, inputs, return_sequences=False, training=None):
        pooled = keras.KerasTensor(
            self.compute_output_shape(inputs.shape), dtype=self.compute_dtype
        )
        if not return_sequences:
            return pooled
        steps = tuple(inputs.shape[:2]) + (self.units,)
        return pooled, keras.KerasTensor(steps, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "num_layers": self.num_layers,
                "dropout_rate": self.dropout_rate,
                "weighting": self.weighting,
                "weight_decay": self.weight_decay,
                "frame_pooling": self.frame_pooling,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="avlad_tf")
class TimeAveragedLogits(keras.layers.Layer):
    """Combines per-step logits over time and adds the per-step loss's rest.

    Returns `zbar = sum_t w_t z_t`. With `per_step_loss` set it also adds,
    as a layer loss averaged over the batch, the label-free gap between the
    weighted per-step loss and the loss of `zbar` (module docstring). A
    training step that minimises `loss(labels, zbar) + sum(model.losses)`
    (`avlad_tf/training/step.py`, or `Model.fit`) then minimises
    `sum_t w_t loss(labels, z_t)`, the paper's loss at every time step.
    Always computes in float32 (logsumexp of float16 logits).

    Args:
        weighting: `'uniform'` or `'linear'` (`time_weights`).
        per_step_loss: `'softmax'` (single-label cross-entropy), `'sigmoid'`
            (per-class sigmoid cross-entropy summed over classes) or `None`
            (only combine, add no loss). Match the training step's loss.
        **kwargs: base `Layer` arguments (`name`, `trainable`, ...).

    Input shape:
        `(batch, time, classes)` per-step logits.

    Output shape:
        `(batch, classes)`.

    Example:
        >>> per_step = keras.random.normal((2, 30, 101))
        >>> TimeAveragedLogits()(per_step).shape
        (2, 101)
    """

    def __init__(self, *, weighting="uniform", per_step_loss="softmax", **kwargs):
        _check_weighting(weighting)
        if per_step_loss is not None and per_step_loss not in PER_STEP_LOSSES:
            raise ValueError(
                f"per_step_loss must be one of {PER_STEP_LOSSES} or None. "
                f"Received: per_step_loss={per_step_loss!r}"
            )
        kwargs["dtype"] = kwargs.get("dtype") or "float32"
        super().__init__(**kwargs)
        self.weighting = weighting
        self.per_step_loss = per_step_loss
        self.input_spec = keras.layers.InputSpec(ndim=3)

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                "TimeAveragedLogits expects per-step logits of rank 3 "
                f"[batch, time, classes]. Received: input_shape={tuple(input_shape)}"
            )

    def call(self, inputs):
        logits = ops.cast(inputs, "float32")  # (B, T, C)
        weights = time_weights(ops.shape(logits)[1], self.weighting)  # (T,)
        combined = ops.einsum("btc,t->bc", logits, weights)  # (B, C)
        if self.per_step_loss == "softmax":
            per_step = ops.logsumexp(logits, axis=-1)  # (B, T)
            gap = ops.einsum("bt,t->b", per_step, weights) - ops.logsumexp(
                combined, axis=-1
            )  # (B,)
            self.add_loss(ops.mean(gap))
        elif self.per_step_loss == "sigmoid":
            per_step = ops.softplus(logits)  # (B, T, C)
            gap = ops.einsum("btc,t->bc", per_step, weights) - ops.softplus(combined)
            self.add_loss(ops.mean(ops.sum(gap, axis=-1)))
        return combined

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {"weighting": self.weighting, "per_step_loss": self.per_step_loss}
        )
        return config
