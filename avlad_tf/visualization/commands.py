"""The model sub-commands of `python -m avlad_tf.visualize`, from Python.

Each loads one model, runs it over the first videos of a split, computes the
figure's data (action words, assignments over time, attention, top words)
and writes one PNG; see `avlad_tf/visualize.py` for commands. The helpers
that find a model, its run's input settings and its class names are here
too, and `comparisons` (t-SNE, confusion difference, curves) shares them.
"""

import os

import numpy as np

from avlad_tf import run_record
from avlad_tf import storage
from avlad_tf.visualization import assignments as assign_lib
from avlad_tf.visualization import attention as attention_lib
from avlad_tf.visualization import figures
from avlad_tf.visualization import inference


def resolve_model_path(workdir, stream, model):
    """`model` if given, else WORKDIR/<stream>/model.keras."""
    if model:
        return model
    if not workdir:
        raise ValueError("pass --workdir (with --stream) or --model")
    return storage.join(workdir, stream, "model.keras")


def stream_of(model_path):
    """The stream folder of WORKDIR/<stream>/model.keras."""
    return os.path.basename(storage.dirname(storage.absolute(model_path)))


def with_run_inputs(model_path, data):
    """`data` (`run_model` keywords) completed from the model's run record.

    A model inside a training workdir is read with its stream's recorded
    input settings, and from the run's dataset unless `data_dir` is given;
    a model elsewhere needs `data_dir` and reads with the pipeline defaults.
    """
    workdir = storage.dirname(storage.dirname(storage.absolute(model_path)))
    data = dict(data)
    if not storage.exists(run_record.path(workdir)):
        return data
    record = run_record.read(workdir)
    entry = run_record.stream(record, stream_of(model_path), workdir=workdir)
    data["settings"] = entry["input"]
    data["data_dir"] = data.get("data_dir") or record["data"]["data_dir"]
    return data


def class_names(*, workdir=None, data_dir=None, num_classes):
    """Class names from the run record, WORKDIR/labels.txt or
    DATA_DIR/labels.txt."""
    if workdir and storage.exists(run_record.path(workdir)):
        names = run_record.read(workdir)["data"]["labels"]
        if len(names) != num_classes:
            raise ValueError(
                f"{run_record.path(workdir)} lists {len(names)} "
                f"classes, the model has {num_classes}"
            )
        return names
    for folder in (workdir, data_dir):
        path = folder and storage.join(folder, "labels.txt")
        if path and storage.exists(path):
            lines = storage.read_text(path).splitlines()
            names = [line.strip() for line in lines if line.strip()]
            if len(names) != num_classes:
                raise ValueError(
                    f"{path} lists {len(names)} classes, the "
                    f"model / scores have {num_classes}"
                )
            return names
    return [f"class {i}" for i in range(num_classes)]


def _checked_assignments(result):
    frames, assignments = result["frames"], result["assignments"]
    if assignments.shape[:2] != frames.shape[:2]:
        raise ValueError(
            f"assignments {assignments.shape} do not have one map per frame "
            f"{frames.shape[:2]}"
        )
    return frames, assignments


def _check_clusters(clusters, num_clusters):
    bad = [k for k in clusters if not 0 <= k < num_clusters]
    if bad:
        raise ValueError(
            f"clusters {bad} do not exist: the model has "
            f"{num_clusters} action words (0..{num_clusters - 1})"
        )
    return clusters


def _salient_words(model, count):
    """The `count` words the classifier weighs most (norm of their block).

    The words that cover most cells are usually background; the ones with
    the heaviest classifier weights are those the decision rests on.
    """
    kernel, _ = inference.classifier_weights(model)
    blocks = kernel.reshape(inference.num_clusters(model), -1)  # [K, D*C]
    norms = np.linalg.norm(blocks, axis=1)
    return [int(k) for k in np.argsort(-norms, kind="stable")[:count]]


def _one_video(run, model, model_path, video_id, data):
    """`run` (an `inference` function) over one video of the split, by id or
    the first, with the run's input settings."""
    return run(
        model,
        num_videos=1,
        video_ids=[video_id] if video_id else None,
        **with_run_inputs(model_path, data),
    )


def action_words(
    *,
    model_path,
    out,
    clusters=None,
    num_videos=16,
    num_examples=6,
    width_px=1200,
    height_px=None,
    **data,
):
    """Fig. 6. `data`: `run_model` keywords (data_dir, split, ...)."""
    model = inference.load_model(model_path)
    result = inference.endpoints(
        model, num_videos=num_videos, **with_run_inputs(model_path, data)
    )
    frames, assignments = _checked_assignments(result)
    clusters = _check_clusters(
        clusters or _salient_words(model, 4), assignments.shape[-1]
    )
    return figures.plot_action_words(
        frames,
        assignments,
        result["video_ids"],
        clusters,
        out,
        num_examples=num_examples,
        width_px=width_px,
        height_px=height_px,
    )


def assignment_over_time(
    *,
    model_path,
    out,
    video_id=None,
    clusters=None,
    max_frames=8,
    width_px=1200,
    height_px=450,
    **data,
):
    """Fig. 7 for one video (default: the split's first)."""
    model = inference.load_model(model_path)
    result = _one_video(inference.endpoints, model, model_path, video_id, data)
    frames, assignments = _checked_assignments(result)
    clusters = _check_clusters(
        clusters or _salient_words(model, 3), assignments.shape[-1]
    )
    return figures.plot_assignment_over_time(
        frames[0],
        assignments[0],
        clusters,
        out,
        video_id=result["video_ids"][0],
        max_frames=max_frames,
        width_px=width_px,
        height_px=height_px,
    )


def attention(
    *,
    model_path,
    out,
    video_id=None,
    max_frames=8,
    width_px=1200,
    height_px=300,
    **data,
):
    """VideoLSTM's attention maps over one video (default: the split's
    first), shown on its frames (RGB, also for motion attention)."""
    model = inference.load_model(model_path)
    result = _one_video(inference.attention, model, model_path, video_id, data)
    return attention_lib.plot_attention(
        result["frames"][0],
        result["attention"][0],
        out,
        video_id=result["video_ids"][0],
        max_frames=max_frames,
        width_px=width_px,
        height_px=height_px,
    )


def top_words(
    *,
    model_path,
    out,
    video_id=None,
    class_name=None,
    top=5,
    workdir=None,
    width_px=1200,
    height_px=600,
    **data,
):
    """Fig. 8; the class defaults to the model's prediction.

    Returns:
        `(path, contributions [K], class index)`.
    """
    model = inference.load_model(model_path)
    kernel, _ = inference.classifier_weights(model)
    workdir = workdir or storage.dirname(storage.dirname(storage.absolute(model_path)))
    names = class_names(
        workdir=workdir, data_dir=data.get("data_dir"), num_classes=kernel.shape[1]
    )
    if class_name is not None and class_name not in names:
        raise ValueError(f"unknown class {class_name!r}; classes: {names}")
    result = _one_video(inference.endpoints, model, model_path, video_id, data)
    frames, assignments = _checked_assignments(result)
    class_index = (
        names.index(class_name) if class_name else int(np.argmax(result["logits"][0]))
    )
    contributions = assign_lib.cluster_contributions(
        result["descriptor"][0],
        kernel,
        class_index=class_index,
        num_clusters=inference.num_clusters(model),
    )
    path = figures.plot_top_words(
        frames[0],
        assignments[0],
        contributions,
        out,
        class_name=names[class_index],
        video_id=result["video_ids"][0],
        top=top,
        width_px=width_px,
        height_px=height_px,
    )
    return path, contributions, class_index
