"""Context gating of a pooled descriptor (Miech, Laptev and Sivic 2017).

"Learnable pooling with Context Gating for video classification" (LOUPE,
arXiv:1706.06905): y = sigmoid(W x + b) ⊙ x. Each feature is rescaled by a
gate in (0, 1) computed from all features, so the layer can re-weight
features by their context (which others are active) without changing signs.
"""

import keras
from keras import ops

from avlad_tf.layers import regularizers


@keras.saving.register_keras_serializable(package="avlad_tf")
class ContextGating(keras.layers.Layer):
    """y = sigmoid(x W + b) ⊙ x on a `(batch, features)` descriptor.

    W is `[N, N]`: on an N = 32768 NetVLAD descriptor that is 10⁹ weights, so
    LOUPE gates after a projection to a smaller width (or gates the logits).

    The layer computes in float32 by default, whatever the global policy:
    it sits between the float32 pooled descriptor and the float32 classifier,
    so float16 would only add two casts and round the descriptor.

    Args:
        kernel_initializer: initializer of W. Glorot uniform, variance
            1 / N for a square kernel.
        weight_decay: slim's decay·sum(W²)/2 on W (the bias is not decayed),
            as the other learned layers.
        **kwargs: base `Layer` arguments (`name`, `trainable`, `dtype`, ...).

    Input shape:
        `(batch, features)`, features known.

    Output shape:
        `(batch, features)`.

    Example:
        >>> descriptor = keras.random.normal((2, 1024))
        >>> ContextGating()(descriptor).shape
        (2, 1024)
    """

    def __init__(
        self, *, kernel_initializer="glorot_uniform", weight_decay=0.0, **kwargs
    ):
        if float(weight_decay) < 0:
            raise ValueError(
                f"weight_decay must be >= 0. Received: weight_decay={weight_decay!r}"
            )
        kwargs["dtype"] = kwargs.get("dtype") or "float32"
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.weight_decay = float(weight_decay)
        self.input_spec = keras.layers.InputSpec(ndim=2)

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(
                "ContextGating expects inputs of rank 2 [batch, features]. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        features = input_shape[-1]
        if features is None:
            raise ValueError(
                "ContextGating needs a known feature dimension. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(features, features),
            initializer=self.kernel_initializer,
            regularizer=regularizers.weight_decay(self.weight_decay),
        )
        self.bias = self.add_weight(name="bias", shape=(features,), initializer="zeros")

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)  # (B, N)
        gates = ops.sigmoid(ops.matmul(x, self.kernel) + self.bias)  # (B, N)
        return gates * x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "weight_decay": self.weight_decay,
            }
        )
        return config
