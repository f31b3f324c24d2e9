"""The release's flow first layer from RGB weights (docs/RELEASE.md Sec. 4.3),
one rule for every backbone that reads flow through RGB weights."""

import numpy as np


def flow_kernel_from_rgb(kernel, num_channels):
    """The release's flow first layer (`convert_first_layer_for_flow.py`).

    Averages an RGB first-conv kernel `[kh, kw, 3, F]` over the input-channel
    axis and replicates the mean `num_channels` times, with no rescaling.

    Returns:
        A `[kh, kw, num_channels, F]` float32 array.
    """
    kernel = np.asarray(kernel, dtype=np.float32)
    mean = kernel.mean(axis=2, keepdims=True)  # (kh, kw, 1, F)
    return np.repeat(mean, num_channels, axis=2)  # (kh, kw, C, F)
