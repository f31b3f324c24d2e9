"""Keras layers of avlad_tf: pure keras.ops, no TensorFlow import."""

from avlad_tf.layers.netvlad import NetVLAD
from avlad_tf.layers.pixels import ReleasePixels
from avlad_tf.layers.pooling import SpatioTemporalAveragePooling
from avlad_tf.layers.pooling import SpatioTemporalMaxPooling

__all__ = [
    "NetVLAD",
    "ReleasePixels",
    "SpatioTemporalAveragePooling",
    "SpatioTemporalMaxPooling",
]
