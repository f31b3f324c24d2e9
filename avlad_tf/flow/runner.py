"""Compiled TV-L1: one call on frames, or many pairs in fixed-size batches.

`tvl1_flow(first, second)` on NumPy frames compiles the flow once per frame
shape, batch, dtype, preset and parameters, keeps the compiled function and
reuses it on the next call of that kind (docs/FLOW.md). On backend tensors
(inside a layer, a `tf.function` or a `jax.jit`) it is `tvl1.flow_ops`, the
plain ops, for the caller's compiler to trace.

`PairFlow` compiles once per frame size and batch size and pads the last
batch with blank pairs, which converge at the first iteration and, since
pairs stop independently, change nothing for the others. It is what
`data_prep` (`--flow_backend=keras`) and `predict` call.
"""

import functools

import keras
import numpy as np

from avlad_tf.flow import layer as layer_lib
from avlad_tf.flow import tvl1
from avlad_tf.flow.parameters import DEFAULT_PRESET

# Compiled flow functions kept at once: each holds an XLA executable.
_CACHE_SIZE = 16


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compiled(shape, dtype, preset, parameters):
    """A jit-compiled one-layer model over frame batches of `shape` `[B, H, W]`.

    `parameters`: the preset's overrides as sorted `(name, value)` pairs,
    hashable for the cache.
    """
    batch, height, width = shape
    flow_layer = layer_lib.TVL1Flow(preset=preset, parameters=dict(parameters))
    first = keras.Input((height, width), batch_size=batch, dtype=dtype)
    second = keras.Input((height, width), batch_size=batch, dtype=dtype)
    model = keras.Model([first, second], flow_layer(first, second))
    model.compile(jit_compile=True)
    return model


def _frames_dtype(frames):
    """uint8 frames stay uint8 (0..255); anything else is float in [0, 1]."""
    return "uint8" if frames.dtype == np.uint8 else "float32"


def tvl1_flow(first, second, *, preset=DEFAULT_PRESET, **overrides):
    """TV-L1 flow from `first` to `second`, compiled on first use.

    Args:
        first, second: grey frames `[H, W]` or `[B, H, W]` (H, W >= 3),
            uint8 in 0..255 or float in [0, 1] (scaled by 255, as OpenCV
            does for float images): NumPy arrays (compiled and cached), or
            backend tensors (`tvl1.flow_ops`, to trace).
        preset: a `parameters.PRESETS` name.
        **overrides: any `parameters.Parameters` field, e.g. `warps=1`.

    Returns:
        `[..., H, W, 2]` float32 flow (x, y) in pixels: a NumPy array for
        NumPy frames.
    """
    if not isinstance(first, np.ndarray) or not isinstance(second, np.ndarray):
        return tvl1.flow_ops(first, second, preset=preset, **overrides)
    tvl1.check_frames(first.shape, second.shape)
    single = first.ndim == 2
    if single:
        first, second = first[None], second[None]
    dtype = _frames_dtype(first)
    model = _compiled(first.shape, dtype, preset, tuple(sorted(overrides.items())))
    flow = np.asarray(
        model.predict_on_batch([first.astype(dtype), second.astype(dtype)])
    )
    return flow[0] if single else flow


class PairFlow:
    """TV-L1 flow for batches of grey frame pairs of one size.

    Args:
        frame_size: (height, width) of every frame.
        preset, parameters: as `layer.TVL1Flow`.
        batch_size: pairs per compiled call; the last call is padded.
    """

    def __init__(
        self, frame_size, *, preset=DEFAULT_PRESET, parameters=None, batch_size=8
    ):
        height, width = frame_size
        self.batch_size = batch_size
        self.model = _compiled(
            (batch_size, height, width),
            "uint8",
            preset,
            tuple(sorted((parameters or {}).items())),
        )

    def __call__(self, firsts, seconds):
        """`[N, H, W]` uint8 pairs -> `[N, H, W, 2]` float32 flow."""
        firsts, seconds = np.asarray(firsts), np.asarray(seconds)
        count = len(firsts)
        padding = -count % self.batch_size
        if padding:
            blank = np.zeros((padding, *firsts.shape[1:]), np.uint8)
            firsts = np.concatenate([firsts, blank])
            seconds = np.concatenate([seconds, blank])
        flows = [
            np.asarray(
                self.model.predict_on_batch(
                    [firsts[i : i + self.batch_size], seconds[i : i + self.batch_size]]
                )
            )
            for i in range(0, len(firsts), self.batch_size)
        ]
        return np.concatenate(flows)[:count]

    def consecutive(self, greys):
        """Flow j from frame j to j + 1 of `[T, H, W]` grey frames: `[T-1, H, W, 2]`."""
        greys = np.asarray(greys)
        return self(greys[:-1], greys[1:])
