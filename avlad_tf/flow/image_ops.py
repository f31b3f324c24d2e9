"""The image operations TV-L1 is built from, in keras.ops, OpenCV's way.

Every function takes a batch of single-channel float32 images `[B, H, W]`
with static H and W; index tables are built with numpy at trace time, so the
graph holds only gathers and elementwise arithmetic (no matmul, whose float32
precision some GPUs lower). Each rule is the one OpenCV's `tvl1flow.cpp`
calls, as described in docs/FLOW.md:

- `resize_linear`: `cv::resize(INTER_LINEAR)` on float images (pixel-centre
  mapping, clamped at the edges, no pre-smoothing), or the CUDA kernel's
  (a destination pixel x reads source x * f, no half-pixel offset);
- `pyr_down`: `cv::gpu::pyrDown` (5-tap Gaussian, BORDER_REFLECT_101, every
  second pixel), the pyramid of OpenCV 2.4's GPU TV-L1;
- `warp_bicubic`: `cv::remap(INTER_CUBIC)` (Keys a = -0.75 at the exact
  coordinates, as OpenCV 5 does, zero outside) or the CUDA kernel's
  normalised a = -0.5 bicubic on clamped texels;
- `median_blur`: `cv::medianBlur` on float images (replicated border);
- `grey_from_rgb`: `cv::cvtColor(COLOR_RGB2GRAY)` on uint8 frames;
- `centered_gradient`, `forward_gradient`, `divergence`: TV-L1's finite
  differences, with its border rules.
"""

from keras import ops
import numpy as np

# cv2.COLOR_RGB2GRAY on uint8 in OpenCV 5: BT.601 luma in 15-bit fixed
# point, rounded (checked against cv2.cvtColor on every test run).
_GREY_WEIGHTS = (9798, 19235, 3735)  # R, G, B; they sum to 2^15
_GREY_SHIFT = 15


def grey_from_rgb(frames):
    """uint8 RGB `[..., 3]` -> uint8 grey `[...]`, bit-exact with OpenCV."""
    channels = ops.cast(frames, "int32")
    weighted = sum(channels[..., i] * w for i, w in enumerate(_GREY_WEIGHTS))
    return ops.cast(
        ops.right_shift(weighted + (1 << (_GREY_SHIFT - 1)), _GREY_SHIFT), "uint8"
    )


def _linear_taps(in_size, out_size, scale, rule):
    """Source indices `(i0, i1)` and weight of i1 for each output pixel.

    `scale` is source pixels per output pixel. OpenCV's CPU resize maps pixel
    centres and clamps the position into the image; its CUDA kernel maps
    x -> x * scale in float32 (corners aligned, never below 0).
    """
    if rule == "opencv":
        position = ((np.arange(out_size) + 0.5) * scale - 0.5).astype(np.float32)
    elif rule == "cuda":
        position = np.arange(out_size, dtype=np.float32) * np.float32(scale)
    else:
        raise ValueError(f"rule must be 'opencv' or 'cuda', got {rule!r}.")
    i0 = np.floor(position)
    frac = position - i0
    below = i0 < 0
    above = i0 >= in_size - 1
    i0[below], frac[below] = 0, 0
    i0[above], frac[above] = in_size - 1, 0
    i1 = np.minimum(i0 + 1, in_size - 1)
    return i0.astype(np.int32), i1.astype(np.int32), frac.astype(np.float32)


def _resize_axis(images, out_size, scale, axis, rule):
    i0, i1, frac = _linear_taps(images.shape[axis], out_size, scale, rule)
    shape = [1, 1, 1]
    shape[axis] = out_size
    frac = np.reshape(frac, shape)
    low = ops.take(images, i0, axis=axis)
    high = ops.take(images, i1, axis=axis)
    return low * (1.0 - frac) + high * frac


def resize_linear(images, size, *, scale=None, rule="opencv"):
    """`cv::resize(INTER_LINEAR)` of `[B, H, W]` float images to `size` (h, w).

    Args:
        scale: the factor OpenCV was given (`fx = fy`), which then sets the
            pixel mapping; None maps by the ratio of the sizes, as OpenCV
            does when given a destination size.
        rule: 'opencv' (the CPU's pixel-centre mapping) or 'cuda' (the CUDA
            kernel's, `_linear_taps`).
    """
    height, width = images.shape[1], images.shape[2]
    # 1 / (out / in), in double, as both of OpenCV's resizes compute it.
    scale_y = 1.0 / (scale or size[0] / height)
    scale_x = 1.0 / (scale or size[1] / width)
    resized = _resize_axis(images, size[1], scale_x, 2, rule)
    return _resize_axis(resized, size[0], scale_y, 1, rule)


def pyramid_size(size, scale):
    """The size `cv::resize(fx=fy=scale)` gives: each side rounded to nearest."""
    return tuple(int(round(side * scale)) for side in size)


def pyr_down_size(size):
    """The size `pyrDown` gives: each side halved, rounded up."""
    return tuple((side + 1) // 2 for side in size)


_PYR_DOWN_TAPS = (0.0625, 0.25, 0.375, 0.25, 0.0625)  # [1 4 6 4 1] / 16


def _pyr_down_axis(images, axis):
    size = images.shape[axis]
    centres = 2 * np.arange((size + 1) // 2)
    result = None
    for offset, weight in zip(range(-2, 3), _PYR_DOWN_TAPS):
        index = np.abs(centres + offset)  # BORDER_REFLECT_101: -1 -> 1, -2 -> 2
        index = np.where(index > size - 1, 2 * (size - 1) - index, index)
        term = weight * ops.take(images, index, axis=axis)
        result = term if result is None else result + term
    return result


def pyr_down(images):
    """`cv::gpu::pyrDown` of `[B, H, W]` float images: the 5-tap Gaussian over
    rows and then columns, at every second row and column, in float32."""
    return _pyr_down_axis(_pyr_down_axis(images, axis=1), axis=2)


def _keys_weights(frac, a):
    """Keys' cubic convolution weights of the 4 taps at offsets -1, 0, 1, 2."""
    distances = [frac + 1.0, frac, 1.0 - frac, 2.0 - frac]
    weights = []
    for d in distances:
        near = ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0
        far = ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a
        weights.append(ops.where(d <= 1.0, near, ops.where(d < 2.0, far, 0.0)))
    return ops.stack(weights, axis=-1)  # [..., 4]


def warp_bicubic(images, map_x, map_y, *, rule):
    """Samples each image at `(map_x, map_y)` with bicubic interpolation.

    Args:
        images: `[B, H, W, C]` float32, C images sampled at the same points.
        map_x, map_y: `[B, H, W]` float32 source coordinates in pixels.
        rule: 'opencv' (`cv::remap` INTER_CUBIC, BORDER_CONSTANT 0) or
            'cuda' (normalised a = -0.5 weights, clamped texels).

    Returns:
        `[B, H, W, C]` float32.
    """
    height, width, channels = images.shape[1:]
    if rule == "opencv":
        a = -0.75
    elif rule == "cuda":
        a = -0.5
    else:
        raise ValueError(f"rule must be 'opencv' or 'cuda', got {rule!r}.")
    x0 = ops.floor(map_x)
    y0 = ops.floor(map_y)
    weights_x = _keys_weights(map_x - x0, a)  # [B, H, W, 4]
    weights_y = _keys_weights(map_y - y0, a)  # [B, H, W, 4]
    offsets = ops.arange(-1, 3, dtype="int32")
    taps_x = ops.cast(x0, "int32")[..., None] + offsets  # [B, H, W, 4]
    taps_y = ops.cast(y0, "int32")[..., None] + offsets  # [B, H, W, 4]
    if rule == "opencv":
        # Taps outside the image read 0 (BORDER_CONSTANT).
        weights_x = weights_x * ops.cast((taps_x >= 0) & (taps_x < width), "float32")
        weights_y = weights_y * ops.cast((taps_y >= 0) & (taps_y < height), "float32")
    taps_x = ops.clip(taps_x, 0, width - 1)
    taps_y = ops.clip(taps_y, 0, height - 1)
    # Flat row indices into [B * H * W, C]: one gather for the 16 taps.
    batch = ops.shape(images)[0]  # may be unknown until run time
    base = ops.reshape(ops.arange(batch, dtype="int32") * (height * width), (-1, 1, 1))
    rows = (base[..., None] + taps_y * width)[..., :, None]  # [B, H, W, 4, 1]
    flat = rows + taps_x[..., None, :]  # [B, H, W, 4 (y), 4 (x)]
    texels = ops.take(ops.reshape(images, (-1, channels)), flat, axis=0)
    weights = weights_y[..., :, None] * weights_x[..., None, :]  # [B, H, W, 4, 4]
    sampled = ops.sum(texels * weights[..., None], axis=(3, 4))  # [B, H, W, C]
    if rule == "cuda":
        sampled = sampled / ops.sum(weights, axis=(3, 4))[..., None]
    return sampled


def replicate_pad(images, before, after):
    """Pads `[B, H, W]` by repeating edge pixels: `before` rows and columns
    above and left, `after` below and right (ops.pad has no 'edge' mode on
    every backend; slices and a concatenation are cheaper than a gather)."""
    for axis in (1, 2):
        size = images.shape[axis]
        first = ops.take(images, [0] * before, axis=axis) if before else None
        last = ops.take(images, [size - 1] * after, axis=axis) if after else None
        parts = [p for p in (first, images, last) if p is not None]
        images = ops.concatenate(parts, axis=axis)
    return images


def _shifted_views(images, radius):
    """The (2r + 1)^2 neighbours of every pixel, edges replicated: a list of
    `[B, H, W]`."""
    height, width = images.shape[1], images.shape[2]
    padded = replicate_pad(images, radius, radius)
    size = 2 * radius + 1
    return [
        padded[:, dy : dy + height, dx : dx + width]
        for dy in range(size)
        for dx in range(size)
    ]


def _batcher_comparators(n):
    """Batcher's odd-even merge sort network for n (a power of two) values."""
    comparators = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        comparators.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return comparators


def median_network(count):
    """Compare-exchange steps `(i, j, keep_min, keep_max)` whose result at
    index count // 2 is the median of `count` values.

    Batcher's network for the next power of two, less the comparators that
    touch the (virtual, +inf) padding or cannot reach the median: 113 steps
    and 202 min/max operations for 25 values, where a sort is much slower
    under XLA.
    """
    size = 1 << (count - 1).bit_length()
    comparators = [(i, j) for i, j in _batcher_comparators(size) if j < count]
    needed, steps = {count // 2}, []
    for i, j in reversed(comparators):
        if i in needed or j in needed:
            steps.append((i, j, i in needed, j in needed))
            needed |= {i, j}
    return steps[::-1]


def median_blur(images, ksize):
    """`cv::medianBlur(ksize)` of float images (3 or 5, as OpenCV allows)."""
    if ksize not in (3, 5):
        raise ValueError(
            f"median_filtering must be 0, 1 (off), 3 or 5; OpenCV's float "
            f"median supports only 3 and 5. Got {ksize}."
        )
    values = _shifted_views(images, ksize // 2)
    for i, j, keep_min, keep_max in median_network(len(values)):
        low = ops.minimum(values[i], values[j]) if keep_min else None
        high = ops.maximum(values[i], values[j]) if keep_max else None
        values[i], values[j] = low, high
    return values[len(values) // 2]


def centered_gradient(images):
    """Central differences, halved, with replicated edges: `(dx, dy)`."""
    padded = replicate_pad(images, 1, 1)
    dx = 0.5 * (padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2])
    dy = 0.5 * (padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1])
    return dx, dy


def forward_gradient(images):
    """Forward differences, 0 on the last column (dx) and last row (dy)."""
    padded = replicate_pad(images, 0, 1)
    dx = padded[:, :-1, 1:] - images
    dy = padded[:, 1:, :-1] - images
    return dx, dy


def divergence(p1, p2):
    """Backward-difference divergence of `(p1, p2)`, 0 before the first pixel."""
    left = ops.pad(p1, ((0, 0), (0, 0), (1, 0)))[:, :, :-1]
    up = ops.pad(p2, ((0, 0), (1, 0), (0, 0)))[:, :-1, :]
    return (p1 - left) + (p2 - up)
