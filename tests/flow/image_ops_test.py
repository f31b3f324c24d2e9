"""Each image operation of the keras.ops TV-L1 against the OpenCV call it
reproduces (or, for the CUDA rule, OpenCV's published kernel formula)."""

from absl.testing import absltest
from absl.testing import parameterized
import cv2
from keras import ops
import numpy as np

from avlad_tf.flow import image_ops


def _image(height=37, width=53, seed=0):
    return (
        np.random.default_rng(seed).uniform(0, 255, (height, width)).astype("float32")
    )


def _maps(shape, spread, seed=1):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]].astype("float32")
    jitter = rng.uniform(-spread, spread, (2, *shape)).astype("float32")
    return x + jitter[0], y + jitter[1]


def _numpy(x):
    return ops.convert_to_numpy(x)


class ImageOpsTest(parameterized.TestCase):
    @parameterized.parameters(0.8, 0.5)
    def test_pyramid_resize_is_opencv_linear(self, scale):
        image = _image()
        expected = cv2.resize(
            image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR
        )
        size = image_ops.pyramid_size(image.shape, scale)
        self.assertEqual(size, expected.shape)
        got = _numpy(image_ops.resize_linear(image[None], size, scale=scale))[0]
        np.testing.assert_allclose(got, expected, atol=1e-3)

    def test_upsampling_to_a_size_is_opencv_linear(self):
        small = _image(30, 42)
        expected = cv2.resize(small, (53, 37), interpolation=cv2.INTER_LINEAR)
        got = _numpy(image_ops.resize_linear(small[None], (37, 53)))[0]
        np.testing.assert_allclose(got, expected, atol=1e-3)

    @parameterized.parameters((37, 53), (256, 340), (16, 22))
    def test_pyr_down_is_opencvs_gaussian_pyramid(self, height, width):
        # cv::pyrDown on the CPU and cv::gpu::pyrDown (2.4) share the 5-tap
        # kernel, BORDER_REFLECT_101 and the (n + 1) / 2 size.
        image = _image(height, width)
        expected = cv2.pyrDown(image)
        self.assertEqual(image_ops.pyr_down_size(image.shape), expected.shape)
        got = _numpy(image_ops.pyr_down(image[None]))[0]
        np.testing.assert_allclose(got, expected, atol=1e-3)

    @parameterized.parameters(((22, 16), (43, 32)), ((30, 42), (37, 53)))
    def test_cuda_resize_is_the_kernels_corner_aligned_bilinear(self, small, big):
        # OpenCV's CUDA resize kernel, pixel by pixel: source (y * fy, x * fx)
        # with f = float(1 / (dst / src)), bilinear, the far taps clamped.
        image = _image(*small)
        fy = np.float32(1.0 / (big[0] / small[0]))
        fx = np.float32(1.0 / (big[1] / small[1]))
        expected = np.zeros(big, np.float32)
        for y in range(big[0]):
            for x in range(big[1]):
                sy, sx = np.float32(y) * fy, np.float32(x) * fx
                y1, x1 = int(np.floor(sy)), int(np.floor(sx))
                y2, x2 = min(y1 + 1, small[0] - 1), min(x1 + 1, small[1] - 1)
                wy, wx = sy - y1, sx - x1
                expected[y, x] = (
                    image[y1, x1] * (1 - wx) * (1 - wy)
                    + image[y1, x2] * wx * (1 - wy)
                    + image[y2, x1] * (1 - wx) * wy
                    + image[y2, x2] * wx * wy
                )
        got = _numpy(image_ops.resize_linear(image[None], big, rule="cuda"))[0]
        np.testing.assert_allclose(got, expected, atol=1e-3)
        # Not the CPU's pixel-centre mapping: the two differ by up to a pixel.
        cpu = _numpy(image_ops.resize_linear(image[None], big))[0]
        self.assertGreater(np.abs(cpu - expected).max(), 10.0)

    def test_opencv_warp_is_remap_cubic_with_zero_border(self):
        image = _image()
        map_x, map_y = _maps(image.shape, spread=4.0)  # many taps fall outside
        expected = cv2.remap(image, map_x, map_y, cv2.INTER_CUBIC)
        got = _numpy(
            image_ops.warp_bicubic(
                image[None, ..., None], map_x[None], map_y[None], rule="opencv"
            )
        )[0, ..., 0]
        np.testing.assert_allclose(got, expected, atol=1e-3)

    def test_cuda_warp_is_the_normalised_a_half_kernel_on_clamped_texels(self):
        image = _image()
        map_x, map_y = _maps(image.shape, spread=4.0)

        def weight(d):  # OpenCV CUDA bicubicCoeff
            d = np.abs(d)
            near = d * d * (1.5 * d - 2.5) + 1.0
            far = d * (d * (-0.5 * d + 2.5) - 4.0) + 2.0
            return np.where(d <= 1, near, np.where(d < 2, far, 0.0))

        total, weights = (
            np.zeros_like(image, "float64"),
            np.zeros_like(image, "float64"),
        )
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                cy, cx = np.floor(map_y) + dy, np.floor(map_x) + dx
                w = weight(map_x - cx) * weight(map_y - cy)
                rows = np.clip(cy, 0, image.shape[0] - 1).astype(int)
                cols = np.clip(cx, 0, image.shape[1] - 1).astype(int)
                total += w * image[rows, cols]
                weights += w
        got = _numpy(
            image_ops.warp_bicubic(
                image[None, ..., None], map_x[None], map_y[None], rule="cuda"
            )
        )[0, ..., 0]
        np.testing.assert_allclose(got, total / weights, atol=1e-3)

    @parameterized.parameters(3, 5)
    def test_median_is_opencv_median_blur(self, ksize):
        image = _image()
        got = _numpy(image_ops.median_blur(image[None], ksize))[0]
        np.testing.assert_array_equal(got, cv2.medianBlur(image, ksize))

    def test_median_network_selects_the_median(self):
        values = np.random.default_rng(2).normal(size=(25, 1000))
        lanes = list(values)
        for i, j, keep_min, keep_max in image_ops.median_network(25):
            # A dropped output (None) must never be read again.
            low, high = np.minimum(lanes[i], lanes[j]), np.maximum(lanes[i], lanes[j])
            lanes[i], lanes[j] = (
                (low if keep_min else None),
                (high if keep_max else None),
            )
        np.testing.assert_array_equal(lanes[12], np.median(values, axis=0))

    def test_median_rejects_sizes_opencv_does_not_filter_floats_with(self):
        with self.assertRaisesRegex(ValueError, "only 3 and 5"):
            image_ops.median_blur(_image()[None], 7)

    def test_grey_is_opencv_rgb2gray_bit_for_bit(self):
        colours = np.random.default_rng(4).integers(0, 256, (1, 200000, 3), np.uint8)
        got = _numpy(image_ops.grey_from_rgb(colours))
        np.testing.assert_array_equal(got, cv2.cvtColor(colours, cv2.COLOR_RGB2GRAY))

    def test_finite_differences_follow_tvl1flow_border_rules(self):
        image = _image(5, 6)
        dx, dy = (_numpy(g)[0] for g in image_ops.centered_gradient(image[None]))
        self.assertAlmostEqual(dx[2, 0], 0.5 * (image[2, 1] - image[2, 0]), places=4)
        self.assertAlmostEqual(dy[4, 3], 0.5 * (image[4, 3] - image[3, 3]), places=4)
        self.assertAlmostEqual(dx[2, 3], 0.5 * (image[2, 4] - image[2, 2]), places=4)
        fx, fy = (_numpy(g)[0] for g in image_ops.forward_gradient(image[None]))
        np.testing.assert_array_equal(fx[:, -1], 0)
        np.testing.assert_array_equal(fy[-1], 0)
        np.testing.assert_allclose(fx[:, :-1], np.diff(image, axis=1), atol=1e-4)
        p1, p2 = image, _image(5, 6, seed=3)
        div = _numpy(image_ops.divergence(p1[None], p2[None]))[0]
        self.assertAlmostEqual(div[0, 0], p1[0, 0] + p2[0, 0], places=4)
        self.assertAlmostEqual(
            div[3, 4], p1[3, 4] - p1[3, 3] + p2[3, 4] - p2[2, 4], places=4
        )


if __name__ == "__main__":
    absltest.main()
