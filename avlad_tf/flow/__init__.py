"""TV-L1 optical flow in keras.ops: no TensorFlow or OpenCV import, so it runs
under XLA on a CPU (TensorFlow backend), on any GPU JAX supports, and inside
an exported SavedModel (docs/FLOW.md)."""

from avlad_tf.flow.layer import TVL1Flow
from avlad_tf.flow.parameters import PRESETS
from avlad_tf.flow.runner import PairFlow
from avlad_tf.flow.runner import tvl1_flow

__all__ = ["PRESETS", "PairFlow", "TVL1Flow", "tvl1_flow"]
