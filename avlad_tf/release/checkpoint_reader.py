"""Opens the release's checkpoints: V1 single files and V2 prefixes.

The HMDB51 / UCF101 models are single `.ckpt` files in TF's old V1 format; the
Charades model is a V2 checkpoint (docs/RELEASE.md Sec. 6.1). TF 2.21
still reads both through `tf.train.load_checkpoint`.
"""

import os

import tensorflow as tf

from avlad_tf import storage

# Files users commonly pass instead of the checkpoint (V2 index, graph).
_V2_SUFFIXES = (".index", ".meta")
_V2_DATA_MARKER = ".data-"

CONVERT_HINT = (
    "If this is a checkpoint from the release that TensorFlow 2.21 cannot "
    "read, convert it once with TensorFlow 1.x (e.g. `pip install "
    "tensorflow==1.15` in a separate environment): build the graph's "
    "variables from `tf.train.NewCheckpointReader(path)`, restore them with "
    "`tf.train.Saver()` and save again with "
    "`tf.train.Saver(write_version=tf.train.SaverDef.V2)`; then pass the new "
    "prefix here."
)


def resolve_path(path):
    """Turns a directory, V2 file name or prefix into a readable prefix.

    Raises:
        FileNotFoundError: if nothing matches `path`.
    """
    if storage.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(
                f"{path}: a directory without a `checkpoint` state file; pass "
                f"the checkpoint file itself (e.g. {path}/model.ckpt-150000, "
                f"the prefix before `.index` / `.data-*`)."
            )
        return latest
    for suffix in _V2_SUFFIXES:
        if path.endswith(suffix):  # x.ckpt.index / x.ckpt.meta -> x.ckpt
            return resolve_path(path[: -len(suffix)])
    if _V2_DATA_MARKER in os.path.basename(path):
        return path[: path.rindex(_V2_DATA_MARKER)]
    if not (storage.isfile(path) or storage.isfile(path + ".index")):
        raise FileNotFoundError(
            f"{path}: no such checkpoint (neither a V1 file nor a V2 prefix "
            f"with {path}.index)."
        )
    return path


def open_checkpoint(path):
    """Returns `(reader, prefix)` for a V1 or V2 checkpoint.

    Args:
        path: a V1 `.ckpt` file, a V2 prefix (or one of its files), or a
            directory holding a `checkpoint` state file.

    Raises:
        FileNotFoundError: if the checkpoint does not exist.
        ValueError: if TensorFlow cannot read it; the message says how to
            convert it.
    """
    prefix = resolve_path(path)
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error) else ""
        raise ValueError(
            f"{prefix}: not a TensorFlow checkpoint that TF {tf.__version__} "
            f"can read ({type(error).__name__}: {first_line}). "
            f"{CONVERT_HINT}"
        ) from error
    return reader, prefix
