"""Keras layers of avlad_tf: pure keras.ops, no TensorFlow import."""

from avlad_tf.layers.context_gating import ContextGating
from avlad_tf.layers.conv_pooling import ConvPooling
from avlad_tf.layers.frame_lstm import FrameLSTM
from avlad_tf.layers.frame_lstm import TimeAveragedLogits
from avlad_tf.layers.ghostvlad import GhostVLAD
from avlad_tf.layers.local_response_norm import LocalResponseNormalization
from avlad_tf.layers.netrvlad import NetRVLAD
from avlad_tf.layers.netvlad import NetVLAD
from avlad_tf.layers.nextvlad import NeXtVLAD
from avlad_tf.layers.pixels import ReleasePixels
from avlad_tf.layers.pooling import SpatioTemporalAveragePooling
from avlad_tf.layers.pooling import SpatioTemporalMaxPooling
from avlad_tf.layers.res_inception import ResInceptionPooling
from avlad_tf.layers.res_inception import TemporalResInception
from avlad_tf.layers.stfn import SpatioTemporalFusion
from avlad_tf.layers.video_lstm import ConvALSTM

__all__ = [
    "NetVLAD",
    "NetRVLAD",
    "GhostVLAD",
    "NeXtVLAD",
    "ReleasePixels",
    "SpatioTemporalAveragePooling",
    "SpatioTemporalMaxPooling",
    "ConvPooling",
    "ContextGating",
    "FrameLSTM",
    "TimeAveragedLogits",
    "ConvALSTM",
    "TemporalResInception",
    "ResInceptionPooling",
    "SpatioTemporalFusion",
    "LocalResponseNormalization",
]
