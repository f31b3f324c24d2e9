"""Runs a trained model over a split and keeps what the figures need."""

from absl import logging
import numpy as np

from avlad_tf import storage
from avlad_tf.visualization import plotting


def load_model(path):
    """Loads a `model.keras` written by `avlad_tf.train`.

    Raises:
        FileNotFoundError: naming the path (and how to make one).
    """
    if not storage.exists(path):
        raise FileNotFoundError(
            f"model {path} does not exist: train one with "
            f"`python -m avlad_tf.train --workdir=...` (it writes "
            f"WORKDIR/<stream>/model.keras) or pass --model"
        )
    import keras

    # Importing registers avlad_tf's serialisable layers with Keras.
    from avlad_tf import layers  # noqa: F401
    from avlad_tf.models import action_vlad  # noqa: F401

    return keras.saving.load_model(path)


def input_specs(model):
    """`{input name: (image_size, channels)}` of a model's video inputs."""
    specs = {}
    from avlad_tf.models import inspection  # pylint: disable=import-outside-toplevel

    for name, tensor in zip(inspection.input_names(model), model.inputs):
        shape = tuple(tensor.shape)
        if len(shape) != 5 or shape[2] is None or shape[-1] is None:
            raise ValueError(
                f"model input {name!r} has shape {shape}; expected "
                f"[batch, time, S, S, C] with known S and C"
            )
        specs[name] = (int(shape[2]), int(shape[-1]))
    return specs


def _dataset(model, *, data_dir, split, batch_size, num_frames, settings):
    from avlad_tf.data import video_input  # pylint: disable=import-outside-toplevel

    if data_dir is None:
        raise ValueError(
            "no dataset: pass --data_dir, or a model inside a training "
            "workdir (its run.json names the dataset)"
        )
    specs = input_specs(model)
    sizes = {size for size, _ in specs.values()}
    kwargs = dict(settings or {})
    kwargs.update(
        data_dir=data_dir,
        split=split,
        training=False,
        modalities=tuple(specs),
        batch_size=batch_size,
        num_crops=1,
        with_ids=True,
        image_size=sizes.pop(),
    )
    if num_frames is not None:
        kwargs["num_frames"] = num_frames
    return video_input.make_dataset(**kwargs), tuple(specs)


def run_model(
    model,
    outputs_model,
    *,
    num_videos,
    data_dir=None,
    split="test",
    video_ids=None,
    batch_size=2,
    num_frames=None,
    settings=None,
):
    """Runs `outputs_model` over the first videos of a split.

    Args:
        model: the trained model (its inputs define modalities and size).
        outputs_model: a model on the same inputs with a dict of outputs
            (`endpoints_model(model)` or `feature_model(model)`).
        data_dir: the prepared dataset.
        split: split name, e.g. 'test'.
        num_videos: stop after this many videos.
        video_ids: keep only these videos (all must be found).
        batch_size: videos per forward pass.
        num_frames: frames per video (None: the settings' or the
            pipeline's default).
        settings: the run's input settings for the model's stream
            (`run_record`), or None for `make_dataset`'s defaults.

    Returns:
        dict of stacked NumPy outputs plus `video_ids` (list of str),
        `labels` `[V, C]` and `frames` `[V, T, H, W, 3]` uint8 of the first
        modality, for display.

    Raises:
        ValueError: if requested video ids are not in the split.
    """
    dataset, modalities = _dataset(
        model,
        data_dir=data_dir,
        split=split,
        batch_size=batch_size,
        num_frames=num_frames,
        settings=settings,
    )
    wanted = None if video_ids is None else list(video_ids)
    collected = {"video_ids": [], "labels": [], "frames": []}
    for features, labels in dataset:
        ids = [v.decode() for v in features["video_id"].numpy()]
        keep = np.array([wanted is None or v in wanted for v in ids])
        if keep.any():
            inputs = {m: features[m] for m in modalities}
            outputs = outputs_model(inputs, training=False)
            if not isinstance(outputs, dict):
                outputs = {"features": outputs}
            for key, value in outputs.items():
                collected.setdefault(key, []).append(np.asarray(value)[keep])
            collected["video_ids"] += [v for v, k in zip(ids, keep) if k]
            collected["labels"].append(labels.numpy()[keep])
            collected["frames"].append(
                plotting.displayable_frames(features[modalities[0]].numpy()[keep])
            )
            logging.info(
                "visualize: ran %d videos of %s", len(collected["video_ids"]), split
            )
        if len(collected["video_ids"]) >= (len(wanted) if wanted else num_videos):
            break
    found = collected.pop("video_ids")
    if wanted is not None and set(wanted) - set(found):
        raise ValueError(
            f"video ids {sorted(set(wanted) - set(found))} are not in split {split!r}"
        )
    if not found:
        raise ValueError(f"split {split!r} yielded no videos")
    result = {k: np.concatenate(v)[:num_videos] for k, v in collected.items()}
    result["video_ids"] = found[:num_videos]
    return result


def endpoints(model, **kwargs):
    """`run_model` with `endpoints_model`: logits, descriptor, assignments."""
    from avlad_tf.models import inspection  # pylint: disable=import-outside-toplevel

    result = run_model(model, inspection.endpoints_model(model), **kwargs)
    if "assignments" not in result:
        raise ValueError(
            "the model has no NetVLAD assignments (pooling is not netvlad?); "
            "action-word figures need an ActionVLAD model"
        )
    return result


def attention(model, **kwargs):
    """`run_model` with `endpoints_model`: logits, descriptor and VideoLSTM's
    `attention` maps `[V, T, h', w']`."""
    from avlad_tf.models import inspection  # pylint: disable=import-outside-toplevel

    result = run_model(model, inspection.endpoints_model(model), **kwargs)
    if "attention" not in result:
        raise ValueError(
            "the model has no attention maps (pooling is not videolstm?); "
            "attention figures need a VideoLSTM model"
        )
    return result


def features(model, **kwargs):
    """`run_model` with `feature_model`: the pooled layer's input features."""
    from avlad_tf.models import inspection  # pylint: disable=import-outside-toplevel

    return run_model(model, inspection.feature_model(model), **kwargs)


def classifier_weights(model):
    """`(kernel [K*D, C], bias [C])` of the `logits` layer."""
    kernel, bias = model.get_layer("logits").get_weights()
    return kernel, bias


def num_clusters(model):
    """K of the model's NetVLAD pooling layer."""
    from avlad_tf.models import inspection  # pylint: disable=import-outside-toplevel

    return int(inspection.pooling_layer(model).num_clusters)
