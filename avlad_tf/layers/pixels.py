"""The release's pixel arithmetic as a layer, for uint8 crops.

The input pipeline normally ships float32 crops that are already on the
release's scale (BGR minus [104, 117, 123], flow minus 128; docs/RELEASE.md
Sec. 3). For evaluation it can ship the uint8 crops instead
(`evaluate.normalize_on_device`): a quarter of the bytes and none of the host's
float passes, which dominate 5-crop batches. This layer then gives each
uint8 value the float32 the host computes for it: the host's operations, in
its order, run once on the 256 values into a table that the layer looks up.
A lookup leaves a compiler nothing to fuse (XLA contracts a multiply and a
subtraction into one rounding), so the values are bit-identical to the
host's on every backend (`tests/layers/pixels_test.py`).

uint8 flow ships channels-first, `[..., 2L, S, S]`: flow planes are decoded
one per JPEG, and interleaving them into channels on the host is a byte-wise
transpose of the whole bag that costs more than decoding it; the layer
transposes on the device instead.
"""

import keras
from keras import ops
import numpy as np

# The constants the host pipeline shares (plain Python, no TensorFlow).
# `UINT8_DATA_FORMATS` and `RELEASE_BGR_MEANS` stay importable from here:
# the reader, the model builder and tests use them under this name.
from avlad_tf.data.pixel_rules import FLOW_MEAN
from avlad_tf.data.pixel_rules import RELEASE_BGR_MEANS
from avlad_tf.data.pixel_rules import UINT8_DATA_FORMATS

DATA_FORMATS = ("channels_last", "channels_first")
# `tf.image.convert_image_dtype(uint8 → float32)` multiplies by this float32.
_UINT8_TO_UNIT = np.float32(1.0 / 255.0)


def pixel_table(modality, *, bgr_means=RELEASE_BGR_MEANS, convert_before_resize=True):
    """The host's float32 value of every uint8 evaluation pixel.

    Evaluation crops are not resized, so the host's steps (docs/RELEASE.md
    Sec. 3) are: x · (1/255) (`convert_before_resize`), · 255, minus the mean.
    NumPy rounds each float32 operation as TensorFlow does.

    Returns:
        float32 `[256]` for flow; `[256 · 3]` for RGB, value k of BGR channel
        c at 3k + c.
    """
    x = np.arange(256, dtype=np.float32)
    if convert_before_resize:
        x = x * _UINT8_TO_UNIT
    x = x * np.float32(255.0)
    if modality == "flow":
        return x - np.float32(FLOW_MEAN)
    return (x[:, None] - np.asarray(bgr_means, np.float32)).reshape(-1)


@keras.saving.register_keras_serializable(package="avlad_tf")
class ReleasePixels(keras.layers.Layer):
    """uint8 crops → the release's float32 network input `[..., S, S, C]`.

    Args:
        modality: 'rgb' (input in RGB order, output BGR minus `bgr_means`) or
            'flow' (minus 128).
        data_format: of the input, 'channels_last' `[..., S, S, C]` or
            'channels_first' `[..., C, S, S]`; default `UINT8_DATA_FORMATS`.
        bgr_means: per-channel means in BGR order.
        convert_before_resize: the release's x · (1/255) · 255 (True) or the
            original RGB model's x · 255 (False, Sec. 11.2).

    Always computes in float32, whatever the dtype policy.
    """

    def __init__(
        self,
        modality,
        *,
        data_format=None,
        bgr_means=RELEASE_BGR_MEANS,
        convert_before_resize=True,
        **kwargs,
    ):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        if modality not in UINT8_DATA_FORMATS:
            raise ValueError(
                f"modality must be 'rgb' or 'flow'. Received: {modality!r}"
            )
        data_format = data_format or UINT8_DATA_FORMATS[modality]
        if data_format not in DATA_FORMATS:
            raise ValueError(
                f"data_format must be one of {DATA_FORMATS}. Received: {data_format!r}"
            )
        self.data_format = data_format
        if len(bgr_means) != 3:
            raise ValueError(f"bgr_means needs 3 values. Received: {bgr_means}")
        self.modality = modality
        self.bgr_means = tuple(float(m) for m in bgr_means)
        self.convert_before_resize = bool(convert_before_resize)

    def call(self, crops):
        if self.data_format == "channels_first":
            crops = ops.moveaxis(crops, -3, -1)  # [..., C, S, S] -> [..., S, S, C]
        values = ops.cast(crops, "int32")
        table = pixel_table(
            self.modality,
            bgr_means=self.bgr_means,
            convert_before_resize=self.convert_before_resize,
        )  # [256] flow, [256 · 3] RGB: value k of BGR channel c at 3k + c
        if self.modality == "rgb":
            # RGB → BGR on the channel axis, then each channel its own column.
            values = ops.flip(values, axis=-1) * 3 + np.arange(3, dtype=np.int32)
        return ops.take(table, values)

    def compute_output_spec(self, crops):
        shape = tuple(crops.shape)
        if self.data_format == "channels_first":
            shape = shape[:-3] + shape[-2:] + shape[-3:-2]
        return keras.KerasTensor(shape, dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.update(
            modality=self.modality,
            data_format=self.data_format,
            bgr_means=self.bgr_means,
            convert_before_resize=self.convert_before_resize,
        )
        return config


# What each backbone's weights were trained on. The pipeline always feeds
# the release's VGG input (above); a backbone whose rule differs converts it
# in its first layer, so the rule travels inside the model and its export.
INPUT_RULES = {
    "vgg16": "release_vgg",
    "tiny": "release_vgg",
    "inception_v3": "inception",
    # I3D's rule is the same: RGB x / 127.5 - 1, flow clipped to the bound
    # and scaled to [-1, 1] (docs/I3D.md).
    "i3d": "inception",
    "tiny_i3d": "inception",
    # C3D's Caffe input is BGR 0..255 less a mean clip, the release's rule
    # but for the means; Karpathy et al.'s networks have no released
    # weights, so they take the release's (docs/CLIP_MODELS.md).
    **dict.fromkeys(("c3d", "tiny_c3d"), "release_vgg"),
    **{
        f"{size}{variant}": "release_vgg"
        for size in ("", "tiny_")
        for variant in ("single_frame", "early_fusion", "late_fusion", "slow_fusion")
    },
}


@keras.saving.register_keras_serializable(package="avlad_tf")
class InceptionInput(keras.layers.Layer):
    """The release's VGG input → keras.applications InceptionV3's input.

    InceptionV3's ImageNet weights were trained on RGB scaled to [−1, 1]
    (`keras.applications.inception_v3.preprocess_input`: x / 127.5 − 1);
    the pipeline feeds BGR minus `bgr_means` (RGB) or flow minus 128. This
    undoes the means, restores RGB order and rescales; flow planes get the
    same [−1, 1] scale.

    Args:
        modality: 'rgb' or 'flow'.
        bgr_means: the means the pipeline subtracted, BGR order.
    """

    def __init__(self, modality, *, bgr_means=RELEASE_BGR_MEANS, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        if modality not in UINT8_DATA_FORMATS:
            raise ValueError(
                f"modality must be 'rgb' or 'flow'. Received: {modality!r}"
            )
        if len(bgr_means) != 3:
            raise ValueError(f"bgr_means needs 3 values. Received: {bgr_means}")
        self.modality = modality
        self.bgr_means = tuple(float(m) for m in bgr_means)

    def call(self, x):
        x = ops.cast(x, "float32")
        if self.modality == "flow":
            x = x + np.float32(FLOW_MEAN)  # back to 0..255
        else:
            x = x + np.asarray(self.bgr_means, np.float32)  # BGR 0..255
            x = ops.flip(x, axis=-1)  # BGR → RGB on the channel axis
        return x / np.float32(127.5) - np.float32(1.0)

    def compute_output_spec(self, x):
        return keras.KerasTensor(x.shape, dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.update(modality=self.modality, bgr_means=self.bgr_means)
        return config


def input_rule_of(model):
    """The input rule a built stream model applies: 'inception' if it holds
    an `InceptionInput` layer (also inside nested models), else the
    release's 'release_vgg'."""
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        if isinstance(layer, InceptionInput):
            return "inception"
        stack.extend(getattr(layer, "layers", []))
    return "release_vgg"
