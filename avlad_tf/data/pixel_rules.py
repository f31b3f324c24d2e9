"""The release's pixel constants (docs/RELEASE.md Sec. 3), shared by both sides.

The host pipeline (`data.preprocessing`, the tf.data reader) and the on-device
layer that repeats its arithmetic (`layers.pixels.ReleasePixels`) must agree
on these to the bit. They live here, in plain Python, so that the reader does
not import Keras layers and the layers do not import TensorFlow: this module
imports neither (`tests/data/pixel_rules_test.py`).
"""

# Caffe/VGG means in BGR order, as integers (`vgg_ucf_preprocessing.py:19-21`).
RELEASE_BGR_MEANS = (104.0, 117.0, 123.0)
# Keras' `imagenet_utils.preprocess_input(mode='caffe')` means, for the
# `bgr_means` parity switch.
KERAS_BGR_MEANS = (103.939, 116.779, 123.68)
# Flow planes are stored with 128 as zero motion; a flat mean, no negation.
FLOW_MEAN = 128.0
MODALITIES = ("rgb", "flow")
# The layout each stream's uint8 evaluation crops ship in. Flow is
# channels-first, `[..., 2L, S, S]`: its planes are decoded one per JPEG, and
# interleaving them into channels on the host costs more than decoding them,
# so the device transposes instead.
UINT8_DATA_FORMATS = {"rgb": "channels_last", "flow": "channels_first"}
