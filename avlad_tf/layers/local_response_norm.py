"""Local response normalisation across channels (Krizhevsky et al. 2012,
Sec. 3.3), the `N` layers of Karpathy et al.'s networks (CVPR 2014,
Sec. 3.1; docs/CLIP_MODELS.md).

b_c = a_c / (k + α Σ_{j = c - n/2}^{c + n/2} a_j²)^β, the sum over the n
channels nearest c (fewer at the ends). α multiplies the plain sum, as in
Krizhevsky et al.'s formula (Caffe's LRN divides it by n).
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="avlad_tf")
class LocalResponseNormalization(keras.layers.Layer):
    """Divides each channel by the energy of its n nearest channels.

    Karpathy et al. give every `N` layer k = 2, n = 5, α = 1e-4, β = 0.5
    (the defaults); AlexNet's β is 0.75. The sum runs in float32, whatever
    the policy, and is one cumulative sum over the channel axis (no loop).

    Args:
        depth: n, the (odd) number of channels summed.
        bias: k.
        alpha: α.
        beta: β.
        **kwargs: base `Layer` arguments.

    Input shape: any rank, channels last.
    Output shape: the input's.

    Example:
        >>> x = keras.random.normal((2, 8, 8, 16))
        >>> LocalResponseNormalization()(x).shape
        (2, 8, 8, 16)
    """

    def __init__(self, *, depth=5, bias=2.0, alpha=1e-4, beta=0.5, **kwargs):
        if not isinstance(depth, int) or depth < 1 or depth % 2 == 0:
            raise ValueError(f"depth must be a positive odd int. Received: {depth!r}")
        if bias <= 0:
            raise ValueError(f"bias must be > 0. Received: bias={bias!r}")
        super().__init__(**kwargs)
        self.depth = depth
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        half = self.depth // 2
        pads = [(0, 0)] * (len(x.shape) - 1) + [(half + 1, half)]
        # A leading zero, so that one difference of running sums gives each
        # window: sums[c + n] - sums[c] = Σ_{j = c - n/2}^{c + n/2} a_j².
        sums = ops.cumsum(ops.pad(ops.square(x), pads), axis=-1)  # (..., C + n)
        window = sums[..., self.depth :] - sums[..., : -self.depth]  # (..., C)
        scale = ops.power(self.bias + self.alpha * window, -self.beta)
        return ops.cast(x * scale, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            depth=self.depth, bias=self.bias, alpha=self.alpha, beta=self.beta
        )
        return config
