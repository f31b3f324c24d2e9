"""Average and max pooling over time x space: the paper's Table 2b baselines.

The release's `avg-conv` / `max-conv` poolings (docs/RELEASE.md Sec. 5.2):
per video, the mean or max of the pre-ReLU conv map over frames x H x W, with
no normalisation. Same input contract as `NetVLAD`, and the same streaming
methods (`avlad_tf.layers.streaming`): a running (sum, count) or (max, count).
"""

import keras
from keras import ops

from avlad_tf.layers import netvlad
from avlad_tf.layers import streaming


class _SpatioTemporalPooling(keras.layers.Layer):
    """Reduces `(B, T, H, W, D)` to `(B, D)` over time and space.

    Streaming keeps, per video, the running reduction `(B, D)` under
    `state[self.reduction]` and the number of real positions (frames x H x W)
    under `state["count"]`, both float32. Subclasses set `reduction` and
    `identity` (the value a padding position takes) and define `_reduce`,
    `_combine` and `_result`.
    """

    reduction = None
    identity = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def build(self, input_shape):
        netvlad.check_video_features_shape(type(self).__name__, input_shape)
        self.depth = input_shape[-1]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def _state_shapes(self, batch_size):
        return {self.reduction: (batch_size, self.depth), "count": (batch_size,)}

    def initial_state(self, batch_size):
        """The state of no frames: the reduction's identity and a zero count."""
        streaming.check_built(self, "initial_state")
        return {
            self.reduction: ops.full(
                (batch_size, self.depth), self.identity, "float32"
            ),
            "count": ops.zeros((batch_size,), "float32"),
        }

    def update(self, state, chunk, mask=None):
        """Adds a chunk `(B, t, H, W, D)` of frames; mask `(B, t)`, 0 = padding.

        Raises:
            ValueError: if the layer is not built, or the chunk, mask or state
                has the wrong shape.
        """
        name = type(self).__name__
        streaming.check_built(self, "update")
        streaming.check_chunk(name, chunk, self.depth, mask)
        streaming.check_state(name, state, self._state_shapes(chunk.shape[0]))
        batch, time, height, width = ops.shape(chunk)[:4]
        if mask is None:
            mask = ops.ones((batch, time))
        # Padding positions take the identity, so they change nothing.
        keep = streaming.frame_flags(mask, chunk)  # (B, t, 1, 1, 1)
        x = ops.where(keep, ops.cast(chunk, "float32"), self.identity)
        real_frames = ops.sum(ops.cast(ops.not_equal(mask, 0), "float32"), axis=1)
        return {
            self.reduction: self._combine(state[self.reduction], self._reduce(x)),
            "count": ops.add(state["count"], real_frames * (height * width)),
        }

    def finalize(self, state):
        """The `(B, D)` pooled features of all frames added to `state`.

        A video with no real frame (all masked) pools to zeros.
        """
        streaming.check_built(self, "finalize")
        streaming.check_state(type(self).__name__, state, self._state_shapes(None))
        result = self._result(state[self.reduction], state["count"])
        return ops.cast(result, self.compute_dtype)


@keras.saving.register_keras_serializable(package="avlad_tf")
class SpatioTemporalAveragePooling(_SpatioTemporalPooling):
    """Mean over all frames and positions of a video.

    Streamed (`update` / `finalize`), the state is the float32 sum and count of
    real positions; a video whose frames are all masked pools to zeros (the
    mean of nothing has no sane value, and zeros keep a classifier finite).

    Input shape: `(batch, time, height, width, channels)`.
    Output shape: `(batch, channels)`.

    Example:
        >>> x = keras.random.normal((2, 25, 14, 14, 512))
        >>> SpatioTemporalAveragePooling()(x).shape
        (2, 512)
    """

    reduction = "sum"
    identity = 0.0

    def call(self, inputs):
        return ops.mean(inputs, axis=(1, 2, 3))

    def _reduce(self, x):
        return ops.sum(x, axis=(1, 2, 3))

    def _combine(self, total, chunk_total):
        return ops.add(total, chunk_total)

    def _result(self, total, count):
        # count is 0 only where total is 0 too: zeros, not 0 / 0.
        return total / ops.expand_dims(ops.maximum(count, 1.0), -1)


@keras.saving.register_keras_serializable(package="avlad_tf")
class SpatioTemporalMaxPooling(_SpatioTemporalPooling):
    """Max over all frames and positions of a video.

    Streamed (`update` / `finalize`), the state is the float32 running max
    (-inf before any frame) and the count of real positions; a video whose
    frames are all masked pools to zeros, not -inf.

    Input shape: `(batch, time, height, width, channels)`.
    Output shape: `(batch, channels)`.

    Example:
        >>> x = keras.random.normal((2, 25, 14, 14, 512))
        >>> SpatioTemporalMaxPooling()(x).shape
        (2, 512)
    """

    reduction = "max"
    identity = float("-inf")

    def call(self, inputs):
        return ops.max(inputs, axis=(1, 2, 3))

    def _reduce(self, x):
        return ops.max(x, axis=(1, 2, 3))

    def _combine(self, maximum, chunk_maximum):
        return ops.maximum(maximum, chunk_maximum)

    def _result(self, maximum, count):
        # Zeros rather than the -inf identity where no frame was real.
        return ops.where(ops.expand_dims(count > 0, -1), maximum, 0.0)
