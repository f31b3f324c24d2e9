"""keras.applications InceptionV3 cut at a `mixed*` block: the Charades
backbone. The release used BN-Inception (docs/RELEASE.md Sec. 4.4), which
Keras lacks. DEVIATION: InceptionV3's mixed outputs are concatenations of
post-ReLU branches, so these features are post-ReLU; batch norm stays frozen
in inference mode, as the release's."""

import warnings

import keras

from avlad_tf.layers import regularizers
from avlad_tf.models.backbones.flow_input import flow_kernel_from_rgb


def build_inception_v3(
    *,
    input_channels=3,
    image_size=224,
    endpoint="mixed7",
    weights=None,
    weight_decay=4e-5,
    name="inception_v3",
):
    """keras.applications InceptionV3 cut at a `mixed*` block (Charades).

    Stands in for the release's BN-Inception (see the module docstring). Batch
    norm stays frozen in inference mode, as the release's BN-Inception.
    `weights`: None, 'imagenet' or a keras.applications InceptionV3
    (include_top=False) weights file. Its weights expect RGB in [−1, 1]:
    `stream.video_features` puts `layers.pixels.InceptionInput` in front
    (`pixels.INPUT_RULES`).
    """
    if not str(endpoint).startswith("mixed"):
        raise ValueError(
            f"inception_v3 endpoints are keras.applications block names "
            f"'mixed0' ... 'mixed10'; received endpoint={endpoint!r}."
        )
    with warnings.catch_warnings():
        # keras.applications warns on channel counts other than 1 or 3;
        # flow inputs have 2·flow_stack channels by design.
        warnings.filterwarnings("ignore", message=".*input channels")
        full = keras.applications.InceptionV3(
            include_top=False,
            weights=None,
            input_shape=(image_size, image_size, input_channels),
        )
    if weights is not None:
        source = keras.applications.InceptionV3(include_top=False, weights=weights)
        # Auto-generated layer names differ between two builds: copy by
        # position (same architecture, same layer order).
        for target, src in zip(full.layers, source.layers):
            values = src.get_weights()
            # Only the first conv reads the frames; only its kernel can
            # differ, and only in input depth (flow: 2·flow_stack).
            if (
                isinstance(target, keras.layers.Conv2D)
                and tuple(target.kernel.shape) != values[0].shape
            ):
                values[0] = flow_kernel_from_rgb(values[0], input_channels)
            if values:
                target.set_weights(values)
    for layer in full.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
        elif isinstance(layer, keras.layers.Conv2D) and weight_decay:
            layer.kernel_regularizer = regularizers.weight_decay(weight_decay)
            layer.kernel.regularizer = layer.kernel_regularizer
    return keras.Model(full.input, full.get_layer(endpoint).output, name=name)
