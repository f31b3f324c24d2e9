"""One stream's model in `loop.train_stream`: its loss, building and saving.

`training_loss` resolves `train_stream.loss` for the training split, `build`
makes the stream's model under the strategy (checking its per-step losses
against that loss, `check_per_step_loss`) and `save` writes the trained model
as `<workdir>/<stream>/model.keras`.
"""

from absl import logging
import keras

from avlad_tf import storage
from avlad_tf.models import inspection

# `build_model`'s modality for each stream of `loop.STREAM_MODALITIES`.
MODEL_MODALITY = {"rgb": "rgb", "flow": "flow", "fused": "rgb+flow"}


def training_loss(info, split, loss):
    """'softmax' or 'sigmoid' for `train_stream.loss` on `split` of `info`.

    'auto' asks the manifest: a split whose videos carry one label each
    (`max_labels_per_video`, written by data_prep) trains with softmax even
    in a multi-label dataset; without that field the dataset's `multi_label`
    decides.
    """
    if loss not in ("auto", "softmax", "sigmoid"):
        raise ValueError(
            f"train_stream.loss must be 'auto', 'softmax' or "
            f"'sigmoid'. Received: {loss!r}"
        )
    if loss != "auto":
        return loss
    max_labels = info["splits"].get(split, {}).get("max_labels_per_video")
    if max_labels is None:
        return "sigmoid" if info.get("multi_label", False) else "softmax"
    return "sigmoid" if max_labels > 1 else "softmax"


def build(build_model_fn, strategy, info, stream, *, seed, loss, split):
    """The stream's model, initialised from `seed`, its variables under
    `strategy`, its backbone weights those of the training `split` (where
    their path holds `{split}`); raises unless its per-step losses (if any)
    are `loss`."""
    keras.utils.set_random_seed(seed)
    with strategy.scope():
        model = build_model_fn(
            num_classes=int(info["num_classes"]),
            modality=MODEL_MODALITY[stream],
            train_split=split,
        )
    check_per_step_loss(model, loss, stream=stream)
    return model


def check_per_step_loss(model, loss, *, stream):
    """Raises ValueError unless every per-step LSTM loss of `model` is the
    training loss: the label-free gap it adds completes that loss only."""
    for layer in inspection.walk_layers(model):
        per_step = getattr(layer, "per_step_loss", None)
        if per_step is not None and per_step != loss:
            raise ValueError(
                f"{stream}/recurrent_pooling.per_step_loss = {per_step!r}, but "
                f"train_stream.loss resolves to {loss!r} for this data; bind "
                "them alike."
            )


def save(model, stream_dir):
    """The trained model as `<stream_dir>/model.keras`."""
    model_path = storage.join(stream_dir, "model.keras")
    model.save(model_path)
    logging.info("Saved %s", model_path)
