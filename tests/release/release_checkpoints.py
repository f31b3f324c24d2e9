"""Writes checkpoints the way the release's TF 0.12 / TF-slim code did.

Variables are created by name in a TF1 graph (`tf.compat.v1`) and saved with
`tf.compat.v1.train.Saver` in the V2 (prefix + `.index` / `.data-*`) or the old
V1 single-file format, so the importer is tested on the release's own names
and files.
"""

import numpy as np
import tensorflow as tf

# (block, convs, filters) of VGG-16, as the release's nets/vgg.py.
VGG16_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))


def vgg16_variables(rng, *, input_channels=3):
    """Random `vgg_16/convX/convX_Y/{weights,biases}` arrays (He scaling)."""
    variables, channels = {}, input_channels
    for block, num_convs, filters in VGG16_BLOCKS:
        for index in range(1, num_convs + 1):
            scope = f"vgg_16/conv{block}/conv{block}_{index}"
            std = np.sqrt(2.0 / (9 * channels))
            variables[f"{scope}/weights"] = rng.normal(
                0, std, (3, 3, channels, filters)
            ).astype(np.float32)
            variables[f"{scope}/biases"] = rng.normal(0, 0.1, (filters,)).astype(
                np.float32
            )
            channels = filters
    return variables


def head_variables(rng, *, num_clusters, depth, num_classes):
    """Random NetVLAD (`centers`, `vlad_W`, `vlad_B`) and classifier arrays."""
    return {
        "NetVLAD/centers": rng.normal(
            0, 1 / np.sqrt(depth), (num_clusters, depth)
        ).astype(np.float32),
        # Spread-out assignment logits, so the soft assignment is non-trivial.
        "NetVLAD/vlad_W": rng.normal(0, 3.0, (1, 1, depth, num_clusters)).astype(
            np.float32
        ),
        "NetVLAD/vlad_B": rng.normal(0, 1, (num_clusters,)).astype(np.float32),
        "classifier/logits/weights": rng.normal(
            0, 1, (num_clusters * depth, num_classes)
        ).astype(np.float32),
        "classifier/logits/biases": rng.normal(0, 1, (num_classes,)).astype(np.float32),
    }


def with_prefix(variables, prefix):
    """Adds a scope such as `stream0/` in front of every name."""
    return {prefix + name: value for name, value in variables.items()}


def adam_bookkeeping(variables):
    """What training with Adam adds: slots, `global_step`, beta powers."""
    extra = {
        "global_step": np.array(8000, dtype=np.int64),
        "beta1_power": np.array(0.9, dtype=np.float32),
        "beta2_power": np.array(0.999, dtype=np.float32),
    }
    for name, value in variables.items():
        extra[f"{name}/Adam"] = np.zeros_like(value)
        extra[f"{name}/Adam_1"] = np.zeros_like(value)
    return extra


def write(path, variables, *, version="V2"):
    """Saves `variables` (name -> array) with a TF1 Saver.

    Args:
        path: the checkpoint path (the V1 file, or the V2 prefix).
        variables: TF variable name -> numpy value.
        version: `'V2'` or `'V1'` (`tf.compat.v1.train.SaverDef.V1`).

    Returns:
        The path the Saver reports.
    """
    write_version = {
        "V1": tf.compat.v1.train.SaverDef.V1,
        "V2": tf.compat.v1.train.SaverDef.V2,
    }[version]
    graph = tf.Graph()
    with graph.as_default():
        for name, value in variables.items():
            tf.compat.v1.get_variable(name, initializer=value)
        saver = tf.compat.v1.train.Saver(write_version=write_version)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            return saver.save(session, path, write_meta_graph=False, write_state=False)
