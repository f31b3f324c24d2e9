"""Figures of what a model learned: Figs. 5-8 and 10 of the paper.

Every function takes NumPy arrays (already computed by
`avlad_tf.visualization.inference`) and writes one PNG of an exact size.
Frames are uint8 RGB `[..., H, W, 3]` (`plotting.displayable_frames`).
"""

import math

from matplotlib import ticker
import numpy as np

from avlad_tf.visualization import assignments as assign_lib
from avlad_tf.visualization import plotting


def _show_frame(ax, frame, title=""):
    ax.imshow(frame)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlim(-0.5, frame.shape[1] - 0.5)
    ax.set_ylim(frame.shape[0] - 0.5, -0.5)
    if title:
        ax.set_title(title, fontsize=7)


def plot_action_words(
    frames,
    assignments,
    video_ids,
    clusters,
    path,
    *,
    num_examples=6,
    width_px=1200,
    height_px=None,
):
    """Fig. 6: for each word, frames of different videos where it fires.

    Args:
        frames: `[V, T, H, W, 3]` uint8.
        assignments: `[V, T, h, w, K]` soft assignments.
        video_ids: `V` names.
        clusters: the words, one row each.
        path: output PNG.
        num_examples: columns: the videos where the word covers most cells,
            each shown at its best frame.

    Returns:
        `path`.
    """
    num_examples = min(num_examples, frames.shape[0])
    height_px = height_px or 60 + 180 * len(clusters)
    fig = plotting.new_figure(width_px=width_px, height_px=height_px)
    for row, cluster in enumerate(clusters):
        best, counts = assign_lib.best_frames(assignments, cluster)
        order = np.argsort(-counts, kind="stable")[:num_examples]
        order = order[counts[order] > 0]
        if not order.size:  # a dead word: say so instead of empty frames
            ax = fig.add_subplot(len(clusters), 1, row + 1)
            ax.axis("off")
            ax.text(
                0.5,
                0.5,
                f"word {cluster}: no region of these "
                f"{frames.shape[0]} videos is assigned to it",
                ha="center",
                va="center",
                fontsize=9,
            )
            continue
        for col, video in enumerate(order):
            ax = fig.add_subplot(
                len(clusters), num_examples, row * num_examples + col + 1
            )
            t = best[video]
            _show_frame(
                ax,
                frames[video, t],
                f"{video_ids[video]}\nframe {t}, {counts[video]} cells",
            )
            assign_lib.draw_word_markers(
                ax, assignments[video, t], [cluster], image_size=frames.shape[2:4]
            )
            if col == 0:
                ax.set_ylabel(f"word {cluster}", fontsize=9)
    fig.suptitle("action words: regions assigned to each cluster", fontsize=10)
    return plotting.save_figure(fig, path)


def plot_assignment_over_time(
    frames,
    assignments,
    clusters,
    path,
    *,
    video_id="",
    max_frames=8,
    width_px=1200,
    height_px=450,
):
    """Fig. 7: one video's regions assigned to given words, frame by frame.

    Args:
        frames: `[T, H, W, 3]` uint8.
        assignments: `[T, h, w, K]`.
        clusters: the words to mark, each in its colour.
        path: output PNG.
        max_frames: frames shown (evenly spaced); a lower panel plots each
            word's share of cells over all T frames.
    """
    num_frames = frames.shape[0]
    shown = np.unique(
        np.linspace(0, num_frames - 1, min(max_frames, num_frames)).astype(int)
    )
    fig = plotting.new_figure(width_px=width_px, height_px=height_px)
    grid = fig.add_gridspec(2, len(shown), height_ratios=[3, 2])
    for col, t in enumerate(shown):
        ax = fig.add_subplot(grid[0, col])
        _show_frame(ax, frames[t], f"t={t}")
        assign_lib.draw_word_markers(
            ax, assignments[t], clusters, image_size=frames.shape[1:3]
        )
    colors = plotting.cluster_colors(assignments.shape[-1]) / 255.0
    ax = fig.add_subplot(grid[1, :])
    cells = assignments.shape[1] * assignments.shape[2]
    for cluster in clusters:
        share = assign_lib.word_cells(assignments, cluster).sum(axis=(1, 2))
        ax.plot(
            np.arange(num_frames),
            share / cells,
            color=colors[cluster],
            marker=".",
            label=f"word {cluster}",
        )
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_xlabel("frame", fontsize=8)
    ax.set_ylabel("share of cells", fontsize=8)
    ax.legend(fontsize=7, ncol=min(len(clusters), 6))
    fig.suptitle(f"assignment over time {video_id}".strip(), fontsize=10)
    return plotting.save_figure(fig, path)


def plot_top_words(
    frames,
    assignments,
    contributions,
    path,
    *,
    class_name="",
    video_id="",
    top=5,
    width_px=1200,
    height_px=600,
):
    """Fig. 8: each word's contribution to a class score, top words shown.

    Args:
        frames: `[T, H, W, 3]` uint8 of the video.
        assignments: `[T, h, w, K]`.
        contributions: `[K]` (`assignments.cluster_contributions`).
        path: output PNG.
        top: how many of the highest-contributing words get a frame, each at
            the frame where the word covers most cells.
    """
    num_clusters = contributions.shape[0]
    top = min(top, num_clusters)
    order = np.argsort(-contributions, kind="stable")[:top]
    colors = plotting.cluster_colors(num_clusters) / 255.0
    fig = plotting.new_figure(width_px=width_px, height_px=height_px)
    grid = fig.add_gridspec(2, top, height_ratios=[2, 3])
    ax = fig.add_subplot(grid[0, :])
    bar_colors = [
        colors[k] if k in order else (0.75, 0.75, 0.75) for k in range(num_clusters)
    ]
    ax.bar(np.arange(num_clusters), contributions, color=bar_colors)
    ax.axhline(0.0, color="black", linewidth=0.5)
    if num_clusters <= 64:
        ax.set_xticks(np.arange(num_clusters))
        ax.tick_params(axis="x", labelsize=6 if num_clusters > 16 else 8)
    ax.set_xlabel("action word", fontsize=8)
    ax.set_ylabel("contribution", fontsize=8)
    ax.set_title(
        f"{video_id}: contribution of each word to "
        f"'{class_name}' (sum {contributions.sum():.3f})",
        fontsize=9,
    )
    for col, cluster in enumerate(order):
        t, _ = assign_lib.best_frames(assignments[None], cluster)
        ax_frame = fig.add_subplot(grid[1, col])
        _show_frame(
            ax_frame, frames[t[0]], f"word {cluster}: {contributions[cluster]:+.3f}"
        )
        assign_lib.draw_word_markers(
            ax_frame, assignments[t[0]], [cluster], image_size=frames.shape[1:3]
        )
    return plotting.save_figure(fig, path)


def plot_tsne(panels, path, *, width_px=1000, height_px=500, title=""):
    """Figs. 5 and 10: t-SNE scatter plots, one panel each.

    Args:
        panels: list of `(panel_title, embedding [N, 2], groups [N],
            group_names)`; points are coloured by group (video or stream).
        path: output PNG.
    """
    columns = len(panels)
    fig = plotting.new_figure(width_px=width_px, height_px=height_px)
    for i, (panel_title, embedding, groups, names) in enumerate(panels):
        ax = fig.add_subplot(1, columns, i + 1)
        colors = plotting.cluster_colors(len(names)) / 255.0
        for g, name in enumerate(names):
            points = embedding[groups == g]
            ax.scatter(points[:, 0], points[:, 1], s=6, color=colors[g], label=name)
        ax.set_title(panel_title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if len(names) <= 12:
            ax.legend(fontsize=6, markerscale=2, ncol=max(1, math.ceil(len(names) / 6)))
    if title:
        fig.suptitle(title, fontsize=10)
    return plotting.save_figure(fig, path)
