"""Shared figure helpers: exact pixel sizes and model inputs made viewable."""

import matplotlib

# Figures are written to files, never shown: no display is needed (CI, servers).
matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402  (after the backend choice)
import numpy as np  # noqa: E402

from avlad_tf import storage  # noqa: E402

DPI = 100
# The input pipeline's per-channel BGR means (CONTRACTS.md, input pipeline).
BGR_MEAN = np.array([104.0, 117.0, 123.0], np.float32)
FLOW_MEAN = 128.0


def new_figure(*, width_px, height_px, constrained=True):
    """A figure that saves to exactly `width_px` x `height_px` pixels.

    `constrained` lays out subplots, grids and labels automatically; turn it
    off for figures that place their axes by hand.
    """
    if width_px < 50 or height_px < 50:
        raise ValueError(
            f"figure size must be at least 50x50 pixels. Received: "
            f"{width_px}x{height_px}"
        )
    return plt.figure(
        figsize=(width_px / DPI, height_px / DPI),
        dpi=DPI,
        layout="constrained" if constrained else None,
    )


def save_figure(fig, path):
    """Writes `fig` as PNG (creating parent folders) and closes it.

    No `bbox_inches='tight'`: it would change the pixel size callers asked for.
    matplotlib writes local files: a URL gets a staged copy
    (`storage.local_output`), whole or not at all.
    """
    storage.make_parent(path)
    try:
        with storage.local_output(path) as local:
            fig.savefig(local, dpi=DPI, format="png")
    finally:
        plt.close(fig)
    return path


def displayable_frames(frames):
    """Model inputs -> uint8 RGB images for display.

    Args:
        frames: `[..., H, W, C]` float inputs as the pipeline yields them:
            C = 3 is BGR minus the ImageNet means; an even C > 3 (or 2) is a
            stack of flow pairs (x1, y1, ...) minus 128, shown as the
            magnitude of its middle pair (the stack is centred on the frame).

    Returns:
        `[..., H, W, 3]` uint8 RGB.
    """
    frames = np.asarray(frames, np.float32)
    channels = frames.shape[-1]
    if channels == 3:
        rgb = (frames + BGR_MEAN)[..., ::-1]  # BGR -> RGB
        return np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    if channels % 2 == 0:
        middle = 2 * ((channels // 2) // 2)  # first channel of middle pair
        magnitude = np.hypot(frames[..., middle], frames[..., middle + 1])
        # 128 is the largest displacement after quantisation (+-bound).
        grey = np.clip(magnitude / FLOW_MEAN * 255.0 * 2.0, 0, 255)
        return np.repeat(grey[..., None], 3, axis=-1).astype(np.uint8)
    raise ValueError(
        f"cannot display frames with {channels} channels: expected 3 (RGB) "
        f"or an even number (flow x/y pairs)"
    )


def cluster_colors(num_clusters):
    """`[K, 3]` uint8 distinct colours, one per action word.

    tab20 without its greys (kept for "not highlighted"), dark shades first
    so that up to 9 words never share a hue; hsv beyond 18 words.
    """
    if num_clusters <= 18:
        cmap = plt.get_cmap("tab20")
        order = [i for i in range(0, 20, 2) if i != 14] + [
            i for i in range(1, 20, 2) if i != 15
        ]
        values = [cmap(order[k])[:3] for k in range(num_clusters)]
    else:
        cmap = plt.get_cmap("hsv")
        values = [cmap(k / num_clusters)[:3] for k in range(num_clusters)]
    return np.round(np.array(values) * 255).astype(np.uint8)
