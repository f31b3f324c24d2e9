"""Inflates a 2-D image network into a 3-D video network, I3D style.

Carreira & Zisserman ("Quo Vadis, Action Recognition? A New Model and the
Kinetics Dataset", CVPR 2017, Sec. 2.4) bootstrap a 3-D network from an
ImageNet one: each kh x kw kernel becomes t x kh x kw, repeated over time and
divided by t, so a "boring video" (one frame repeated) gives the 2-D
network's activations at every time step. `inflate` does this for functional
Keras models (keras.applications' VGG16, ResNet50, InceptionV3...), keeping
layer names and weights. Per layer kind (a name in the dicts overrides):

- convolutions: t = kh for square kernels, 1 for non-square ones
  (InceptionV3's 1x7 / 7x1 factor space, not time); temporal stride 1;
- max / average pools: temporal window 1, stride 1 (I3D strides time by 2
  at its first conv and from its third pool on);
- batch norm, activations, merges, dropout: the same layer, with positive
  axes shifted past the new time axis (Keras' ResNet50 and InceptionV3 say
  axis=3 for channels); `ZeroPadding2D` / `Cropping2D` act on space only;
  global pools pool time too. Any other layer raises a ValueError.

A window of t > 1 steps is padded in time by (t - 1) // 2 steps before and
t // 2 after, even where the 2-D layer pads nothing (ResNet's 7x7 stem sits
behind a `ZeroPadding2D`), so T frames give ceil(T / stride) steps.
`time_padding`:

- 'edge' (default): copies of the first / last frame, so the boring-video
  property holds at every step, strided layers included. A 3-D layer cannot
  pad space 'same' and time 'valid': a 'same' 2-D layer runs with temporal
  stride 1 on the edge-padded clip, then `TemporalSlice` drops the steps that
  read its own zero padding and strides (a cost only where such a layer is
  strided in time);
- 'zeros': I3D's SAME zero padding (the 3-D layer's own 'same'; zero frames
  before a 'valid' one): the property holds only on the steps whose
  receptive field stays inside the clip.
"""

import keras
from keras import ops
import numpy as np

TIME_PADDINGS = ("edge", "zeros")


@keras.saving.register_keras_serializable(package="avlad_tf")
class TemporalPadding(keras.layers.Layer):
    """Pads axis 1 (time) of `(B, T, H, W, C)` by `before` and `after` steps,
    with copies of the edge frames (`mode='edge'`) or zeros."""

    def __init__(self, *, before, after, mode="edge", **kwargs):
        super().__init__(**kwargs)
        if mode not in TIME_PADDINGS:
            raise ValueError(f"mode must be one of {TIME_PADDINGS}, got {mode!r}.")
        self.before, self.after, self.mode = before, after, mode

    def call(self, x):
        if self.mode == "zeros":
            pads = [[0, 0], [self.before, self.after]] + [[0, 0]] * (len(x.shape) - 2)
            return ops.pad(x, pads)
        first = ops.repeat(x[:, :1], self.before, axis=1)  # (B, before, ...)
        last = ops.repeat(x[:, -1:], self.after, axis=1)  # (B, after, ...)
        return ops.concatenate([first, x, last], axis=1)  # (B, T + before + after, ...)

    def compute_output_shape(self, input_shape):
        time = input_shape[1]
        time = None if time is None else time + self.before + self.after
        return (input_shape[0], time, *input_shape[2:])

    def get_config(self):
        config = super().get_config()
        return dict(config, before=self.before, after=self.after, mode=self.mode)


@keras.saving.register_keras_serializable(package="avlad_tf")
class TemporalSlice(keras.layers.Layer):
    """`x[:, start:stop:step]` on `(B, T, ...)`: keeps every `step`-th time
    step of `start:stop` (Python slice rules, `stop` may be negative)."""

    def __init__(self, *, start=0, stop=None, step=1, **kwargs):
        super().__init__(**kwargs)
        self.start, self.stop, self.step = start, stop, step

    def call(self, x):
        return x[:, self.start : self.stop : self.step]

    def compute_output_shape(self, input_shape):
        time = input_shape[1]
        if time is not None:
            time = len(range(time)[self.start : self.stop : self.step])
        return (input_shape[0], time, *input_shape[2:])

    def get_config(self):
        config = super().get_config()
        return dict(config, start=self.start, stop=self.stop, step=self.step)


def inflate(
    model_2d,
    *,
    time_kernels=None,
    time_strides=None,
    time_windows=None,
    time_padding="edge",
    num_frames=None,
):
    """The 3-D version of the functional (or Sequential) `model_2d`.

    Args:
        model_2d: a channels-last image model, `(N, H, W, C)` inputs.
        time_kernels: `{conv_name: t}`, temporal kernel sizes that replace
            the default (kh for a square kernel, else 1).
        time_strides: `{conv_or_pool_name: s}`, temporal strides (default 1).
        time_windows: `{pool_name: t}`, temporal pool windows (default 1).
        time_padding: 'edge' or 'zeros' (module docstring).
        num_frames: the static length T of the inputs, None for any.

    Returns:
        A functional model on `(N, T, H, W, C)` clips, with the same layer
        names, 2-D weights copied and kernels inflated (repeated over time,
        divided by t).

    Raises:
        ValueError: for a layer it cannot inflate, channels-first data, a name
            in the dicts that is not a layer of the matching kind, branches
            merged at different temporal strides, or an unknown
            `time_padding`.
    """
    if time_padding not in TIME_PADDINGS:
        raise ValueError(f"time_padding must be one of {TIME_PADDINGS}.")
    if isinstance(model_2d, keras.Sequential):
        # A functional view of the same layers (a Sequential has one input).
        model_2d = keras.Model(model_2d.inputs[0], model_2d.outputs[0])
    settings = {
        "kernels": dict(time_kernels or {}),
        "strides": dict(time_strides or {}),
        "windows": dict(time_windows or {}),
    }
    _check_names(model_2d, settings)
    wrappers = {}  # layer name: (TemporalPadding or None, TemporalSlice or None)

    def clone(layer):
        return _inflate_layer(layer, settings, time_padding, wrappers)

    inputs = keras.tree.map_structure(
        lambda x: keras.Input(
            batch_shape=(x.shape[0], num_frames, *x.shape[1:]), dtype=x.dtype
        ),
        model_2d.input,
    )
    model_3d = keras.models.clone_model(
        model_2d,
        input_tensors=inputs,
        clone_function=clone,
        call_function=_caller(wrappers, settings["strides"]),
    )
    _copy_weights(model_2d, model_3d)
    return model_3d


def _caller(wrappers, time_strides):
    """clone_model's `call_function`: calls a 3-D layer between its time
    padding and slice (`wrappers`), and checks that merged branches share a
    temporal stride (a wrong `time_strides` fails here, not at run time)."""
    spacings = {}  # id(KerasTensor): frames between its time steps

    def call(layer, *args, **kwargs):
        inputs = keras.tree.flatten((args, kwargs))
        spacing = {
            spacings.get(id(x), 1) for x in inputs if isinstance(x, keras.KerasTensor)
        }
        if len(spacing) > 1:
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}) merges inputs "
                f"strided {sorted(spacing)} in time; stride its branches alike."
            )
        pad, crop = wrappers.get(layer.name, (None, None))
        if pad is not None:
            args = (pad(args[0]), *args[1:])
        outputs = layer(*args, **kwargs)
        outputs = outputs if crop is None else crop(outputs)
        spacing = max(spacing, default=1) * time_strides.get(layer.name, 1)
        for x in keras.tree.flatten(outputs):
            spacings[id(x)] = spacing
        return outputs

    return call


_CONVS = {keras.layers.Conv2D: keras.layers.Conv3D}
_POOLS = {
    keras.layers.MaxPooling2D: keras.layers.MaxPooling3D,
    keras.layers.AveragePooling2D: keras.layers.AveragePooling3D,
}
_GLOBAL_POOLS = {
    keras.layers.GlobalAveragePooling2D: keras.layers.GlobalAveragePooling3D,
    keras.layers.GlobalMaxPooling2D: keras.layers.GlobalMaxPooling3D,
}
_SPACE_ONLY = {
    keras.layers.ZeroPadding2D: (keras.layers.ZeroPadding3D, "padding"),
    keras.layers.Cropping2D: (keras.layers.Cropping3D, "cropping"),
}
# Layers that act per position (or per channel): the same layer works on
# 5-D tensors once a positive `axis` skips the new time axis.
_SAME_LAYER = tuple(
    getattr(keras.layers, name)
    for name in (
        "Activation ReLU LeakyReLU ELU Softmax Add Subtract Multiply Average "
        "Maximum Minimum Concatenate Dropout Rescaling BatchNormalization"
    ).split()
)


def _check_names(model_2d, settings):
    """Each name in the dicts must be a layer that takes that setting."""
    kinds = {
        "kernels": tuple(_CONVS),
        "strides": (*_CONVS, *_POOLS),
        "windows": tuple(_POOLS),
    }
    for setting, names in settings.items():
        known = {l.name for l in model_2d.layers if type(l) in kinds[setting]}
        if set(names) - known:
            raise ValueError(
                f"time_{setting} names no such convolution or pool in "
                f"{model_2d.name!r}: {sorted(set(names) - known)}."
            )


def _inflate_layer(layer, settings, time_padding, wrappers):
    """The 3-D layer for `layer`; records its time padding in `wrappers`."""
    config = layer.get_config()
    kind = type(layer)
    if config.get("data_format", "channels_last") != "channels_last":
        raise ValueError(f"Cannot inflate channels-first layer {layer.name!r}.")
    if kind in _SAME_LAYER:
        return kind.from_config(_shift_axes(config))
    if kind in _GLOBAL_POOLS:
        return _GLOBAL_POOLS[kind].from_config(config)
    if kind in _SPACE_ONLY:
        kind_3d, key = _SPACE_ONLY[kind]
        config[key] = ((0, 0), *config[key])
        return kind_3d.from_config(config)
    if kind not in _CONVS and kind not in _POOLS:
        raise ValueError(
            f"Cannot inflate layer {layer.name!r} of class {kind.__name__}."
        )
    size_key = "kernel_size" if kind in _CONVS else "pool_size"
    height, width = config[size_key]
    if kind in _CONVS:
        default = height if height == width else 1
        window = settings["kernels"].get(layer.name, default)
        config["dilation_rate"] = (1, *config["dilation_rate"])
    else:
        window = settings["windows"].get(layer.name, 1)
    stride = settings["strides"].get(layer.name, 1)
    pad, stride, crop = _time_wrapping(
        layer.name, window, stride, config["padding"], time_padding
    )
    wrappers[layer.name] = (pad, crop)
    config[size_key] = (window, height, width)
    config["strides"] = (stride, *config["strides"])
    return {**_CONVS, **_POOLS}[kind].from_config(config)


def _time_wrapping(name, window, stride, padding, time_padding):
    """(TemporalPadding or None, the 3-D layer's temporal stride,
    TemporalSlice or None) for a layer of temporal `window` and `stride`."""
    if window == 1 or (time_padding == "zeros" and padding == "same"):
        # The 3-D layer's own time padding: none for one step, else I3D's.
        return None, stride, None
    # 'same' amounts for stride 1; with stride s they still give ceil(T / s)
    # steps, without depending on T (unknown when the graph is built).
    before = (window - 1) // 2
    after = window - 1 - before
    pad = TemporalPadding(
        before=before, after=after, mode=time_padding, name=f"{name}_time_pad"
    )
    if padding == "valid":
        return pad, stride, None
    # 'same' pads time again by (before, after) zero steps: keep the T steps
    # that read only real or edge frames, then stride.
    crop = TemporalSlice(
        start=before, stop=-after, step=stride, name=f"{name}_time_crop"
    )
    return pad, 1, crop


def _shift_axes(config):
    """`config` with non-negative axes >= 1 moved past the new time axis
    (InceptionV3 and ResNet50 say axis=3 for channels)."""
    if "axis" not in config:
        return config
    axes = config["axis"]
    shift = [a + 1 if a >= 1 else a for a in np.atleast_1d(axes).tolist()]
    return {**config, "axis": shift if isinstance(axes, list | tuple) else shift[0]}


def _copy_weights(model_2d, model_3d):
    """Copies each layer's weights by name, convolution kernels inflated."""
    for layer in model_2d.layers:
        if not layer.weights:
            continue
        inflated = model_3d.get_layer(layer.name)
        weights = layer.get_weights()
        if type(layer) in _CONVS:
            weights[0] = _inflate_kernel(weights[0], inflated.kernel_size[0])
        inflated.set_weights(weights)


def _inflate_kernel(kernel, time):
    """(kh, kw, C_in, C_out) -> (t, kh, kw, C_in, C_out): the kernel on each
    step, over t, so a constant clip sums back to the 2-D response."""
    return np.repeat(kernel[np.newaxis] / time, time, axis=0)
