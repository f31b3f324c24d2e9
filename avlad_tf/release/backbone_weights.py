"""A release VGG-16 checkpoint → a keras.applications VGG16 weights file.

The release started its flow stream from the authors' two-stream flow VGG-16
(`2-stream-pretrained/<dataset>/flow/split*.ckpt`, conv1_1 already
`[3, 3, 20, 64]`; docs/RELEASE.md §7.3). `build_model.weights` takes a
keras.applications-format VGG16 weights file, so this writes one from the
checkpoint's `vgg_16/*` variables: conv1_1 ... conv5_3 by name, and with
`include_top` fc6 / fc7 as keras.applications' `fc1` / `fc2` Dense layers
(the conv kernels flattened row-major, the inverse of
`backbones.copy_vgg16_weights`). keras.applications' 1000-way `predictions`
layer has no counterpart (the checkpoint's fc8 has the dataset's classes);
it is written as zeros, and no backbone reads it.

The file records the dataset and training split the checkpoint was
fine-tuned on (`release_training_split`), which training compares with its
test split (`models.initial_weights`): the two-stream flow networks come one
per HMDB51 split, and only split k's may start a split-k run.
"""

import os
import re
import warnings

import keras
import numpy as np

from avlad_tf import storage
from avlad_tf.models import initial_weights
from avlad_tf.release import checkpoint_reader
from avlad_tf.release import names

# keras.applications VGG16 layer → the backbone layer name `names` maps to.
_FROM_KERAS_FC = {"fc1": "fc6", "fc2": "fc7"}
# Datasets whose name the release's paths carry as a folder.
DATASETS = ("hmdb51", "ucf101", "charades")
# `split2.ckpt` (a V1 file or V2 prefix), `split2/`, and renamed copies such
# as an older script's `flow_split1.ckpt`.
_SPLIT = re.compile(r"(?:^|[_.-])split(\d+)(?!\d)")


def release_training_split(checkpoint, *, dataset=None, split=None):
    """`{"dataset", "train_split"}` a release checkpoint was fine-tuned on.

    The release's paths name both (`2-stream-pretrained/hmdb51/flow/
    split2.ckpt` gives hmdb51, `train_split2`); `dataset` and `split` (an int)
    give them where the path does not.

    Returns:
        The dict, or None for a checkpoint of no split (CUHK's ImageNet
        `vgg_16_action_rgb_pretrain_uptoConv5.ckpt`).

    Raises:
        ValueError: a split without a dataset to count its videos in.
    """
    parts = os.path.normpath(checkpoint).split(os.sep)
    if split is None:
        match = _SPLIT.search(parts[-1])
        split = match and int(match.group(1))
    if dataset is None:
        dataset = next((p for p in reversed(parts) if p in DATASETS), None)
    if split is None:
        return None
    if dataset is None:
        raise ValueError(
            f"{checkpoint}: fine-tuned on split {split}, but its path names "
            f"none of the datasets {DATASETS}; pass --dataset."
        )
    return {"dataset": dataset, "train_split": f"train_split{split}"}


def _vgg_arrays(checkpoint, stream):
    """{(backbone layer, 'kernel' | 'bias'): array} of the VGG-16 weights."""
    reader, prefix = checkpoint_reader.open_checkpoint(checkpoint)
    arrays = {}
    for name in reader.get_variable_to_shape_map():
        index, relative = names.split_stream(name)
        if names.is_bookkeeping(name) or index not in (None, stream):
            continue
        target = names.target_for(relative)
        if (
            target is not None
            and relative.startswith("vgg_16/")
            and not relative.startswith("vgg_16/fc8")
        ):
            arrays[(target.layer, target.weight)] = reader.get_tensor(name)
    if ("block1_conv1", "kernel") not in arrays:
        raise ValueError(
            f"{prefix}: no vgg_16/conv1/conv1_1/weights (with or without "
            f"`stream{stream}/`): not a release VGG-16 checkpoint."
        )
    return arrays, prefix


def write_vgg16_weights(
    checkpoint, output, *, include_top=False, stream=0, dataset=None, split=None
):
    """Writes `output` (`.weights.h5`) for `build_model.weights`.

    Args:
        checkpoint: the release checkpoint (V1 file, V2 prefix or directory).
        output: the weights file to write; must end in `.weights.h5`.
        include_top: also write fc6 / fc7 (needed by the `fc7` endpoint and
            by `conv_pooling_fc.init = 'image_network'`).
        stream: the `stream<i>/` scope to read when the names have one.
        dataset, split: the dataset and split number the checkpoint was
            fine-tuned on, where its path does not name them
            (`release_training_split`); recorded in `output`.

    Returns:
        The input channel count of conv1_1 (3 for RGB, 2·flow_stack for flow).

    Raises:
        ValueError: naming the checkpoint and the missing variable.
    """
    if not output.endswith(".weights.h5"):
        raise ValueError(f"--output must end in .weights.h5; got {output!r}.")
    trained_on = release_training_split(checkpoint, dataset=dataset, split=split)
    arrays, prefix = _vgg_arrays(checkpoint, stream)
    channels = int(arrays[("block1_conv1", "kernel")].shape[2])
    size = 224 if include_top else None  # keras.applications fixes the top's
    with warnings.catch_warnings():
        # keras.applications warns on other than 1 or 3 channels (flow).
        warnings.filterwarnings("ignore", message=".*input channels")
        model = keras.applications.VGG16(
            weights=None, include_top=include_top, input_shape=(size, size, channels)
        )
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name == "predictions":
            layer.set_weights([np.zeros(w.shape, np.float32) for w in layer.weights])
            continue
        source = _FROM_KERAS_FC.get(layer.name, layer.name)
        missing = [p for p in ("kernel", "bias") if (source, p) not in arrays]
        if missing:
            hint = (
                " (conv endpoints need no top: drop --include_top)"
                if source in _FROM_KERAS_FC.values()
                else ""
            )
            raise ValueError(
                f"{prefix}: no {source} {' or '.join(missing)} in the checkpoint{hint}."
            )
        kernel = arrays[(source, "kernel")]
        # fc6 [7, 7, 512, 4096] → fc1 [25088, 4096]; fc7 [1, 1, 4096, 4096] → fc2.
        layer.set_weights(
            [np.reshape(kernel, layer.kernel.shape), arrays[(source, "bias")]]
        )
    storage.make_parent(output)
    # h5py (the recorded split) writes local files only.
    with storage.local_output(output) as local:
        model.save_weights(local)
        if trained_on is not None:
            initial_weights.record_training_split(local, **trained_on)
    return channels
