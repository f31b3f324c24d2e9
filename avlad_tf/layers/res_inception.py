"""Temporal res-inception: STFN's 1D convolutions over per-segment features.

The STFN poster ("Spatio-Temporal Fusion Networks" for action recognition;
its text names no authors or venue) extracts each stream's temporal dynamics
with a "Temporal Res-Inception" module: "1D convolution + BN + relu",
"different kernel sizes (2, 3, 4, 5)", "Resnet + Inception", over the
per-segment features of a CNN (ResNet-101 or Inception-v3). Reported, single
streams with this module and no fusion block (HMDB51 / UCF101, ResNet-101):
spatial 48.2 / 83.5, temporal 58.1 / 86.0, late fusion 61.1 / 91.8. The
poster gives no equations; this module reads it as the Inception-ResNet
pattern (each interpretation is also in docs/LAYER.md):

    y_k = ReLU(BN(conv1d_k(x)))              k = 2, 3, 4, 5; (B, T, F) each
    out = ReLU(s + concat_k(y_k) W + b)      W: (4F, D), a linear 1x1 conv

with the shortcut s = x (the stream's own features). `SpatioTemporalFusion`
(`layers/stfn.py`) feeds the branches a fused sequence and keeps the
stream's own features on the shortcut. The branch width F defaults to
D // 4 (one quarter per kernel size), so the concatenation is as wide as the
input, as in Inception-ResNet. 'same' padding keeps T; for the even kernels
(2, 4) Keras, like TensorFlow, pads one step more after than before, so
output t reads inputs t..t+1 (k = 2) and t-1..t+2 (k = 4). BN is Keras'
default (momentum 0.99, epsilon 1e-3); one BN over the concatenation is one
BN per branch, because BN normalises each channel on its own. The branch
convolutions have no bias (BN's offset replaces it).

`ResInceptionPooling` is the poster's single-stream baseline ("no STFB"):
each frame's rectified spatial mean (`frame_lstm.rectified_frame_means`,
the per-segment feature vector of a 2D CNN), the module, then the mean over
time. T is the number of segments (the poster's best is 7).
"""

import keras
from keras import ops

from avlad_tf.layers import frame_lstm
from avlad_tf.layers import netvlad
from avlad_tf.layers import regularizers

PAPER_KERNEL_SIZES = (2, 3, 4, 5)


def _is_positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_module_arguments(kernel_sizes, filters, weight_decay):
    """Raises ValueError on bad `TemporalResInception` arguments."""
    if not (
        isinstance(kernel_sizes, (list, tuple))
        and kernel_sizes
        and all(_is_positive_int(k) for k in kernel_sizes)
    ):
        raise ValueError(
            "kernel_sizes must be a non-empty sequence of positive ints. "
            f"Received: kernel_sizes={kernel_sizes!r}"
        )
    if filters is not None and not _is_positive_int(filters):
        raise ValueError(
            f"filters must be a positive int or None. Received: filters={filters!r}"
        )
    if float(weight_decay) < 0:
        raise ValueError(
            f"weight_decay must be >= 0. Received: weight_decay={weight_decay!r}"
        )


def temporal_mean(x, dtype):
    """`(B, T, D)` -> `(B, D)`; summed in float32, where float16 sums over
    many segments of large features can overflow."""
    return ops.cast(ops.mean(ops.cast(x, "float32"), axis=1), dtype)


def check_sequence_shape(layer_name, input_shape):
    """Raises ValueError unless `input_shape` is `(B, T, D)` with known D."""
    if len(input_shape) != 3 or input_shape[-1] is None:
        raise ValueError(
            f"{layer_name} expects per-segment features [batch, time, "
            f"channels] with known channels. Received: input_shape={tuple(input_shape)}"
        )


@keras.saving.register_keras_serializable(package="avlad_tf")
class TemporalResInception(keras.layers.Layer):
    """STFN's temporal res-inception module over a sequence of features.

    Args:
        kernel_sizes: temporal kernel size of each branch ((2, 3, 4, 5) in
            STFN).
        filters: channels F of each branch; None is D // len(kernel_sizes)
            (at least 1), so the concatenation is as wide as the input.
        weight_decay: slim's decay·Σw²/2 on the branch and projection
            kernels (not on BN or biases).
        **kwargs: base `Layer` arguments (`name`, `trainable`, ...).

    Input shape:
        `(batch, time, channels)`, channels D known; the optional `shortcut`
        of the call has the same shape (default: the inputs).

    Output shape:
        `(batch, time, channels)`.

    Example:
        >>> segments = keras.random.normal((2, 7, 512))
        >>> TemporalResInception()(segments).shape
        (2, 7, 512)
    """

    def __init__(
        self,
        *,
        kernel_sizes=PAPER_KERNEL_SIZES,
        filters=None,
        weight_decay=0.0,
        **kwargs,
    ):
        check_module_arguments(kernel_sizes, filters, weight_decay)
        super().__init__(**kwargs)
        self.kernel_sizes = tuple(kernel_sizes)
        self.filters = filters
        self.weight_decay = float(weight_decay)

    def build(self, inputs_shape, shortcut_shape=None):
        check_sequence_shape("TemporalResInception", inputs_shape)
        depth = inputs_shape[-1]
        if shortcut_shape is not None and shortcut_shape[-1] != depth:
            raise ValueError(
                "TemporalResInception's shortcut must have the inputs' channels. "
                f"Received: input_shape={tuple(inputs_shape)}, "
                f"shortcut_shape={tuple(shortcut_shape)}"
            )
        width = self.filters or max(1, depth // len(self.kernel_sizes))
        decay = regularizers.weight_decay(self.weight_decay)
        # A fixed loop over the kernel sizes, one branch each.
        self.branches = [
            keras.layers.Conv1D(
                width,
                k,
                padding="same",
                use_bias=False,
                kernel_regularizer=decay,
                name=f"conv{k}",
                dtype=self.dtype_policy,
            )
            for k in self.kernel_sizes
        ]
        self.batch_norm = keras.layers.BatchNormalization(
            name="batch_norm", dtype=self.dtype_policy
        )
        # A linear 1x1 temporal convolution: a Dense on the channel axis.
        self.projection = keras.layers.Dense(
            depth, kernel_regularizer=decay, name="projection", dtype=self.dtype_policy
        )
        for branch in self.branches:
            branch.build((None, None, depth))
        concatenated = (None, None, width * len(self.kernel_sizes))
        self.batch_norm.build(concatenated)
        self.projection.build(concatenated)

    def call(self, inputs, shortcut=None, training=None):
        x = ops.concatenate(
            [branch(inputs) for branch in self.branches], axis=-1
        )  # (B, T, n·F)
        x = ops.relu(self.batch_norm(x, training=training))
        shortcut = inputs if shortcut is None else shortcut
        return ops.relu(shortcut + self.projection(x))  # (B, T, D)

    def compute_output_shape(self, inputs_shape, shortcut_shape=None):
        return tuple(inputs_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_sizes": list(self.kernel_sizes),
                "filters": self.filters,
                "weight_decay": self.weight_decay,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="avlad_tf")
class ResInceptionPooling(keras.layers.Layer):
    """STFN's single-stream baseline: segment features -> module -> mean.

    Args:
        kernel_sizes, filters, weight_decay: the `TemporalResInception`'s.
        **kwargs: base `Layer` arguments (`name`, `trainable`, ...).

    Input shape:
        `(batch, time, height, width, channels)`, channels known; one frame
        (or flow stack) per segment.

    Output shape:
        `(batch, channels)`.

    Example:
        >>> features = keras.random.normal((2, 7, 14, 14, 512))
        >>> ResInceptionPooling()(features).shape
        (2, 512)
    """

    def __init__(
        self,
        *,
        kernel_sizes=PAPER_KERNEL_SIZES,
        filters=None,
        weight_decay=0.0,
        **kwargs,
    ):
        check_module_arguments(kernel_sizes, filters, weight_decay)
        super().__init__(**kwargs)
        self.input_spec = keras.layers.InputSpec(ndim=5)
        self.module = TemporalResInception(
            kernel_sizes=kernel_sizes,
            filters=filters,
            weight_decay=weight_decay,
            name="res_inception",
            dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        netvlad.check_video_features_shape("ResInceptionPooling", input_shape)
        self.module.build((None, None, input_shape[-1]))

    def call(self, inputs, training=None):
        x = frame_lstm.rectified_frame_means(inputs, self.compute_dtype)  # (B, T, D)
        x = self.module(x, training=training)  # (B, T, D)
        return temporal_mean(x, self.compute_dtype)  # (B, D)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        config = super().get_config()
        module = self.module.get_config()
        config.update(
            {k: module[k] for k in ("kernel_sizes", "filters", "weight_decay")}
        )
        return config
