"""Tests for avlad_tf.data.crop_geometry: where crops lie, and decoding
only the window they read (docs/RELEASE.md Sec. 3)."""

from absl.testing import absltest
from absl.testing import parameterized
import cv2
import numpy as np
import tensorflow as tf

from avlad_tf.data import crop_geometry
from data_prep import video_io
from tests import testing

H, W, S = 48, 64, 32  # small stand-ins for 256×340 / 224
STORED = (256, 340)

# cv2's chroma subsampling factors: every layout a JPEG writer may choose.
_SAMPLINGS = {
    "4:4:4": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
    "4:2:2": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
    "4:2:0": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
    "4:4:0": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_440,
    "4:1:1": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_411,
}


class CropGeometryTest(parameterized.TestCase):
    def test_release_offsets_at_full_size(self):
        self.assertEqual(
            crop_geometry.eval_crop_offsets(
                resize_to=(256, 340), image_size=224, num_crops=1
            ),
            ((16, 60),),
        )
        self.assertEqual(
            crop_geometry.eval_crop_offsets(
                resize_to=(256, 340), image_size=224, num_crops=5
            ),
            ((0, 0), (0, 115), (31, 0), (31, 115), (16, 60)),
        )

    def test_true_centre_switch(self):
        self.assertEqual(
            crop_geometry.eval_crop_offsets(
                resize_to=(256, 340),
                image_size=224,
                num_crops=5,
                release_crop_offsets=False,
            ),
            ((0, 0), (0, 116), (32, 0), (32, 116), (16, 58)),
        )

    def test_offsets_generalise_to_toy_size(self):
        offsets = crop_geometry.eval_crop_offsets(
            resize_to=(64, 85), image_size=56, num_crops=5
        )
        self.assertEqual(offsets, ((0, 0), (0, 28), (7, 0), (7, 28), (4, 16)))

    def test_bad_crop_requests(self):
        with self.assertRaisesRegex(ValueError, "num_crops must be 1 or 5"):
            crop_geometry.eval_crop_offsets(
                resize_to=(256, 340), image_size=224, num_crops=3
            )
        with self.assertRaisesRegex(ValueError, "does not fit"):
            crop_geometry.eval_crop_offsets(
                resize_to=(100, 340), image_size=224, num_crops=1
            )

    def test_train_crop_sizes_are_of_output_size(self):
        self.assertEqual(crop_geometry.crop_sizes(224), (224, 196, 168, 147))

    def test_random_crop_params_cover_valid_range(self):
        sizes = set(crop_geometry.crop_sizes(S))
        seen_h, seen_w, flips = set(), set(), set()
        for s in range(60):
            p = {
                k: v.numpy()
                for k, v in crop_geometry.random_crop_params(
                    tf.constant([7, s]), resize_to=(H, W), image_size=S
                ).items()
            }
            self.assertIn(p["height"], sizes)
            self.assertIn(p["width"], sizes)
            self.assertBetween(p["top"], 0, H - p["height"])
            self.assertBetween(p["left"], 0, W - p["width"])
            seen_h.add(int(p["height"]))
            seen_w.add(int(p["width"]))
            flips.add(bool(p["flip"]))
        self.assertEqual(seen_h, sizes)  # independent draws cover all sizes
        self.assertEqual(seen_w, sizes)
        self.assertEqual(flips, {True, False})


class DecodeWindowTest(parameterized.TestCase):
    """A window decode must give a whole decode's pixels wherever a crop
    reads; real frames, every chroma layout, baseline and progressive."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.frames = video_io.read_video(
            testing.real_video("bikes.mp4"), height=STORED[0], width=STORED[1], count=2
        )  # BGR, as data_prep writes them through cv2

    def _boxes(self, rng, count):
        sizes = crop_geometry.crop_sizes(224)
        for _ in range(count):
            h, w = int(rng.choice(sizes)), int(rng.choice(sizes))
            yield [(int(rng.integers(0, 257 - h)), int(rng.integers(0, 341 - w)), h, w)]
        for crops in (1, 5):
            yield crop_geometry.eval_boxes(
                resize_to=STORED, image_size=224, num_crops=crops
            )

    def _check(self, jpeg, channels, rng):
        whole = tf.io.decode_jpeg(jpeg, channels=channels).numpy()
        for boxes in self._boxes(rng, 12):
            window = crop_geometry.decode_window(
                boxes, resize_to=STORED, channels=channels
            ).numpy()
            top, left, height, width = window
            self.assertTrue(0 <= top and top + height <= STORED[0], window)
            self.assertTrue(0 <= left and left + width <= STORED[1], window)
            part = tf.io.decode_and_crop_jpeg(jpeg, window, channels=channels).numpy()
            for t, l, h, w in boxes:
                np.testing.assert_array_equal(
                    part[t - top : t - top + h, l - left : l - left + w],
                    whole[t : t + h, l : l + w],
                    err_msg=f"box {(t, l, h, w)} in window {window}",
                )

    @parameterized.product(sampling=sorted(_SAMPLINGS), progressive=(0, 1))
    def test_colour_window_is_bit_identical(self, sampling, progressive):
        rng = np.random.default_rng(len(sampling) + progressive)
        for frame in self.frames:
            ok, jpeg = cv2.imencode(
                ".jpg",
                frame,
                [
                    cv2.IMWRITE_JPEG_QUALITY, 90,
                    cv2.IMWRITE_JPEG_SAMPLING_FACTOR, _SAMPLINGS[sampling],
                    cv2.IMWRITE_JPEG_PROGRESSIVE, progressive,
                ],
            )  # fmt: skip
            self.assertTrue(ok)
            self._check(tf.constant(jpeg.tobytes()), 3, rng)

    def test_grey_window_is_the_crop_itself(self):
        rng = np.random.default_rng(7)
        for frame in self.frames:
            jpeg = tf.io.encode_jpeg(frame[..., 1:2], quality=90)  # one plane
            self._check(jpeg, 1, rng)
        window = crop_geometry.decode_window(
            [(3, 5, 20, 30)], resize_to=STORED, channels=1
        )
        np.testing.assert_array_equal(window, [3, 5, 20, 30])

    def test_window_of_several_boxes_covers_them_all(self):
        window = crop_geometry.decode_window(
            [(10, 200, 20, 30), (100, 40, 50, 20)], resize_to=STORED, channels=1
        )
        np.testing.assert_array_equal(window, [10, 40, 140, 190])
        block = crop_geometry.CHROMA_BLOCK
        colour = crop_geometry.decode_window(
            [(100, 100, 50, 50)], resize_to=STORED, channels=3
        ).numpy()
        self.assertEqual(colour[0] % block, 0)
        self.assertLessEqual(colour[0], 100 - block)
        self.assertGreaterEqual(colour[0] + colour[2], 150 + block)


if __name__ == "__main__":
    absltest.main()
