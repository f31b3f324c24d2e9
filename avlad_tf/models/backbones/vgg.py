"""The release's VGG-16 and its tiny stand-in (docs/RELEASE.md Sec. 4).

- `build_vgg16`: the release's VGG-16 (`nets/vgg.py`). Layers are named as in
  `keras.applications.VGG16` (`block1_conv1` ... `block5_conv3`) so that its
  weights copy in by name; fc6 / fc7 are convolutions named `fc6` / `fc7`.
  conv4_3, conv5_3 and fc7 are built without activation: the model returns
  the **pre-ReLU** endpoint (Sec. 12.1; stock Keras VGG16 outputs post-ReLU).
  Endpoints: `conv5_3` (default, 14x14x512 at 224), `conv4_3` (28x28x512) and
  `fc7` (1x1x4096: fc6 as a 7x7 VALID conv + dropout, fc7 as a 1x1 conv).
- `build_tiny`: three small convs with the same endpoint semantics and layer
  names (`block4_conv3`, `block5_conv3`, `fc6`, `fc7`), a few thousand
  parameters, for tests and the toy dataset.

Weights: `None` (random), `'imagenet'` (downloaded by `keras.applications`),
or a local `keras.applications`-format weights file (`.h5` / `.weights.h5`;
its conv1_1 may take 3 channels or already 2·flow_stack, as the release's
two-stream flow VGG-16). RGB weights feeding another channel count (flow) get
their first conv converted by the release's rule (Sec. 4.3,
`flow_input.flow_kernel_from_rgb`). keras.applications' fc1 / fc2 are Dense
layers on the flattened 7x7x512 pool5 map; flattening is row-major (h, w, c),
so the fc1 kernel `[25088, 4096]` reshapes exactly to the fc6 conv kernel
`[7, 7, 512, 4096]` and fc2 to `[1, 1, 4096, 4096]`.
"""

import warnings

import h5py
import keras
import numpy as np

from avlad_tf import storage
from avlad_tf.layers import regularizers
from avlad_tf.models.backbones.flow_input import flow_kernel_from_rgb

# Output layer of each VGG endpoint (docs/RELEASE.md Sec. 4.2).
VGG16_ENDPOINTS = {
    "conv4_3": "block4_conv3",
    "conv5_3": "block5_conv3",
    "fc7": "fc7",
}
# (block, indices of its 3x3 convs, filters): the standard 2-2-3-3-3 layout.
_VGG16_BLOCKS = (
    (1, (1, 2), 64),
    (2, (1, 2), 128),
    (3, (1, 2, 3), 256),
    (4, (1, 2, 3), 512),
    (5, (1, 2, 3), 512),
)
# The tiny backbone keeps VGG's names for the convs that can be pooled.
_TINY_BLOCKS = ((1, (1,), 8), (4, (3,), 16), (5, (3,), 16))
_TINY_FC_UNITS = 16
# Convs whose output the release reads before ReLU (nets/vgg.py:172-206).
_PRE_RELU = ("block4_conv3", "block5_conv3")
# keras.applications names of the fc layers.
_KERAS_FC_NAMES = {"fc6": "fc1", "fc7": "fc2"}


def _conv(filters, size, name, *, relu, weight_decay, padding="same"):
    return keras.layers.Conv2D(
        filters,
        size,
        padding=padding,
        activation="relu" if relu else None,
        kernel_regularizer=regularizers.weight_decay(weight_decay),
        name=name,
    )


def _plain_cnn(
    blocks,
    *,
    input_channels,
    image_size,
    endpoint_layer,
    fc6_kernel,
    fc_units,
    weight_decay,
    fc_dropout_rate,
    name,
):
    """VGG-style stack of conv blocks, returning the (pre-ReLU) endpoint."""
    inputs = keras.Input((image_size, image_size, input_channels), name="frames")
    x = inputs
    for block, conv_indices, filters in blocks:
        for index in conv_indices:
            layer_name = f"block{block}_conv{index}"
            pre_relu = layer_name in _PRE_RELU
            x = _conv(
                filters, 3, layer_name, relu=not pre_relu, weight_decay=weight_decay
            )(x)
            if layer_name == endpoint_layer:
                return keras.Model(inputs, x, name=name)
            if pre_relu:
                x = keras.layers.ReLU(name=f"{layer_name}_relu")(x)
        x = keras.layers.MaxPooling2D(2, 2, name=f"block{block}_pool")(x)
    if x.shape[1] < fc6_kernel:
        raise ValueError(
            f"The fc7 endpoint needs a pool5 map of at least {fc6_kernel}x"
            f"{fc6_kernel} (fc6 is a {fc6_kernel}x{fc6_kernel} VALID conv); "
            f"image_size={image_size} gives {x.shape[1]}x{x.shape[2]}."
        )
    x = _conv(
        fc_units,
        fc6_kernel,
        "fc6",
        relu=True,
        padding="valid",
        weight_decay=weight_decay,
    )(x)
    # The release trains fc6 with dropout keep 0.2 (`--dropout 0.8`).
    x = keras.layers.Dropout(fc_dropout_rate, name="fc6_dropout")(x)
    x = _conv(fc_units, 1, "fc7", relu=False, weight_decay=weight_decay)(x)
    return keras.Model(inputs, x, name=name)  # (N, h, w, fc_units), pre-ReLU


def _check_endpoint(backbone, endpoint, choices):
    if endpoint not in choices:
        raise ValueError(
            f"Unknown endpoint {endpoint!r} for backbone {backbone!r}; "
            f"expected one of {sorted(choices)}."
        )


def build_vgg16(
    *,
    input_channels=3,
    image_size=224,
    endpoint="conv5_3",
    weights=None,
    weight_decay=4e-5,
    fc_dropout_rate=0.8,
    name="vgg16",
):
    """The release's VGG-16 up to a pre-ReLU endpoint.

    Args:
        input_channels: 3 for RGB, 2·flow_stack for flow.
        image_size: the square frame size S.
        endpoint: `'conv5_3'`, `'conv4_3'` or `'fc7'` (fc7 needs S >= 224).
        weights: `None`, `'imagenet'` or a path to a keras.applications VGG16
            weights file (with or without top; `fc7` needs the top).
        weight_decay: slim-style L2 decay on every conv / fc kernel.
        fc_dropout_rate: dropout after fc6 (rate, not keep probability).
        name: model name.

    Returns:
        A `keras.Model` from `[N, S, S, input_channels]` to `[N, h, w, D]`.
    """
    _check_endpoint("vgg16", endpoint, VGG16_ENDPOINTS)
    model = _plain_cnn(
        _VGG16_BLOCKS,
        input_channels=input_channels,
        image_size=image_size,
        endpoint_layer=VGG16_ENDPOINTS[endpoint],
        fc6_kernel=7,
        fc_units=4096,
        weight_decay=weight_decay,
        fc_dropout_rate=fc_dropout_rate,
        name=name,
    )
    if weights is not None:
        top_for = "The fc7 endpoint" if endpoint == "fc7" else None
        source = _keras_vgg16(weights, top_for=top_for)
        copy_vgg16_weights(
            {layer.name: layer.get_weights() for layer in source.layers}, model
        )
    return model


def _inspect_weights_file(path, *, shown_as):
    """`(has_top, input_channels)` of a keras.applications VGG16 weights file
    (the local copy `path` of `shown_as`, which errors name).

    Works for legacy `.h5` files (groups named after layers) and Keras 3
    `.weights.h5` files (groups named `dense`, `conv2d`, ...).
    """
    names, kernels = [], []

    def visit(name, item):
        names.append(name.split("/")[-1])
        if isinstance(item, h5py.Dataset) and len(item.shape) == 4:
            kernels.append(item.shape)

    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    except OSError as error:
        raise ValueError(
            f"Cannot read VGG16 weights file {shown_as!r}: {error}"
        ) from error
    # conv1_1 is the only 64-filter conv whose input is not 64 channels.
    conv1 = [shape for shape in kernels if shape[3] == 64 and shape[2] != 64]
    if len(conv1) != 1:
        raise ValueError(
            f"{shown_as!r} does not look like a keras.applications VGG16 weights "
            f"file: found {len(conv1)} candidate conv1_1 kernels."
        )
    has_top = any(name.startswith(("fc1", "dense")) for name in names)
    return has_top, conv1[0][2]


def _keras_vgg16(weights, *, top_for):
    """keras.applications VGG16 holding the requested weights; `top_for`:
    what needs its fc1 / fc2 (named in the error when the file lacks them),
    or None."""
    if weights == "imagenet":
        return _vgg16_from(weights, include_top=top_for is not None, channels=3)
    if not storage.isfile(weights):
        raise ValueError(
            f"weights must be None, 'imagenet' or a weights file path; "
            f"no file at {weights!r}."
        )
    # h5py and Keras read local files only (docs/STORAGE.md).
    with storage.local_input(weights) as local:
        # A file may hold a flow network (2·flow_stack input channels).
        include_top, channels = _inspect_weights_file(local, shown_as=weights)
        if top_for is not None and not include_top:
            raise ValueError(
                f"{top_for} needs VGG16 weights with the top (fc1, fc2), "
                f"but {weights!r} has none."
            )
        return _vgg16_from(local, include_top=include_top, channels=channels)


def _vgg16_from(weights, *, include_top, channels):
    """keras.applications VGG16 with `weights` ('imagenet' or a local file)."""
    # With the top, keras.applications fixes the input at 224x224.
    size = 224 if include_top else None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*input channels")
        return keras.applications.VGG16(
            weights=weights, include_top=include_top, input_shape=(size, size, channels)
        )


def image_network_fc(*, backbone, weights, needed_by):
    """The image network's fc6 / fc7 as `[[kernel, bias], [kernel, bias]]`
    (keras.applications VGG16's Dense fc1 / fc2, whose fc1 reads the
    flattened 7x7x512 pool5 map), or None when there are none to start
    from: no `weights`, or a backbone without a fully connected top (the
    tiny and Inception backbones). `needed_by` names the user in the error
    for a weights file without the top."""
    if weights is None or backbone != "vgg16":
        return None
    source = _keras_vgg16(weights, top_for=needed_by)
    return [source.get_layer(name).get_weights() for name in ("fc1", "fc2")]


def copy_vgg16_weights(source_weights, model):
    """Copies keras.applications VGG16 weights into a backbone by layer name.

    Args:
        source_weights: dict from keras.applications layer name to its
            `[kernel, bias]` list.
        model: a backbone from `build_vgg16`.

    Raises:
        ValueError: if a backbone layer has no source weights.
    """
    for layer in model.layers:
        if not layer.weights:
            continue
        source_name = _KERAS_FC_NAMES.get(layer.name, layer.name)
        if not source_weights.get(source_name):
            raise ValueError(
                f"The VGG16 weights have no layer {source_name!r} for "
                f"backbone layer {layer.name!r}."
            )
        kernel, bias = source_weights[source_name]
        target_shape = tuple(layer.kernel.shape)
        if layer.name in _KERAS_FC_NAMES:
            # Dense on the flattened (h, w, c) map == VALID conv (docstring).
            kernel = np.reshape(kernel, target_shape)
        elif kernel.shape[2] != target_shape[2]:
            if kernel.shape[2] != 3:
                raise ValueError(
                    f"Cannot initialise {layer.name!r} with "
                    f"{target_shape[2]} input channels from weights with "
                    f"{kernel.shape[2]}; only RGB (3) weights are converted."
                )
            kernel = flow_kernel_from_rgb(kernel, target_shape[2])
        layer.set_weights([kernel, bias])


def build_tiny(
    *,
    input_channels=3,
    image_size=32,
    endpoint="conv5_3",
    weights=None,
    weight_decay=4e-5,
    fc_dropout_rate=0.8,
    name="tiny",
):
    """A few-thousand-parameter stand-in for VGG16 (tests, toy dataset).

    Same endpoints and pre-ReLU semantics as `build_vgg16`; fc6 is a VALID
    conv over the whole pool5 map (kernel image_size // 8). `weights` may be
    a file written by this backbone's `save_weights`.
    """
    _check_endpoint("tiny", endpoint, VGG16_ENDPOINTS)
    if image_size % 8:
        raise ValueError(
            f"The tiny backbone needs image_size divisible by 8 (three 2x2 "
            f"pools); received image_size={image_size}."
        )
    model = _plain_cnn(
        _TINY_BLOCKS,
        input_channels=input_channels,
        image_size=image_size,
        endpoint_layer=VGG16_ENDPOINTS[endpoint],
        fc6_kernel=image_size // 8,
        fc_units=_TINY_FC_UNITS,
        weight_decay=weight_decay,
        fc_dropout_rate=fc_dropout_rate,
        name=name,
    )
    if weights is not None:
        model.load_weights(weights)
    return model
