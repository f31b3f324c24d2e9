"""Conv pooling: max over time of conv maps, then fully connected layers.

Ng et al., "Beyond Short Snippets: Deep Networks for Video Classification",
CVPR 2015 (ActionVLAD's ref. [31]). Their "Conv Pooling" network max-pools
the final convolutional layer over a video's frames, which keeps the spatial
layout, and classifies the pooled map with the image network's fully
connected layers. Reported: 88.2 % on UCF101 (3 splits; image frames and
optical flow, 120 frames; Table 7 of Ng et al.).
"""

import math

import keras
from keras import ops

from avlad_tf.layers import netvlad
from avlad_tf.layers import regularizers

# VGG16's fc6 / fc7 width.
VGG16_FC_UNITS = (4096, 4096)


def _is_positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def rectified_pool(x, pool_size):
    """ReLU, then a `pool_size` max pool with stride `pool_size` and 'same'
    padding: VGG16's pool5 of a pre-ReLU conv5_3 map for `pool_size=2`, and
    nothing but the ReLU for 1. `'same'` keeps ceil(h / s) x ceil(w / s)
    positions, so a 1x1 fc7 map passes unchanged.

    `x`: `(N, h, w, D)` maps.
    """
    x = ops.relu(x)
    if pool_size > 1:
        x = ops.max_pool(x, pool_size=pool_size, strides=pool_size, padding="same")
    return x  # (N, h', w', D)


@keras.saving.register_keras_serializable(package="avlad_tf")
class ConvPooling(keras.layers.Layer):
    """Max over time of a video's conv maps, then ReLU fully connected layers.

    The backbone endpoint is pre-ReLU; the image network's FC layers read it
    after ReLU and pool5. Both are maxima, so they commute with the max over
    time: this is conv pooling of the network's last (pool5) map. On VGG16's
    conv5_3 at 224 px the first FC layer then has fc6's shape,
    7·7·512 = 25088 inputs.

    Args:
        units: widths of the fully connected layers, each followed by ReLU
            and dropout. Defaults to VGG16's fc6 / fc7 (4096, 4096).
        dropout_rate: dropout after each fully connected layer (VGG16 trains
            its fc6 / fc7 with 0.5).
        spatial_pool_size: window and stride of the spatial max pool before
            flattening; 2 is VGG16's pool5, 1 skips it. Padding is `'same'`,
            so a 1x1 fc7 map passes unchanged.
        **kwargs: base `Layer` arguments (`name`, `trainable`, ...).

    Input shape:
        `(batch, time, height, width, channels)`, height, width and channels
        known (they size the first fully connected layer).

    Output shape:
        `(batch, units[-1])`.

    Example:
        >>> features = keras.random.normal((2, 25, 14, 14, 512))
        >>> ConvPooling()(features).shape
        (2, 4096)
    """

    def __init__(
        self,
        *,
        units=VGG16_FC_UNITS,
        dropout_rate=0.5,
        spatial_pool_size=2,
        weight_decay=0.0,
        **kwargs,
    ):
        if (
            not isinstance(units, (list, tuple))
            or not units
            or not all(_is_positive_int(u) for u in units)
        ):
            raise ValueError(
                "units must be a non-empty sequence of positive ints. "
                f"Received: units={units!r}"
            )
        if not 0.0 <= float(dropout_rate) < 1.0:
            raise ValueError(
                f"dropout_rate must be in [0, 1). Received: dropout_rate={dropout_rate!r}"
            )
        if not _is_positive_int(spatial_pool_size):
            raise ValueError(
                "spatial_pool_size must be a positive int. "
                f"Received: spatial_pool_size={spatial_pool_size!r}"
            )
        if float(weight_decay) < 0:
            raise ValueError(
                f"weight_decay must be >= 0. Received: weight_decay={weight_decay!r}"
            )
        super().__init__(**kwargs)
        self.units = tuple(units)
        self.dropout_rate = float(dropout_rate)
        self.spatial_pool_size = spatial_pool_size
        self.weight_decay = float(weight_decay)
        self.input_spec = keras.layers.InputSpec(ndim=5)
        self.fully_connected = [
            keras.layers.Dense(
                width,
                activation="relu",
                kernel_regularizer=regularizers.weight_decay(self.weight_decay),
                name=f"fc{i}",
                dtype=self.dtype_policy,
            )
            for i, width in enumerate(self.units, start=1)
        ]
        self.dropout = keras.layers.Dropout(self.dropout_rate, dtype=self.dtype_policy)

    def build(self, input_shape):
        netvlad.check_video_features_shape("ConvPooling", input_shape)
        height, width, depth = input_shape[2:]
        if height is None or width is None:
            raise ValueError(
                "ConvPooling needs a known height and width (they size the "
                f"first fully connected layer). Received: input_shape={tuple(input_shape)}"
            )
        size = self.spatial_pool_size
        # 'same' pooling keeps ceil(h / s) x ceil(w / s) positions.
        self._flat_size = math.ceil(height / size) * math.ceil(width / size) * depth
        inputs = self._flat_size
        for layer in self.fully_connected:
            layer.build((None, inputs))
            inputs = layer.units

    def call(self, inputs, training=None):
        # Conv pooling proper: the max over frames keeps every position.
        x = ops.max(inputs, axis=1)  # (B, h, w, D)
        x = rectified_pool(x, self.spatial_pool_size)  # (B, h', w', D)
        # Row-major (h, w, D), as keras.applications' VGG16 flattens pool5.
        x = ops.reshape(x, (-1, self._flat_size))  # (B, h'·w'·D)
        for layer in self.fully_connected:
            x = self.dropout(layer(x), training=training)
        return x  # (B, units[-1])

    def set_fully_connected_weights(self, weights):
        """Starts the fully connected layers from an image network's, as Ng
        et al. start theirs from the image CNN's fc6 / fc7.

        Args:
            weights: one `[kernel, bias]` per layer, in order; kernels are
                `[inputs, units]` with inputs flattened row-major (h, w, D),
                keras.applications' Dense layout.

        Raises:
            ValueError: before the layer is built, or on a count or shape
                that differs from the layer's, naming the layer.
        """
        if not self.built:
            raise ValueError(f"{self.name}: build the layer before setting weights.")
        if len(weights) != len(self.fully_connected):
            raise ValueError(
                f"{self.name} has {len(self.fully_connected)} fully connected "
                f"layers; received weights for {len(weights)}."
            )
        for layer, (kernel, bias) in zip(self.fully_connected, weights):
            expected = tuple(layer.kernel.shape)
            if tuple(kernel.shape) != expected or tuple(bias.shape) != expected[1:]:
                raise ValueError(
                    f"{self.name}/{layer.name} has a {expected} kernel; "
                    f"received {tuple(kernel.shape)} (bias {tuple(bias.shape)})."
                )
            layer.set_weights([kernel, bias])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": list(self.units),
                "dropout_rate": self.dropout_rate,
                "spatial_pool_size": self.spatial_pool_size,
                "weight_decay": self.weight_decay,
            }
        )
        return config
