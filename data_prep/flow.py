"""TV-L1 optical flow, quantised and stored the TSN / dense_flow way.

Flow j is computed from frames j and j + 1 (greyscale, at the stored frame
size) by OpenCV's Dual TV-L1 with its default parameters, clipped to
+-`schema.FLOW_BOUND` pixels, mapped linearly onto 0..255 and stored as one
greyscale JPEG per direction (docs/RELEASE.md Sec. 1.1).
"""

import cv2

from avlad_tf.data import schema
from data_prep import video_io


def single_threaded():
    """Pins OpenCV to one thread: workers parallelise over videos instead."""
    cv2.setNumThreads(1)


def compute_flow(frames, *, params=None):
    """Returns float32 flows (H, W, 2), one per consecutive pair of frames.

    Args:
        frames: uint8 BGR frames at the stored size.
        params: keyword arguments for `DualTVL1OpticalFlow_create` (e.g.
            `{"nscales": 3}`); None keeps OpenCV's defaults, the TSN /
            dense_flow setting.
    """
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create(**dict(params or {}))
    greys = [cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) for frame in frames]
    return [
        tvl1.calc(previous, current, None)
        for previous, current in zip(greys[:-1], greys[1:])
    ]


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
