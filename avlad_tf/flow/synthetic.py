"""Frame pairs with a known flow, for the agreement tests and `bench/tvl1.py`.

Textures are sums of random plane waves, so a frame can be evaluated exactly
at any displaced position: `first(x) = second(x + flow(x))` holds to float
precision before the uint8 rounding, with no interpolation of our own.
numpy only, so the benchmark runs where OpenCV is not installed.
"""

import numpy as np


def _texture(rng, num_waves=48):
    """A smooth random texture: a function of (y, x) arrays, values 0..255."""
    wavelengths = rng.uniform(6.0, 40.0, num_waves)
    angles = rng.uniform(0.0, np.pi, num_waves)
    phases = rng.uniform(0.0, 2 * np.pi, num_waves)
    ky = np.sin(angles) * 2 * np.pi / wavelengths
    kx = np.cos(angles) * 2 * np.pi / wavelengths

    def evaluate(y, x):
        waves = np.cos(y[..., None] * ky + x[..., None] * kx + phases)
        return 127.5 + 110.0 * waves.mean(axis=-1) * np.sqrt(2.0 * num_waves) / 4.0

    return evaluate


def _natural_texture(rng, num_waves=96):
    """A texture with structure at every scale from 6 to 256 px, amplitude
    proportional to wavelength (the 1/f spectrum of natural images), so a
    coarse pyramid level still sees it; grey 127.5 +- about 39 (one sd)."""
    wavelengths = np.exp(rng.uniform(np.log(6.0), np.log(256.0), num_waves))
    angles = rng.uniform(0.0, np.pi, num_waves)
    phases = rng.uniform(0.0, 2 * np.pi, num_waves)
    ky = np.sin(angles) * 2 * np.pi / wavelengths
    kx = np.cos(angles) * 2 * np.pi / wavelengths
    # A sum of cosines of amplitudes a has variance sum(a^2) / 2.
    amplitudes = wavelengths * 39.0 / np.sqrt(np.sum(wavelengths**2) / 2.0)

    def evaluate(y, x):
        waves = np.cos(y[..., None] * ky + x[..., None] * kx + phases)
        return 127.5 + np.sum(waves * amplitudes, axis=-1)

    return evaluate


def _grid(height, width):
    return np.mgrid[0:height, 0:width].astype(np.float64)


def smooth_motion(height, width, *, seed=0):
    """A textured frame under a smooth sinusoidal displacement.

    Returns:
        `(first, second, flow)`: uint8 `[H, W]` frames and the float32
        `[H, W, 2]` (x, y) flow from first to second.
    """
    texture = _texture(np.random.default_rng(seed))
    y, x = _grid(height, width)
    u = 1.5 + 2.0 * np.sin(2 * np.pi * y / height)
    v = -1.0 + np.cos(2 * np.pi * x / width)
    first = texture(y + v, x + u)
    second = texture(y, x)
    return _to_uint8(first), _to_uint8(second), np.stack([u, v], -1).astype(np.float32)


def large_motion(
    height, width, *, magnitude, kind="translation", texture="natural", seed=0
):
    """A textured frame under a fast motion of up to `magnitude` px.

    Args:
        texture: 'natural' (structure at every scale, `_natural_texture`) or
            'fine' (wavelengths of 6 to 40 px only, as `smooth_motion`'s).
        kind: 'translation' (every pixel moves `magnitude` px along x and
            half of it along y) or 'warp' (a smooth field whose x part runs
            from 0.2 to 1 times `magnitude` down the frame and whose y part
            is a quarter of it, varying across).

    Returns:
        `(first, second, flow)` as `smooth_motion`.
    """
    textures = {"natural": _natural_texture, "fine": _texture}
    if texture not in textures:
        raise ValueError(f"texture must be 'natural' or 'fine', got {texture!r}.")
    pattern = textures[texture](np.random.default_rng(seed))
    y, x = _grid(height, width)
    if kind == "translation":
        u, v = np.full_like(x, magnitude), np.full_like(x, magnitude / 2)
    elif kind == "warp":
        u = magnitude * (0.6 + 0.4 * np.sin(2 * np.pi * y / height))
        v = magnitude * 0.25 * np.cos(2 * np.pi * x / width)
    else:
        raise ValueError(f"kind must be 'translation' or 'warp', got {kind!r}.")
    first = pattern(y + v, x + u)
    second = pattern(y, x)
    return _to_uint8(first), _to_uint8(second), np.stack([u, v], -1).astype(np.float32)


def moving_object(height, width, *, shift=(3.0, -2.0), seed=0):
    """A textured square moving by `shift` (x, y) px over a static textured
    background; the flow is `shift` on the square, 0 elsewhere (in `first`).
    """
    rng = np.random.default_rng(seed)
    background, foreground = _texture(rng), _texture(rng)
    y, x = _grid(height, width)
    top, left, size = height // 4, width // 3, min(height, width) // 2
    dx, dy = shift

    def frame(oy, ox):
        inside = (y >= top + oy) & (y < top + oy + size)
        inside &= (x >= left + ox) & (x < left + ox + size)
        return np.where(inside, foreground(y - oy, x - ox), background(y, x)), inside

    first, on_object = frame(0.0, 0.0)
    second, _ = frame(dy, dx)
    flow = np.zeros((height, width, 2), np.float32)
    flow[on_object] = (dx, dy)
    return _to_uint8(first), _to_uint8(second), flow


def panning_blobs(height, width, *, pan=1.5, num_blobs=5, seed=0):
    """Handheld-like footage: a textured scene panning by `pan` px to the
    left, under textured discs that each move their own way (up to 4 px).
    """
    rng = np.random.default_rng(seed)
    background = _texture(rng)
    blobs = [
        (
            _texture(rng),
            rng.uniform(0.2, 0.8) * height,
            rng.uniform(0.2, 0.8) * width,
            rng.uniform(-4.0, 4.0, 2),  # (dx, dy)
            rng.uniform(0.06, 0.14) * min(height, width) * 2,
        )
        for _ in range(num_blobs)
    ]
    y, x = _grid(height, width)

    def frame(t):
        image = background(y, x + pan * t)
        for texture, cy, cx, (dx, dy), radius in blobs:
            oy, ox = cy + dy * t, cx + dx * t
            inside = (y - oy) ** 2 + (x - ox) ** 2 < radius**2
            image = np.where(inside, texture(y - oy, x - ox), image)
        return image

    flow = np.zeros((height, width, 2), np.float32)
    flow[..., 0] = -pan
    for _, cy, cx, (dx, dy), radius in blobs:  # later blobs are drawn on top
        flow[(y - cy) ** 2 + (x - cx) ** 2 < radius**2] = (dx, dy)
    return _to_uint8(frame(0.0)), _to_uint8(frame(1.0)), flow


def _to_uint8(frame):
    return np.clip(np.round(frame), 0, 255).astype(np.uint8)
