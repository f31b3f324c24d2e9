"""Action words: where each NetVLAD cluster fires (paper Figs. 6, 7 and 8).

A feature-grid cell (i, j) of an `h x w` map computed from an `H x W` frame
sees a receptive field centred at `((i + 0.5) * H / h - 0.5, ...)`: the
backbone's total stride is H / h (16 for VGG16 conv5_3 on 224 x 224). A cell
belongs to the word its soft assignment ranks first (argmax over K).
"""

import numpy as np

from avlad_tf.visualization import plotting


def receptive_field_centers(*, grid_size, image_size):
    """Pixel centres of the cells of a feature grid.

    Args:
        grid_size: `(h, w)` of the feature map.
        image_size: `(H, W)` of the input frame.

    Returns:
        `(ys [h], xs [w])` float pixel coordinates.
    """
    (h, w), (height, width) = grid_size, image_size
    ys = (np.arange(h) + 0.5) * (height / h) - 0.5
    xs = (np.arange(w) + 0.5) * (width / w) - 0.5
    return ys, xs


def cell_index_maps(*, grid_size, image_size):
    """For every pixel, the row / column of the feature cell it falls in."""
    (h, w), (height, width) = grid_size, image_size
    rows = np.minimum(np.arange(height) * h // height, h - 1)
    cols = np.minimum(np.arange(width) * w // width, w - 1)
    return rows, cols


def tinted_assignment_frames(frames, assignments, *, clusters=None, opacity=0.5):
    """Frames with each cell tinted in the colour of its action word.

    For TensorBoard (`tf.summary.image`) during training, and for figures.

    Args:
        frames: `[N, H, W, C]` model inputs (BGR minus means, or flow).
        assignments: `[N, h, w, K]` soft assignments of those frames.
        clusters: words to show (default all); other cells stay untinted.
        opacity: tint strength in [0, 1].

    Returns:
        `[N, H, W, 3]` uint8 RGB images.
    """
    frames = np.asarray(frames)
    assignments = np.asarray(assignments)
    if (
        frames.ndim != 4
        or assignments.ndim != 4
        or frames.shape[0] != assignments.shape[0]
    ):
        raise ValueError(
            f"tinted_assignment_frames expects frames [N, H, W, C] and assignments "
            f"[N, h, w, K]. Received {frames.shape} and {assignments.shape}"
        )
    images = plotting.displayable_frames(frames).astype(np.float32)
    num_clusters = assignments.shape[-1]
    words = np.argmax(assignments, axis=-1)  # [N, h, w]
    rows, cols = cell_index_maps(
        grid_size=assignments.shape[1:3], image_size=frames.shape[1:3]
    )
    pixel_words = words[:, rows][:, :, cols]  # [N, H, W] nearest upsampling
    colors = plotting.cluster_colors(num_clusters).astype(np.float32)
    tint = colors[pixel_words]  # [N, H, W, 3]
    shown = (
        np.ones_like(pixel_words, bool)
        if clusters is None
        else np.isin(pixel_words, np.asarray(clusters))
    )
    weight = np.where(shown, float(opacity), 0.0)[..., None]
    blended = (1.0 - weight) * images + weight * tint
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def cluster_contributions(descriptor, kernel, *, class_index, num_clusters):
    """Each word's share of one class score (paper Fig. 8).

    The logit is `sum_k <W[k-block, c], descriptor[k-block]> + b_c`, because
    the descriptor is cluster-major (index k * D + d).

    Args:
        descriptor: `[K * D]` pooled descriptor of one video.
        kernel: `[K * D, C]` kernel of the `logits` layer.
        class_index: the class c.
        num_clusters: K.

    Returns:
        `[K]` contributions; they sum to the logit minus the bias.
    """
    descriptor = np.asarray(descriptor, np.float64).reshape(-1)
    kernel = np.asarray(kernel, np.float64)
    if kernel.shape[0] != descriptor.shape[0] or descriptor.shape[0] % num_clusters:
        raise ValueError(
            f"classifier kernel {kernel.shape} does not match a descriptor of "
            f"size {descriptor.shape[0]} with {num_clusters} clusters"
        )
    products = descriptor * kernel[:, class_index]
    return products.reshape(num_clusters, -1).sum(axis=1)  # [K, D] -> [K]


def word_cells(assignments, cluster):
    """Cells whose argmax word is `cluster`: bool `[..., h, w]`."""
    return np.argmax(assignments, axis=-1) == cluster


def draw_word_markers(ax, assignments, clusters, *, image_size, size=40.0):
    """Marks each cell assigned to one of `clusters` at its field centre.

    Args:
        ax: matplotlib axes showing one frame.
        assignments: `[h, w, K]` soft assignments of that frame.
        clusters: words to mark, each in its own colour.
        image_size: `(H, W)` of the frame shown.
        size: marker area for an assignment weight of 1.
    """
    num_clusters = assignments.shape[-1]
    colors = plotting.cluster_colors(num_clusters) / 255.0
    ys, xs = receptive_field_centers(
        grid_size=assignments.shape[:2], image_size=image_size
    )
    for cluster in clusters:
        rows, cols = np.nonzero(word_cells(assignments, cluster))
        if rows.size:
            weight = assignments[rows, cols, cluster]
            ax.scatter(
                xs[cols],
                ys[rows],
                s=size * (0.3 + weight),
                facecolors="none",
                edgecolors=[colors[cluster]],
                linewidths=1.5,
            )


def best_frames(assignments, cluster):
    """Per video, the frame with most cells of `cluster` and that count.

    Args:
        assignments: `[V, T, h, w, K]`.

    Returns:
        `(frame_index [V], count [V])`.
    """
    counts = word_cells(assignments, cluster).sum(axis=(-2, -1))  # [V, T]
    best = np.argmax(counts, axis=1)
    return best, counts[np.arange(counts.shape[0]), best]
