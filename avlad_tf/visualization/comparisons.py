"""The comparison sub-commands of `python -m avlad_tf.visualize`, from Python.

Unlike the model commands in `commands` (one model's words or attention over
its videos), these set several things side by side: t-SNE of several models'
features (Figs. 5 / 10), the confusion difference of two score files
(Fig. 9) and the training curves of a workdir's runs. Each loads what it
needs (models, score files, event files) and writes one PNG; models are read
with their run's input settings through the helpers in `commands`.
"""

import numpy as np

from avlad_tf import storage
from avlad_tf.visualization import commands
from avlad_tf.visualization import confusion
from avlad_tf.visualization import curves as curves_lib
from avlad_tf.visualization import figures
from avlad_tf.visualization import inference
from avlad_tf.visualization import tsne as tsne_lib


def _sample_points(features, *, points_per_video, rng):
    """`[V, T, h, w, D]` -> `([V * n, D], video index [V * n])`."""
    num_videos, depth = features.shape[0], features.shape[-1]
    per_video = features.reshape(num_videos, -1, depth)  # [V, T*h*w, D]
    count = min(points_per_video, per_video.shape[1])
    picks = np.stack(
        [
            rng.choice(per_video.shape[1], count, replace=False)
            for _ in range(num_videos)
        ]
    )
    points = np.take_along_axis(per_video, picks[..., None], axis=1)
    return points.reshape(-1, depth), np.repeat(np.arange(num_videos), count)


def tsne(
    *,
    model_paths,
    out,
    names=None,
    joint=False,
    num_videos=8,
    points_per_video=40,
    perplexity=30.0,
    num_iters=1000,
    seed=0,
    width_px=1000,
    height_px=500,
    **data,
):
    """Figs. 5 / 10: t-SNE of each model's pooled-layer input features.

    Separate (default): one panel per model, points coloured by video.
    `joint`: one embedding of all models' points, coloured by model (Fig. 10,
    RGB versus flow conv5 features; needs equal feature depths).
    """
    names = names or [commands.stream_of(p) for p in model_paths]
    rng = np.random.default_rng(seed)
    sampled = []
    for path in model_paths:
        model = inference.load_model(path)
        result = inference.features(
            model, num_videos=num_videos, **commands.with_run_inputs(path, data)
        )
        points, videos = _sample_points(
            result["features"], points_per_video=points_per_video, rng=rng
        )
        sampled.append((points, videos, result["video_ids"]))
    embed = dict(perplexity=perplexity, num_iters=num_iters, seed=seed)
    if joint:
        depths = {p.shape[1] for p, _, _ in sampled}
        if len(depths) != 1:
            raise ValueError(f"--joint needs equal feature depths, got {depths}")
        points = np.concatenate([p for p, _, _ in sampled])
        groups = np.concatenate(
            [np.full(len(p), i) for i, (p, _, _) in enumerate(sampled)]
        )
        panels = [("all streams", tsne_lib.tsne(points, **embed), groups, names)]
    else:
        panels = [
            (name, tsne_lib.tsne(points, **embed), videos, ids)
            for name, (points, videos, ids) in zip(names, sampled)
        ]
    return figures.plot_tsne(panels, out, width_px=width_px, height_px=height_px)


def confusion_diff(
    *,
    scores_a,
    scores_b,
    out,
    name_a="A",
    name_b="B",
    labels_file=None,
    data_dir=None,
    split="test",
    top=5,
    width_px=1000,
    height_px=700,
):
    """Fig. 9: confusion(B) - confusion(A); prints the biggest changes.

    Returns:
        `(path, gained, lost)`, lists of `(class name, accuracy change)`.
    """
    a, b = confusion.read_scores(scores_a), confusion.read_scores(scores_b)
    truth = None
    if a["labels"] is None or b["labels"] is None:
        if data_dir is None:
            raise ValueError(
                f"{scores_a if a['labels'] is None else scores_b} stores no "
                f"labels: pass --data_dir (and --split) for the ground truth"
            )
        truth = confusion.read_ground_truth(data_dir, split)
    result = confusion.confusion_difference(a, b, truth=truth)
    num_classes = a["logits"].shape[1]
    if labels_file:
        names = commands.class_names(
            workdir=storage.dirname(labels_file) or ".", num_classes=num_classes
        )
    else:
        names = commands.class_names(data_dir=data_dir, num_classes=num_classes)
    gained, lost = confusion.ranked_changes(result["gain"], names, top=top)
    print(
        f"{name_b} vs {name_a} on {result['num_videos']} videos: "
        f"accuracy per class, gained most:"
    )
    for name, change in gained:
        print(f"  {name}: {change:+.3f}")
    print("lost most:")
    for name, change in lost:
        print(f"  {name}: {change:+.3f}")
    path = confusion.plot_confusion_difference(
        result,
        names,
        out,
        name_a=name_a,
        name_b=name_b,
        top=top,
        width_px=width_px,
        height_px=height_px,
    )
    return path, gained, lost


def curves(*, workdir, out, tags=None, width_px=1000, height_px=700):
    """Training curves of every run under WORKDIR/tensorboard."""
    log_dir = storage.join(workdir, "tensorboard")
    if not storage.isdir(log_dir):
        log_dir = workdir  # also accept the TensorBoard folder itself
    scalars = curves_lib.read_scalars(log_dir)
    return curves_lib.plot_curves(
        scalars, out, tags=tags, title=workdir, width_px=width_px, height_px=height_px
    )
