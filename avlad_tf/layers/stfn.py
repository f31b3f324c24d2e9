"""STFN: temporal res-inception modules fusing two streams.

The STFN poster ("Spatio-Temporal Fusion Networks" for action recognition;
its text names no authors or venue): per-segment features of an appearance
(RGB) and a motion (optical flow) CNN, "temporal dynamic information
extraction using Temporal res-inception modules" (`layers/res_inception.py`)
and "fusion of two temporal dynamics using consecutive res-inception
blocks", the spatio-temporal fusion blocks (STFB): "Bi-direction (best) /
Uni-direction", fusion by "Avg (best), Max, Multiply", "Num. of inputs for
Res-Inc: 7 (best)". Reported (ResNet-101, HMDB51 / UCF101): feature fusion
69.2 / 92.0, 1 block 69.6 / 93.2, 2 blocks 70.4 / 93.5.

The poster gives no equations. This layer reads it as follows (also in
docs/LAYER.md); a = appearance, m = motion, each `(B, T, D)`, RI a
`TemporalResInception` with weights of its own:

    a, m = RI(a), RI(m)                  per-stream dynamics (the stem)
    per block:  f = fuse(a, m)           avg, max or multiply, per element
                a = RI(f, shortcut=a)    motion into appearance
                m = RI(f, shortcut=m)    'bi'; 'uni': m = RI(m)
    descriptor = mean over T of fuse(a, m)

A block injects the other stream into a module's residual branch while the
shortcut keeps the stream's own features, as ST-ResNet adds and
ST-Multiplier multiplies motion into the appearance stream's residual units
(the works the poster compares with). Fusing *after* the modules instead
(a = fuse(a, m), m = fuse(m, a)) would make the two streams equal after one
'bi' block, because all three fusions are symmetric; for the same reason
'bi' feeds both modules one fused sequence f, computed from the values
before the block. With no blocks the layer is the poster's "feature fusion"
(1): each stream's module, then one fusion. The head always fuses the two
streams, so the number of blocks is the only difference between the
poster's rows (1) - (3).
"""

import keras
from keras import ops

from avlad_tf.layers import frame_lstm
from avlad_tf.layers import netvlad
from avlad_tf.layers import res_inception

PAPER_NUM_BLOCKS = 2
DIRECTIONS = ("uni", "bi")
FUSION_OPS = ("avg", "max", "multiply")


def check_settings(*, num_blocks, direction, fusion_op, prefix=""):
    """Raises ValueError on a bad STFN setting; `prefix` + the argument's
    name is what the message calls it (`build_model.stfn_` for bindings)."""
    if (
        not (isinstance(num_blocks, int) and not isinstance(num_blocks, bool))
        or num_blocks < 0
    ):
        raise ValueError(
            f"{prefix}num_blocks must be an int >= 0 (0 is feature fusion). "
            f"Received: {prefix}num_blocks={num_blocks!r}"
        )
    if direction not in DIRECTIONS:
        raise ValueError(
            f"{prefix}direction must be one of {DIRECTIONS}. "
            f"Received: {prefix}direction={direction!r}"
        )
    if fusion_op not in FUSION_OPS:
        raise ValueError(
            f"{prefix}fusion_op must be one of {FUSION_OPS}. "
            f"Received: {prefix}fusion_op={fusion_op!r}"
        )


def fuse(a, b, fusion_op):
    """Element-wise fusion of two `(B, T, D)` sequences; symmetric in a, b."""
    if fusion_op == "avg":
        return (a + b) * 0.5
    if fusion_op == "max":
        return ops.maximum(a, b)
    return a * b


@keras.saving.register_keras_serializable(package="avlad_tf")
class SpatioTemporalFusion(keras.layers.Layer):
    """STFN over an appearance and a motion stream's per-segment features.

    Args:
        num_blocks: spatio-temporal fusion blocks after the per-stream
            modules; 0 is the poster's feature fusion, 2 its best.
        direction: `'bi'` (each stream's modules read the fused sequence;
            the poster's best) or `'uni'` (only the appearance stream's:
            motion into appearance).
        fusion_op: `'avg'` (the poster's best), `'max'` or `'multiply'`.
        kernel_sizes, filters, weight_decay: every module's
            (`res_inception.TemporalResInception`).
        **kwargs: base `Layer` arguments (`name`, `trainable`, ...).

    Input shape:
        `inputs` (appearance) `(batch, time, height, width, channels)` and
        `motion_inputs` `(batch, time, height', width', channels)`: the same
        number of segments and of channels; each frame's map is rectified
        and averaged over space.

    Output shape:
        `(batch, channels)`.

    Example:
        >>> rgb = keras.random.normal((2, 7, 7, 7, 512))
        >>> flow = keras.random.normal((2, 7, 7, 7, 512))
        >>> SpatioTemporalFusion()(rgb, motion_inputs=flow).shape
        (2, 512)
    """

    def __init__(
        self,
        *,
        num_blocks=PAPER_NUM_BLOCKS,
        direction="bi",
        fusion_op="avg",
        kernel_sizes=res_inception.PAPER_KERNEL_SIZES,
        filters=None,
        weight_decay=0.0,
        **kwargs,
    ):
        check_settings(num_blocks=num_blocks, direction=direction, fusion_op=fusion_op)
        res_inception.check_module_arguments(kernel_sizes, filters, weight_decay)
        super().__init__(**kwargs)
        self.num_blocks = num_blocks
        self.direction = direction
        self.fusion_op = fusion_op
        module = dict(
            kernel_sizes=kernel_sizes,
            filters=filters,
            weight_decay=weight_decay,
            dtype=self.dtype_policy,
        )
        # Index 0: the stem; i > 0: block i. A fixed loop over the blocks.
        names = ["stem"] + [f"block{i}" for i in range(1, num_blocks + 1)]
        self.appearance = [
            res_inception.TemporalResInception(name=f"appearance_{n}", **module)
            for n in names
        ]
        self.motion = [
            res_inception.TemporalResInception(name=f"motion_{n}", **module)
            for n in names
        ]

    def build(self, inputs_shape, motion_inputs_shape):
        netvlad.check_video_features_shape("SpatioTemporalFusion", inputs_shape)
        netvlad.check_video_features_shape(
            "SpatioTemporalFusion motion_inputs", motion_inputs_shape
        )
        if motion_inputs_shape[-1] != inputs_shape[-1]:
            raise ValueError(
                "SpatioTemporalFusion fuses per channel: motion_inputs must "
                f"have the inputs' channels. Received: input_shape="
                f"{tuple(inputs_shape)}, motion_inputs_shape={tuple(motion_inputs_shape)}"
            )
        for module in self.appearance + self.motion:
            module.build((None, None, inputs_shape[-1]))

    def call(self, inputs, motion_inputs, training=None):
        a = frame_lstm.rectified_frame_means(inputs, self.compute_dtype)  # (B, T, D)
        m = frame_lstm.rectified_frame_means(motion_inputs, self.compute_dtype)
        a = self.appearance[0](a, training=training)
        m = self.motion[0](m, training=training)
        for to_a, to_m in zip(self.appearance[1:], self.motion[1:]):
            fused = fuse(a, m, self.fusion_op)  # (B, T, D)
            into_m = fused if self.direction == "bi" else m
            a, m = (
                to_a(fused, shortcut=a, training=training),
                to_m(into_m, shortcut=m, training=training),
            )
        head = fuse(a, m, self.fusion_op)  # (B, T, D)
        return res_inception.temporal_mean(head, self.compute_dtype)  # (B, D)

    def compute_output_shape(self, inputs_shape, motion_inputs_shape=None):
        return (inputs_shape[0], inputs_shape[-1])

    def compute_output_spec(self, inputs, motion_inputs, training=None):
        shape = (inputs.shape[0], inputs.shape[-1])
        return keras.KerasTensor(shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        module = self.appearance[0].get_config()
        config.update(
            {
                "num_blocks": self.num_blocks,
                "direction": self.direction,
                "fusion_op": self.fusion_op,
                **{k: module[k] for k in ("kernel_sizes", "filters", "weight_decay")},
            }
        )
        return config
