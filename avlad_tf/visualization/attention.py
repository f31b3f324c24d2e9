"""VideoLSTM's attention maps: where its ConvALSTM looks in each frame.

The counterpart of the ActionVLAD assignments (`assignments.py`). A
VideoLSTM model (`build_model.pooling = 'videolstm'`) exposes its maps as the
`attention` endpoint of `inspection.endpoints_model`: one `[h', w']` map per
frame, a softmax over positions (it sums to 1), on the grid of the
ConvALSTM's input (pool5: VGG16's stride 32 at 224 x 224). With motion-based
attention the map is computed from the flow stream but weighs the RGB
frame, so it is shown on the RGB frames.
"""

import numpy as np

from avlad_tf.visualization import assignments
from avlad_tf.visualization import plotting


def attention_maps(model, inputs):
    """The attention maps of one batch, from a built or loaded model.

    Args:
        model: a VideoLSTM model (`build_model(pooling='videolstm', ...)`,
            or a trained `model.keras`).
        inputs: `{modality: [B, T, S, S, C]}` model inputs.

    Returns:
        `[B, T, h', w']` float32 maps, each summing to 1.

    Raises:
        ValueError: if the model has no VideoLSTM attention.
    """
    from avlad_tf.models import inspection  # pylint: disable=import-outside-toplevel

    outputs = inspection.endpoints_model(model)(inputs, training=False)
    if "attention" not in outputs:
        raise ValueError(
            f"model {model.name!r} has no attention maps (its pooling is not "
            "'videolstm'); build it with build_model.pooling = 'videolstm'"
        )
    return np.asarray(outputs["attention"], np.float32)


def attention_overlay(frames, attention, *, opacity=0.6):
    """Frames with their attention as a heat map (bright: attended).

    Each map is scaled by its maximum, so the most attended cell of every
    frame shows at full strength whatever the grid size.

    Args:
        frames: `[N, H, W, C]` model inputs (BGR minus means, or flow), or
            uint8 RGB images (`inference.run_model`'s `frames`).
        attention: `[N, h, w]` maps of those frames.
        opacity: heat-map strength in [0, 1].

    Returns:
        `[N, H, W, 3]` uint8 RGB images.
    """
    frames = np.asarray(frames)
    attention = np.asarray(attention, np.float32)
    if frames.ndim != 4 or attention.ndim != 3 or frames.shape[0] != attention.shape[0]:
        raise ValueError(
            f"attention_overlay expects frames [N, H, W, C] and attention "
            f"[N, h, w]. Received {frames.shape} and {attention.shape}"
        )
    if frames.dtype != np.uint8:
        frames = plotting.displayable_frames(frames)
    images = frames.astype(np.float32)
    peak = np.maximum(attention.max(axis=(1, 2), keepdims=True), 1e-12)
    rows, cols = assignments.cell_index_maps(
        grid_size=attention.shape[1:3], image_size=frames.shape[1:3]
    )
    heat = (attention / peak)[:, rows][:, :, cols]  # [N, H, W] nearest upsampling
    colors = plotting.plt.get_cmap("inferno")(heat)[..., :3] * 255.0
    blended = (1.0 - opacity) * images + opacity * colors
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def plot_attention(
    frames, attention, path, *, video_id="", max_frames=8, width_px=1200, height_px=300
):
    """One video's attention, frame by frame (evenly spaced frames).

    Args:
        frames: `[T, H, W, 3]` uint8 RGB.
        attention: `[T, h, w]` maps.
        path: output PNG.

    Returns:
        `path`.
    """
    num_frames = frames.shape[0]
    shown = np.unique(
        np.linspace(0, num_frames - 1, min(max_frames, num_frames)).astype(int)
    )
    overlays = attention_overlay(frames[shown], attention[shown])
    fig = plotting.new_figure(width_px=width_px, height_px=height_px)
    for col, (t, image) in enumerate(zip(shown, overlays)):
        ax = fig.add_subplot(1, len(shown), col + 1)
        ax.imshow(image)
        ax.set_xticks([])
        ax.set_yticks([])
        # The peak share: 1 / (h' w') is uniform attention.
        ax.set_title(f"t={t} peak {attention[t].max():.2f}", fontsize=7)
    fig.suptitle(f"VideoLSTM attention {video_id}".strip(), fontsize=10)
    return plotting.save_figure(fig, path)
