"""Tests of ReleasePixels: the host pipeline's pixel arithmetic, on device."""

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from avlad_tf.data import preprocessing
from avlad_tf.layers import ReleasePixels
from tests import testing


class ReleasePixelsTest(testing.TestCase):
    @parameterized.product(
        (dict(modality="rgb", channels=3), dict(modality="flow", channels=6)),
        num_crops=(1, 5),
        convert_before_resize=(True, False),
        bgr_means=(preprocessing.RELEASE_BGR_MEANS, preprocessing.KERAS_BGR_MEANS),
    )
    def test_bit_identical_to_the_host_pipeline(
        self, modality, channels, num_crops, convert_before_resize, bgr_means
    ):
        # Every uint8 value occurs, in every channel.
        frames = (
            np.random.default_rng(0)
            .permutation(
                np.resize(np.arange(256, dtype=np.uint8), 3 * 40 * 48 * channels)
            )
            .reshape(3, 40, 48, channels)
        )
        options = dict(
            modality=modality, num_crops=num_crops, image_size=32, resize_to=(40, 48)
        )
        host = preprocessing.preprocess_for_eval(
            tf.constant(frames),
            bgr_means=bgr_means,
            convert_before_resize=convert_before_resize,
            **options,
        )
        crops = preprocessing.eval_crops_uint8(tf.constant(frames), **options)
        self.assertEqual(crops.dtype, tf.uint8)
        self.assertEqual(crops.shape, host.shape)
        pixel_options = dict(
            bgr_means=bgr_means, convert_before_resize=convert_before_resize
        )
        for data_format in ("channels_last", "channels_first"):
            if data_format == "channels_first":  # [N, S, S, C] -> [N, C, S, S]
                crops = tf.transpose(crops, [0, 3, 1, 2])
            device = ReleasePixels(modality, data_format=data_format, **pixel_options)
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(device(crops.numpy())), host.numpy()
            )

    def test_float32_under_mixed_precision(self):
        keras.mixed_precision.set_global_policy("mixed_float16")
        layer = ReleasePixels("flow", data_format="channels_last")
        out = layer(np.full((1, 2, 2, 4), 255, np.uint8))
        self.assertEqual(keras.ops.convert_to_numpy(out).dtype, np.float32)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(out), 127.0)

    def test_config_and_symbolic_call(self):
        layer = ReleasePixels(
            "rgb", bgr_means=(1.0, 2.0, 3.0), convert_before_resize=False, name="pixels"
        )
        self.assert_serialization_round_trip(layer)
        self.assert_symbolic_call(
            ReleasePixels("rgb"), (None, 5, 8, 8, 3), (None, 5, 8, 8, 3)
        )
        self.assert_symbolic_call(  # uint8 flow ships channels-first
            ReleasePixels("flow"), (None, 5, 20, 8, 9), (None, 5, 8, 9, 20)
        )

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "modality.*'depth'"):
            ReleasePixels("depth")
        with self.assertRaisesRegex(ValueError, "3 values"):
            ReleasePixels("rgb", bgr_means=(1.0, 2.0))
        with self.assertRaisesRegex(ValueError, "data_format.*'nchw'"):
            ReleasePixels("flow", data_format="nchw")

    def test_uint8_crops_need_frames_at_resize_to(self):
        frames = tf.zeros([2, 36, 48, 3], tf.uint8)
        with self.assertRaisesRegex(
            tf.errors.InvalidArgumentError,
            r"(?s)stored at \(40, 48\).*video.*v7.*36, 48",
        ):
            preprocessing.eval_crops_uint8(
                frames, modality="rgb", image_size=32, resize_to=(40, 48), video_id="v7"
            )


if __name__ == "__main__":
    absltest.main()
