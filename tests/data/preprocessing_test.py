"""Tests for avlad_tf.data.preprocessing (docs/RELEASE.md Sec. 3)."""

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from avlad_tf.data import crop_geometry
from avlad_tf.data import preprocessing

H, W, S = 48, 64, 32  # small stand-ins for 256×340 / 224


def _coordinate_video(num_frames=3, height=H, width=W):
    """uint8 [T, H, W, 3]: channel 0 = row, 1 = column, 2 = frame index."""
    y, x = np.mgrid[0:height, 0:width]
    frames = [np.stack([y, x, np.full_like(y, t)], axis=-1) for t in range(num_frames)]
    return np.stack(frames).astype(np.uint8)


def _eager_and_in_dataset(fn, *args):
    """fn(*args) eagerly and inside tf.data; asserts both give the same."""
    eager = fn(*args).numpy()
    ds = tf.data.Dataset.from_tensors(args).map(fn)
    np.testing.assert_allclose(next(iter(ds)).numpy(), eager, atol=1e-4)
    return eager


class EvalPreprocessingTest(parameterized.TestCase):
    def test_five_crops_frame_major_at_release_offsets(self):
        video = _coordinate_video()
        out = _eager_and_in_dataset(
            lambda v: preprocessing.preprocess_for_eval(
                v, modality="flow", num_crops=5, image_size=S, resize_to=(H, W)
            ),
            video,
        )
        self.assertEqual(out.shape, (3 * 5, S, S, 3))
        offsets = crop_geometry.eval_crop_offsets(
            resize_to=(H, W), image_size=S, num_crops=5
        )
        raw = out + preprocessing.FLOW_MEAN
        for k in range(15):
            t, c = divmod(k, 5)
            top, left = offsets[c]
            np.testing.assert_allclose(raw[k, 0, 0], [top, left, t], atol=1e-3)
            np.testing.assert_allclose(
                raw[k, -1, -1], [top + S - 1, left + S - 1, t], atol=1e-3
            )

    def test_rgb_is_bgr_minus_integer_means(self):
        video = np.zeros((2, H, W, 3), np.uint8) + np.array([200, 100, 50], np.uint8)
        out = _eager_and_in_dataset(
            lambda v: preprocessing.preprocess_for_eval(
                v, modality="rgb", image_size=S, resize_to=(H, W)
            ),
            video,
        )
        np.testing.assert_allclose(
            out[0, 0, 0], [50 - 104, 100 - 117, 200 - 123], atol=1e-4
        )
        keras = preprocessing.preprocess_for_eval(
            video,
            modality="rgb",
            image_size=S,
            resize_to=(H, W),
            bgr_means=preprocessing.KERAS_BGR_MEANS,
        ).numpy()
        np.testing.assert_allclose(
            keras[0, 0, 0], [50 - 103.939, 100 - 116.779, 200 - 123.68], atol=1e-4
        )

    @parameterized.parameters("rgb", "flow")
    def test_value_ranges(self, modality):
        channels = 3 if modality == "rgb" else 20
        rng = np.random.default_rng(0)
        video = rng.integers(0, 256, (2, H, W, channels)).astype(np.uint8)
        video[0, 20, 20] = 0
        video[0, 21, 21] = 255
        out = preprocessing.preprocess_for_eval(
            video, modality=modality, image_size=S, resize_to=(H, W)
        ).numpy()
        if modality == "rgb":
            self.assertAlmostEqual(out.min(), -123, places=3)
            self.assertAlmostEqual(out.max(), 255 - 104, places=3)
        else:
            self.assertAlmostEqual(out.min(), -128, places=3)
            self.assertAlmostEqual(out.max(), 127, places=3)

    def test_resize_uses_legacy_kernel_after_conversion(self):
        # A 2-pixel row upsampled to 4: legacy samples x/2 -> 0, .5, 1, 1
        # (edge clamped); half-pixel centres give 0, .25, .75, 1.
        row = tf.constant([[[[0.0], [1.0]]]])
        legacy = preprocessing.resize(row, [1, 4])[0, 0, :, 0].numpy()
        np.testing.assert_allclose(legacy, [0, 0.5, 1, 1])
        half = preprocessing.resize(row, [1, 4], half_pixel_centers=True)
        np.testing.assert_allclose(half[0, 0, :, 0], [0, 0.25, 0.75, 1])
        # Frames stored at another size go through that resize first.
        video = np.zeros((1, 2, 2, 3), np.uint8)
        video[:, :, 1] = 255
        out = preprocessing.preprocess_for_eval(
            video, modality="flow", image_size=4, resize_to=(4, 4)
        )
        np.testing.assert_allclose(
            out[0, 0, :, 0] + 128, [0, 127.5, 255, 255], atol=1e-3
        )
        # The original model's order (resize, then no [0, 1] scaling) is 255x.
        big = preprocessing.preprocess_for_eval(
            video,
            modality="flow",
            image_size=4,
            resize_to=(4, 4),
            convert_before_resize=False,
        )
        np.testing.assert_allclose(
            big[0, 0, :, 0] + 128, [0, 127.5 * 255, 255 * 255, 255 * 255], rtol=1e-5
        )

    def test_works_in_tf_function_with_unknown_shape(self):
        fn = tf.function(
            lambda v: preprocessing.preprocess_for_eval(
                v, modality="rgb", num_crops=5, image_size=S, resize_to=(H, W)
            ),
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)],
        )
        stored = _coordinate_video(2)  # at resize_to: no resize
        other = _coordinate_video(2, height=24, width=32)  # resized first
        np.testing.assert_allclose(
            fn(stored),
            preprocessing.preprocess_for_eval(
                stored, modality="rgb", num_crops=5, image_size=S, resize_to=(H, W)
            ),
            atol=1e-4,
        )
        self.assertEqual(fn(other).shape, (10, S, S, 3))


class TrainPreprocessingTest(parameterized.TestCase):
    def _params(self, top, left, height, width, flip):
        return {
            "top": tf.constant(top),
            "left": tf.constant(left),
            "height": tf.constant(height),
            "width": tf.constant(width),
            "flip": tf.constant(flip),
        }

    @parameterized.parameters(False, True)
    def test_full_size_crop_position_and_flip(self, flip):
        video = _coordinate_video()
        params = self._params(5, 7, S, S, flip)
        out = (
            _eager_and_in_dataset(
                lambda v: preprocessing.preprocess_for_train(
                    v, params, modality="flow", image_size=S, resize_to=(H, W)
                ),
                video,
            )
            + preprocessing.FLOW_MEAN
        )
        expected = video[:, 5 : 5 + S, 7 : 7 + S].astype(np.float32)
        if flip:  # mirrored planes, values (incl. x flow) not negated
            expected = expected[:, :, ::-1]
        np.testing.assert_allclose(out, expected, atol=1e-3)

    def test_smaller_crop_is_resized_with_legacy_kernel(self):
        video = _coordinate_video()
        params = self._params(3, 4, 21, 28, False)
        out = preprocessing.preprocess_for_train(
            video, params, modality="flow", image_size=S, resize_to=(H, W)
        )
        crop = tf.image.convert_image_dtype(video[:, 3:24, 4:32], tf.float32)
        expected = (
            tf.compat.v1.image.resize_bilinear(
                crop, [S, S], align_corners=False, half_pixel_centers=False
            )
            * 255
        )
        np.testing.assert_allclose(out + 128, expected, atol=1e-3)

    def test_same_params_same_crop_for_every_frame(self):
        frame = np.random.default_rng(1).integers(0, 256, (H, W, 3))
        video = np.stack([frame] * 4).astype(np.uint8)
        params = crop_geometry.random_crop_params(
            tf.constant([0, 5]), resize_to=(H, W), image_size=S
        )
        out = preprocessing.preprocess_for_train(
            video, params, modality="rgb", image_size=S, resize_to=(H, W)
        )
        for t in range(1, 4):
            np.testing.assert_array_equal(out[t], out[0])


class AssembleTest(parameterized.TestCase):
    """Each path applies the reader's `assemble` where it is cheapest
    (training: before the resize; evaluation: last); the numbers must be
    those of the video assembled up front, bit for bit."""

    @parameterized.product(
        modality=("rgb", "flow"), stored=(True, False), training=(True, False)
    )
    def test_same_numbers_as_the_assembled_video(self, modality, stored, training):
        channels = 3 if modality == "rgb" else 2
        size = (H, W) if stored else (H - 6, W + 4)
        distinct = (
            np.random.default_rng(3)
            .integers(0, 256, (3, *size, channels))
            .astype(np.uint8)
        )  # [U, H, W, c]
        position = tf.constant([0, 2, 2, 1, 0])  # T = 5 frames of U = 3

        def assemble(crops):  # [U, N, h, w, c] -> [T, N, h, w, C]
            picked = tf.gather(crops, position)
            if modality == "rgb":
                return picked
            # Flow stacks planes of several frames: C = 2c channels.
            return tf.concat([picked, picked[..., ::-1]], axis=-1)

        video = assemble(distinct[:, None])[:, 0].numpy()  # [T, H, W, C]
        options = dict(modality=modality, image_size=S, resize_to=(H, W))
        params = crop_geometry.random_crop_params(
            tf.constant([4, 1]), resize_to=(H, W), image_size=S
        )

        def run(frames, assemble=None):
            if training:
                return preprocessing.preprocess_for_train(
                    frames, params, assemble=assemble, **options
                )
            return preprocessing.preprocess_for_eval(
                frames, num_crops=5, assemble=assemble, **options
            )

        expected = run(video).numpy()
        np.testing.assert_array_equal(run(distinct, assemble), expected)
        in_graph = tf.function(  # unknown frame size: the tf.cond path
            lambda v: run(v, assemble),
            input_signature=[tf.TensorSpec([None, None, None, channels], tf.uint8)],
        )
        np.testing.assert_array_equal(in_graph(distinct), expected)


if __name__ == "__main__":
    absltest.main()
