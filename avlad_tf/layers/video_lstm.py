"""VideoLSTM: a convolutional attention LSTM over conv maps (Li et al., 2018).

Li, Gavrilyuk, Gavves, Jain and Snoek, "VideoLSTM convolves, attends and
flows for action recognition", Computer Vision and Image Understanding 166
(2018); arXiv 1607.01794. A soft-attention LSTM whose products are
convolutions, so its state keeps the frame's spatial layout; the attention
comes from the frame itself or, motion-based, from the flow stream's map
(equations: `conv_alstm_cell.py`).

As the authors' Theano release: the inputs are VGG16 pool5 maps (of RGB and
of flow), 512 hidden channels, 3x3 gate kernels, 1x1 attention and motion
kernels, Glorot kernels, zero biases, and initial states
`H_0, C_0 = tanh(W_0 * mean_t X_t + b_0)` (3x3; `H^m_0, C^m_0` from
`mean_t M_t`, 1x1), so the first step already sees the clip's mean. Each
H_t, flattened, feeds a 1024-wide tanh FC layer and dropout 0.7, then the
softmax classifier, trained with a loss at every step.
"""

import math

import keras
from keras import ops

from avlad_tf.layers import conv_alstm_cell
from avlad_tf.layers import conv_pooling
from avlad_tf.layers import netvlad

PAPER_UNITS = 512
PAPER_DENSE_UNITS = 1024
PAPER_DROPOUT_RATE = 0.7
ATTENTIONS = ("appearance", "motion")


def _is_positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_arguments(
    units, dense_units, dropout_rate, kernel_size, pool, attention, weight_decay
):
    for name, value in (("units", units), ("dense_units", dense_units)):
        if not _is_positive_int(value):
            raise ValueError(
                f"{name} must be a positive int. Received: {name}={value!r}"
            )
    if not 0.0 <= float(dropout_rate) < 1.0:
        raise ValueError(
            f"dropout_rate must be in [0, 1). Received: dropout_rate={dropout_rate!r}"
        )
    # 'same' padding centres only an odd kernel on each position.
    if not _is_positive_int(kernel_size) or kernel_size % 2 == 0:
        raise ValueError(
            f"kernel_size must be a positive odd int. Received: kernel_size={kernel_size!r}"
        )
    if not _is_positive_int(pool):
        raise ValueError(
            f"spatial_pool_size must be a positive int. Received: spatial_pool_size={pool!r}"
        )
    if attention not in ATTENTIONS:
        raise ValueError(
            f"attention must be one of {ATTENTIONS}. Received: attention={attention!r}"
        )
    if float(weight_decay) < 0:
        raise ValueError(
            f"weight_decay must be >= 0. Received: weight_decay={weight_decay!r}"
        )


@keras.saving.register_keras_serializable(package="avlad_tf")
class ConvALSTM(keras.layers.Layer):
    """VideoLSTM: a convolutional attention LSTM over a video's conv maps.

    Args:
        units: channels U of the hidden state, the cell and the attention
            network (512 in VideoLSTM).
        dense_units: width of the tanh FC layer read by the classifier
            (1024 in VideoLSTM).
        dropout_rate: dropout after that layer (0.7 in VideoLSTM).
        kernel_size: gate kernels (3 in VideoLSTM).
        spatial_pool_size: ReLU and max pool applied to each frame's map
            first (`conv_pooling.rectified_pool`): 2 turns VGG16's pre-ReLU
            conv5_3 into pool5, VideoLSTM's input; 1 keeps the map.
        attention: `'appearance'` (from X_t) or `'motion'` (from a ConvLSTM
            over `attention_inputs`, the flow stream's maps).
        weight_decay: slim's decay·Σw²/2 on every kernel (not the biases).
        **kwargs: base `Layer` arguments (`name`, `trainable`, ...).

    Input shape:
        `(batch, time, height, width, channels)` with known height, width and
        channels (they size the FC layer); with `attention='motion'` also
        `attention_inputs` `(batch, time, height, width, channels')`.

    Output shape:
        `(batch, dense_units)`: the mean over time of the per-step FC
        outputs. With `return_sequences=True` also the steps
        `(batch, time, dense_units)`; with `return_attention=True` also the
        attention maps A_t `(batch, time, height', width')` (float32, each
        sums to 1; height' = ceil(height / spatial_pool_size)), in that
        order.

    Example:
        >>> features = keras.random.normal((2, 25, 14, 14, 512))
        >>> ConvALSTM()(features).shape
        (2, 1024)
    """

    def __init__(
        self,
        *,
        units=PAPER_UNITS,
        dense_units=PAPER_DENSE_UNITS,
        dropout_rate=PAPER_DROPOUT_RATE,
        kernel_size=3,
        spatial_pool_size=2,
        attention="appearance",
        weight_decay=0.0,
        **kwargs,
    ):
        _check_arguments(
            units,
            dense_units,
            dropout_rate,
            kernel_size,
            spatial_pool_size,
            attention,
            weight_decay,
        )
        super().__init__(**kwargs)
        self.units = units
        self.dense_units = dense_units
        self.dropout_rate = float(dropout_rate)
        self.kernel_size = kernel_size
        self.spatial_pool_size = spatial_pool_size
        self.attention = attention
        self.weight_decay = float(weight_decay)
        self.cell = conv_alstm_cell.ConvALSTMCell(
            units=units,
            kernel_size=kernel_size,
            attention=attention,
            weight_decay=self.weight_decay,
            name="cell",
            dtype=self.dtype_policy,
        )
        self.rnn = keras.layers.RNN(
            self.cell, return_sequences=True, name="rnn", dtype=self.dtype_policy
        )
        self.dropout = keras.layers.Dropout(self.dropout_rate, dtype=self.dtype_policy)

    def _grid(self, shape):
        size = self.spatial_pool_size
        return math.ceil(shape[2] / size), math.ceil(shape[3] / size)

    def build(self, inputs_shape, attention_inputs_shape=None):
        netvlad.check_video_features_shape("ConvALSTM", inputs_shape)
        if None in tuple(inputs_shape[2:4]):
            raise ValueError(
                "ConvALSTM needs a known height and width (they size the FC "
                f"layer). Received: input_shape={tuple(inputs_shape)}"
            )
        self._check_attention_shape(inputs_shape, attention_inputs_shape)
        u, k, depth = self.units, self.kernel_size, inputs_shape[-1]
        rows, cols = self._grid(inputs_shape)
        self._flat_size = rows * cols * u
        shapes = {
            "attention_input_kernel": (depth, u),  # W_xa, 1x1
            "attention_bias": (u,),  # b_a
            "initial_state_kernel": (k, k, depth, 2 * u),  # H_0 and C_0
            "initial_state_bias": (2 * u,),
        }
        channels = depth + u
        if self.attention == "motion":
            motion = attention_inputs_shape[-1]
            shapes["motion_kernel"] = (motion, 4 * u)  # W_m, 1x1
            shapes["motion_bias"] = (4 * u,)
            shapes["motion_initial_state_kernel"] = (motion, 2 * u)
            shapes["motion_initial_state_bias"] = (2 * u,)
            channels += 4 * u
        shapes["dense_kernel"] = (self._flat_size, self.dense_units)
        shapes["dense_bias"] = (self.dense_units,)
        conv_alstm_cell.add_weights(self, shapes, self.weight_decay)
        self.rnn.build((None, None, rows, cols, channels))

    def _check_attention_shape(self, inputs_shape, attention_inputs_shape):
        if (attention_inputs_shape is None) != (self.attention == "appearance"):
            raise ValueError(
                "ConvALSTM takes attention_inputs (the flow stream's maps) "
                f"exactly when attention='motion'. Received: attention="
                f"{self.attention!r}, attention_inputs_shape={attention_inputs_shape}"
            )
        if attention_inputs_shape is None:
            return
        netvlad.check_video_features_shape(
            "ConvALSTM attention_inputs", attention_inputs_shape
        )
        if tuple(attention_inputs_shape[2:4]) != tuple(inputs_shape[2:4]):
            raise ValueError(
                "attention_inputs must have the inputs' height and width. "
                f"Received: input_shape={tuple(inputs_shape)}, "
                f"attention_inputs_shape={tuple(attention_inputs_shape)}"
            )

    def _pooled(self, maps):
        """Each frame's rectified pool5 map: (B, T, h, w, D) -> (B, T, h', w', D)."""
        batch, time = ops.shape(maps)[0], ops.shape(maps)[1]
        frames = ops.reshape(maps, (-1, *maps.shape[2:]))  # (B·T, h, w, D)
        frames = conv_pooling.rectified_pool(frames, self.spatial_pool_size)
        return ops.reshape(frames, (batch, time, *frames.shape[1:]))

    def _initial_state(self, maps, kernel, bias):
        """`[state, cell]` (B, h', w', U) from the clip's mean map."""
        # float32 mean: float16 sums over long clips can overflow.
        mean = ops.cast(ops.mean(ops.cast(maps, "float32"), axis=1), maps.dtype)
        if len(kernel.shape) == 4:
            z = ops.conv(mean, kernel, padding="same")
        else:
            z = ops.einsum("bhwd,du->bhwu", mean, kernel)
        return ops.split(ops.tanh(z + bias), 2, axis=-1)

    def _recur(self, inputs, attention_inputs, training):
        """H_t (B, T, h', w', U) and A_t (B, T, h', w') of every frame."""
        maps = self._pooled(inputs)  # (B, T, h', w', D)
        projected = ops.einsum("bthwd,du->bthwu", maps, self.attention_input_kernel)
        frames = [maps, projected + self.attention_bias]
        states = self._initial_state(
            maps, self.initial_state_kernel, self.initial_state_bias
        )
        if self.attention == "motion":
            motion = self._pooled(attention_inputs)  # (B, T, h', w', D')
            gates = ops.einsum("bthwd,dk->bthwk", motion, self.motion_kernel)
            frames.append(gates + self.motion_bias)
            states += self._initial_state(
                motion, self.motion_initial_state_kernel, self.motion_initial_state_bias
            )
        # One input per frame for the RNN: (B, T, h', w', D + U (+ 4U)).
        steps = self.rnn(
            ops.concatenate(frames, axis=-1), initial_state=states, training=training
        )
        states, attention = ops.split(steps, [self.units], axis=-1)
        return states, ops.cast(attention[..., 0], "float32")

    def call(
        self,
        inputs,
        attention_inputs=None,
        return_sequences=False,
        return_attention=False,
        training=None,
    ):
        self._check_attention_shape(
            inputs.shape, None if attention_inputs is None else attention_inputs.shape
        )
        states, attention = self._recur(inputs, attention_inputs, training)
        batch, time = ops.shape(states)[0], ops.shape(states)[1]
        # Row-major (h', w', U), as the release flattens each H_t.
        flat = ops.reshape(states, (batch, time, self._flat_size))  # (B, T, h'·w'·U)
        steps = ops.tanh(
            ops.einsum("btf,fd->btd", flat, self.dense_kernel) + self.dense_bias
        )
        steps = self.dropout(steps, training=training)  # (B, T, dense_units)
        outputs = (ops.mean(steps, axis=1),)  # (B, dense_units)
        if return_sequences:
            outputs += (steps,)
        if return_attention:
            outputs += (attention,)  # (B, T, h', w')
        return outputs[0] if len(outputs) == 1 else outputs

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dense_units)

    def compute_output_spec(
        self,
        inputs,
        attention_inputs=None,
        return_sequences=False,
        return_attention=False,
        training=None,
    ):
        batch, time = inputs.shape[:2]
        pooled = keras.KerasTensor((batch, self.dense_units), dtype=self.compute_dtype)
        outputs = (pooled,)
        if return_sequences:
            shape = (batch, time, self.dense_units)
            outputs += (keras.KerasTensor(shape, dtype=self.compute_dtype),)
        if return_attention:
            shape = (batch, time, *self._grid(inputs.shape))
            outputs += (keras.KerasTensor(shape, dtype="float32"),)
        return outputs[0] if len(outputs) == 1 else outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "dense_units": self.dense_units,
                "dropout_rate": self.dropout_rate,
                "kernel_size": self.kernel_size,
                "spatial_pool_size": self.spatial_pool_size,
                "attention": self.attention,
                "weight_decay": self.weight_decay,
            }
        )
        return config
