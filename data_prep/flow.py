"""TV-L1 optical flow, quantised and stored the TSN / dense_flow way.

Flow j is computed from frames j and j + 1 (greyscale, at the stored frame
size) by Dual TV-L1, clipped to +-`schema.FLOW_BOUND` pixels, mapped
linearly onto 0..255 and stored as one greyscale JPEG per direction
(docs/RELEASE.md Sec. 1.1). Two backends compute it (docs/FLOW.md):

- 'keras' (the default): `avlad_tf.flow`, batched and compiled (XLA on a
  CPU, JAX on a GPU), for every preset;
- 'opencv': `cv2.optflow.DualTVL1OpticalFlow`, one CPU thread per worker;
  it computes only the 'opencv' preset.

`params` are (name, value) pairs in OpenCV's keyword names, e.g.
`(("nscales", 3),)`, whichever backend runs them.
"""

import functools

import cv2
import numpy as np

from avlad_tf.data import schema
from avlad_tf.flow import parameters as flow_parameters
from avlad_tf.flow import runner
from data_prep import video_io

BACKENDS = ("opencv", "keras")
KERAS_BATCH_SIZE = 8


def single_threaded():
    """Pins OpenCV to one thread: workers parallelise over videos instead."""
    cv2.setNumThreads(1)


def check_backend(backend, preset):
    """Raises ValueError unless `backend` can compute `preset`."""
    if backend not in BACKENDS:
        raise ValueError(f"flow backend must be one of {BACKENDS}, got {backend!r}.")
    if backend == "opencv" and preset != "opencv":
        raise ValueError(
            f"the opencv flow backend computes only the 'opencv' preset; use "
            f"--flow_backend=keras for {preset!r}."
        )


@functools.lru_cache(maxsize=4)
def _keras_pair_flow(frame_size, preset, params):
    """One compiled flow per process, size and settings (compiling takes s)."""
    return runner.PairFlow(
        frame_size,
        preset=preset,
        parameters=flow_parameters.from_opencv_names(params),
        batch_size=KERAS_BATCH_SIZE,
    )


def pair_flow(
    frame_size, *, params=(), preset=flow_parameters.DEFAULT_PRESET, backend="keras"
):
    """A function from grey frame pairs (two uint8 `[N, H, W]`) to their
    float32 flows `[N, H, W, 2]`.

    Args:
        frame_size: (H, W) of every frame.
        params: non-default TV-L1 parameters, OpenCV's names; () keeps the
            preset's.
        preset: a `avlad_tf.flow.PRESETS` name (`avlad_tf.flow.tvl1`);
            'release' is the flow the release trained on.
        backend: 'keras' or 'opencv' (module docstring).
    """
    check_backend(backend, preset)
    if backend == "keras":
        return _keras_pair_flow(tuple(frame_size), preset, tuple(params))
    return _opencv_pair_flow(tuple(params))


@functools.lru_cache(maxsize=4)
def _opencv_pair_flow(params):
    """One OpenCV solver per process and settings, reused for every video."""
    solver = cv2.optflow.DualTVL1OpticalFlow_create(**dict(params))
    return lambda firsts, seconds: np.stack(
        [solver.calc(a, b, None) for a, b in zip(firsts, seconds)]
    )


def greys(frames):
    """uint8 BGR frames -> grey, as the flow sees them."""
    return np.stack([cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) for frame in frames])


def compute_flow(frames, **settings):
    """Float32 flows `(H, W, 2)`, one per consecutive pair of uint8 BGR frames
    at the stored size; `settings` as `pair_flow`'s."""
    grey = greys(frames)
    if len(grey) < 2:
        return []
    return list(pair_flow(grey.shape[1:], **settings)(grey[:-1], grey[1:]))


def encode_flows(flows, *, quality):
    """Quantises flows and encodes each direction as a greyscale JPEG.

    Returns:
        Two lists of JPEG bytes, x and y, one entry per flow.
    """
    xs, ys = [], []
    for flow in flows:
        quantized = schema.quantize_flow(flow)  # (H, W, 2) uint8
        xs.append(video_io.encode_jpeg(quantized[..., 0], quality=quality))
        ys.append(video_io.encode_jpeg(quantized[..., 1], quality=quality))
    return xs, ys
