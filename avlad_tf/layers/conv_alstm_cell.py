"""One frame of VideoLSTM's convolutional attention LSTM (`ConvALSTM`).

Li et al., "VideoLSTM convolves, attends and flows for action recognition",
CVIU 2018. Per frame t, with `*` a convolution, X_t the frame's map and ⊙
the elementwise product:

    Z_t  = W_z * tanh(W_xa * X_t + W_ha * H_{t-1} + b_a)        (1x1 kernels)
    A_t  = softmax of Z_t over the h·w positions
    X~_t = A_t ⊙ X_t
    I_t, F_t, O_t = σ(W_x· * X~_t + W_h· * H_{t-1} + b_·)    (kernel_size)
    G_t  = tanh(W_xc * X~_t + W_hc * H_{t-1} + b_c)
    C_t  = F_t ⊙ C_{t-1} + I_t ⊙ G_t,    H_t = O_t ⊙ tanh(C_t)

Motion-based attention (`attention='motion'`): a second ConvLSTM with 1x1
kernels reads the flow stream's map M_t and the appearance state H_{t-1};
its state H^m_t takes H_{t-1}'s place in Z_t, so the attention on frame t
comes from frame t's motion while the appearance LSTM reads X~_t:

    I^m_t, F^m_t, O^m_t, G^m_t from W_m * M_t + U_m * H^m_{t-1} + V_m * H_{t-1} + b_m
    Z_t  = W_z * tanh(W_xa * X_t + W_ha * H^m_t + b_a)

The terms that need no state (W_xa * X_t + b_a, W_m * M_t + b_m) are
computed for all frames at once by `ConvALSTM`; the cell does the rest.
"""

import keras
from keras import ops

from avlad_tf.layers import regularizers


def add_weights(layer, shapes, weight_decay):
    """Adds `{name: shape}` to `layer` as attributes: the release's Glorot
    kernels and zero biases; slim's weight decay on the kernels only."""
    for name, shape in shapes.items():
        bias = name.endswith("bias")
        weight = layer.add_weight(
            name=name,
            shape=shape,
            initializer="zeros" if bias else "glorot_uniform",
            regularizer=None if bias else regularizers.weight_decay(weight_decay),
        )
        setattr(layer, name, weight)


def _lstm_update(gates, cell):
    """One LSTM update from pre-activation gates `[..., 4U]` (Keras order
    i, f, c, o) and the previous cell `[..., U]`; returns `(h, c)`."""
    i, f, g, o = ops.split(gates, 4, axis=-1)
    cell = ops.sigmoid(f) * cell + ops.sigmoid(i) * ops.tanh(g)
    return ops.sigmoid(o) * ops.tanh(cell), cell


class ConvALSTMCell(keras.layers.Layer):
    """One frame of `ConvALSTM`, for `keras.layers.RNN`.

    Input: the frame's `[X_t ‖ W_xa * X_t + b_a (‖ W_m * M_t + b_m)]`
    `(B, h, w, D + U (+ 4U))`, whose per-frame parts `ConvALSTM` computes
    for all frames at once. States: `[H, C (, H^m, C^m)]`, each
    `(B, h, w, U)`. Output: `[H_t ‖ A_t]` `(B, h, w, U + 1)`.
    """

    def __init__(self, *, units, kernel_size, attention, weight_decay, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.kernel_size = kernel_size
        self.attention = attention
        self.weight_decay = weight_decay
        # The states are maps: ConvALSTM passes them in, as Keras' ConvLSTM.
        self.state_size = -1

    def build(self, input_shape):
        u, k = self.units, self.kernel_size
        self.depth = input_shape[-1] - (5 * u if self.attention == "motion" else u)
        shapes = {
            "kernel": (k, k, self.depth, 4 * u),  # W_xi, W_xf, W_xc, W_xo
            "recurrent_kernel": (k, k, u, 4 * u),  # W_h·
            "bias": (4 * u,),
            "attention_state_kernel": (u, u),  # W_ha, 1x1
            # W_z's bias would be the same at every position: the softmax
            # cancels it.
            "attention_score_kernel": (u, 1),  # W_z, 1x1
        }
        if self.attention == "motion":
            shapes["motion_recurrent_kernel"] = (u, 4 * u)  # U_m, 1x1
            shapes["motion_top_kernel"] = (u, 4 * u)  # V_m, 1x1
        add_weights(self, shapes, self.weight_decay)

    def _attend(self, projected, query):
        """A_t (B, h, w) from W_xa * X_t + b_a and the query state."""
        hidden = ops.tanh(
            projected + ops.einsum("bhwu,uv->bhwv", query, self.attention_state_kernel)
        )
        scores = ops.einsum("bhwu,uo->bhwo", hidden, self.attention_score_kernel)
        rows, cols = scores.shape[1:3]
        # float32: exp of float16 scores overflows. The softmax by hand:
        # ops.softmax warns on fc7's single position.
        flat = ops.reshape(ops.cast(scores, "float32"), (-1, rows * cols))  # (B, h·w)
        exp = ops.exp(flat - ops.max(flat, axis=-1, keepdims=True))
        attention = exp / ops.sum(exp, axis=-1, keepdims=True)
        return ops.cast(ops.reshape(attention, (-1, rows, cols)), query.dtype)

    def call(self, inputs, states):
        u = self.units
        x, projected, motion = ops.split(
            inputs, [self.depth, self.depth + u], axis=-1
        )  # (B, h, w, D), (B, h, w, U), (B, h, w, 4U or 0)
        h, query = states[0], states[0]
        motion_states = []
        if self.attention == "motion":
            gates = (
                motion
                + ops.einsum("bhwu,uk->bhwk", states[2], self.motion_recurrent_kernel)
                + ops.einsum("bhwu,uk->bhwk", h, self.motion_top_kernel)
            )  # (B, h, w, 4U)
            motion_states = list(_lstm_update(gates, states[3]))
            query = motion_states[0]  # H^m_t: frame t's motion attends
        attention = self._attend(projected, query)  # (B, h, w)
        gates = (
            ops.conv(x * attention[..., None], self.kernel, padding="same")
            + ops.conv(h, self.recurrent_kernel, padding="same")
            + self.bias
        )  # (B, h, w, 4U)
        h, c = _lstm_update(gates, states[1])
        output = ops.concatenate([h, attention[..., None]], axis=-1)  # (B, h, w, U+1)
        return output, [h, c, *motion_states]
