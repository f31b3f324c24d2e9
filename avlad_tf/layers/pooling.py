"""Average and max pooling over time x space: the paper's Table 2b baselines.

The release's `avg-conv` / `max-conv` poolings (docs/RELEASE.md Sec. 5.2):
per video, the mean or max of the pre-ReLU conv map over frames x H x W, with
no normalisation. Same input contract as `NetVLAD`.
"""

import keras
from keras import ops

from avlad_tf.layers import netvlad


class _SpatioTemporalPooling(keras.layers.Layer):
    """Reduces `(B, T, H, W, D)` to `(B, D)` over time and space."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def build(self, input_shape):
        netvlad.check_video_features_shape(type(self).__name__, input_shape)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


@keras.saving.register_keras_serializable(package="avlad_tf")
class SpatioTemporalAveragePooling(_SpatioTemporalPooling):
    """Mean over all frames and positions of a video.

    Input shape: `(batch, time, height, width, channels)`.
    Output shape: `(batch, channels)`.

    Example:
        >>> x = keras.random.normal((2, 25, 14, 14, 512))
        >>> SpatioTemporalAveragePooling()(x).shape
        (2, 512)
    """

    def call(self, inputs):
        return ops.mean(inputs, axis=(1, 2, 3))


@keras.saving.register_keras_serializable(package="avlad_tf")
class SpatioTemporalMaxPooling(_SpatioTemporalPooling):
    """Max over all frames and positions of a video.

    Input shape: `(batch, time, height, width, channels)`.
    Output shape: `(batch, channels)`.

    Example:
        >>> x = keras.random.normal((2, 25, 14, 14, 512))
        >>> SpatioTemporalMaxPooling()(x).shape
        (2, 512)
    """

    def call(self, inputs):
        return ops.max(inputs, axis=(1, 2, 3))
