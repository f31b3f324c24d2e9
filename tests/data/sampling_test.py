"""Tests for avlad_tf.data.sampling (docs/RELEASE.md Sec. 2)."""

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from avlad_tf.data import sampling

T, L = 25, 10

# Hand-derived (n, RGB stride ⌊(n−1)/24⌋, flow stride ⌊(n−10)/25⌋):
#   n=11: 10/24=0, 1/25=0   n=19: 18/24=0, 9/25=0    n=24: 23/24=0, 14/25=0
#   n=25: 24/24=1, 15/25=0  n=26: 25/24=1, 16/25=0   n=47: 46/24=1, 37/25=1
#   n=300: 299/24=12, 290/25=11
STRIDES = {
    11: (0, 0),
    19: (0, 0),
    24: (0, 0),
    25: (1, 0),
    26: (1, 0),
    47: (1, 1),
    300: (12, 11),
}


def _eager_and_in_dataset(fn, n):
    """Runs fn(n) eagerly and inside tf.data; checks both agree."""
    eager = fn(tf.constant(n, tf.int64)).numpy()
    ds = tf.data.Dataset.from_tensors(tf.constant(n, tf.int64)).map(fn)
    in_data = next(iter(ds)).numpy()
    np.testing.assert_array_equal(eager, in_data)
    return eager


class ReleaseSamplingTest(parameterized.TestCase):
    @parameterized.parameters(*sorted(STRIDES))
    def test_rgb_indices(self, n):
        rgb_stride, _ = STRIDES[n]
        got = _eager_and_in_dataset(lambda x: sampling.rgb_indices(x, num_samples=T), n)
        np.testing.assert_array_equal(got, np.arange(T) * rgb_stride)
        self.assertLess(got.max(), n)

    @parameterized.parameters(*sorted(STRIDES))
    def test_flow_indices(self, n):
        _, flow_stride = STRIDES[n]
        got = _eager_and_in_dataset(
            lambda x: sampling.flow_indices(x, num_samples=T, flow_stack=L), n
        )
        self.assertEqual(got.shape, (T, L))
        expected = np.arange(T)[:, None] * flow_stride + np.arange(L)[None]
        np.testing.assert_array_equal(got, expected)
        self.assertLessEqual(got.max(), n - 2)  # n − 1 flow frames

    def test_examples_spelled_out(self):
        # n = 47: RGB reads 0..24 (the second half is never seen).
        np.testing.assert_array_equal(
            sampling.rgb_indices(47, num_samples=T), np.arange(25)
        )
        # n = 300: RGB 0, 12, ..., 288; flow stacks start 0, 11, ..., 264.
        self.assertEqual(int(sampling.rgb_indices(300, num_samples=T)[-1]), 288)
        flow = sampling.flow_indices(300, num_samples=T, flow_stack=L).numpy()
        np.testing.assert_array_equal(flow[1], np.arange(11, 21))
        self.assertEqual(flow[-1, -1], 24 * 11 + 9)

    @parameterized.parameters(*sorted(STRIDES))
    def test_joint_rgb_uses_flow_stride(self, n):
        rgb, flow = sampling.joint_indices(n, num_samples=T, flow_stack=L)
        np.testing.assert_array_equal(rgb, flow[:, 0])
        np.testing.assert_array_equal(rgb, np.arange(T) * STRIDES[n][1])

    def test_single_frame_is_random_and_seeded(self):
        n = 19
        rgb = {
            int(sampling.rgb_indices(n, num_samples=1, seed=(0, s))[0])
            for s in range(200)
        }
        self.assertTrue(rgb <= set(range(n)))
        self.assertGreater(len(rgb), 10)
        starts = {
            int(
                sampling.flow_indices(n, num_samples=1, flow_stack=L, seed=(0, s))[0, 0]
            )
            for s in range(200)
        }
        # Release range [0, n − L − 1) = [0, 8).
        self.assertEqual(starts, set(range(n - L - 1)))
        np.testing.assert_array_equal(
            sampling.rgb_indices(n, num_samples=1, seed=(3, 4)),
            sampling.rgb_indices(n, num_samples=1, seed=(3, 4)),
        )

    def test_single_frame_flow_with_minimal_video(self):
        # n = L + 1: the range would be empty; the only valid start is 0.
        got = sampling.flow_indices(L + 1, num_samples=1, flow_stack=L)
        np.testing.assert_array_equal(got, [np.arange(L)])


class TsnSamplingTest(parameterized.TestCase):
    def test_eval_takes_segment_centres(self):
        got = sampling.rgb_indices(100, num_samples=4, sampling="tsn")
        np.testing.assert_array_equal(got, [12, 37, 62, 87])

    @parameterized.parameters(5, 30, 300)
    def test_training_stays_inside_segments(self, n):
        for s in range(20):
            got = sampling.rgb_indices(
                n, num_samples=T, training=True, seed=(1, s), sampling="tsn"
            ).numpy()
            lower = np.floor(np.arange(T) * n / T)
            upper = np.floor((np.arange(T) + 1) * n / T)
            self.assertTrue(np.all(got >= np.minimum(lower, n - 1)))
            self.assertTrue(np.all(got <= np.maximum(upper, lower)))
            self.assertLess(got.max(), n)
        flow = sampling.flow_indices(
            n + L, num_samples=T, flow_stack=L, training=True, sampling="tsn"
        ).numpy()
        self.assertLessEqual(flow.max(), n + L - 2)

    def test_unknown_mode(self):
        with self.assertRaisesRegex(ValueError, "sampling must be one of"):
            sampling.rgb_indices(10, num_samples=3, sampling="dense")


class ClipSamplingTest(parameterized.TestCase):
    """`sampling='clips'`: contiguous clips of T at stride s (sampling.py)."""

    def _clips(self, fn, n):
        return _eager_and_in_dataset(fn, n)

    def test_evaluation_clips_evenly_spaced_and_contiguous(self):
        # n = 100, T = 4, s = 2: span 7, P = 94 starts; N = 3:
        # round(i·93/2) = 0, 47 (46.5 halves up), 93.
        got = self._clips(
            lambda x: sampling.rgb_indices(
                x, num_samples=4, sampling="clips", clip_stride=2, num_clips=3
            ),
            100,
        )
        np.testing.assert_array_equal(got, [0, 2, 4, 6, 47, 49, 51, 53, 93, 95, 97, 99])

    def test_one_evaluation_clip_is_centred(self):
        # n = 20, T = 4, s = 1: P = 17 starts, centre ⌊16/2⌋ = 8.
        got = sampling.rgb_indices(20, num_samples=4, sampling="clips").numpy()
        np.testing.assert_array_equal(got, [8, 9, 10, 11])

    def test_flow_clips_read_stacks_at_the_stride(self):
        # n = 20 RGB -> 19 flow frames; T = 3, L = 2, s = 2: span 6, P = 14.
        got = self._clips(
            lambda x: sampling.flow_indices(
                x,
                num_samples=3,
                flow_stack=2,
                sampling="clips",
                clip_stride=2,
                num_clips=2,
            ),
            20,
        )
        np.testing.assert_array_equal(
            got, [[0, 1], [2, 3], [4, 5], [13, 14], [15, 16], [17, 18]]
        )

    def test_training_takes_one_random_clip_in_range(self):
        n, t, s = 40, 5, 3  # span 13, starts in [0, 27]
        starts = set()
        for i in range(40):
            got = sampling.rgb_indices(
                n,
                num_samples=t,
                sampling="clips",
                clip_stride=s,
                num_clips=10,  # evaluation's: training reads one clip
                training=True,
                seed=(i, 7),
            ).numpy()
            self.assertLen(got, t)
            np.testing.assert_array_equal(np.diff(got), s)
            self.assertBetween(got[0], 0, n - 13)
            starts.add(got[0])
        self.assertGreater(len(starts), 10)
        first, again = (
            sampling.rgb_indices(
                n,
                num_samples=t,
                sampling="clips",
                clip_stride=s,
                training=True,
                seed=(3, 7),
            ).numpy()
            for _ in range(2)
        )
        np.testing.assert_array_equal(again, first)  # stateless

    def test_short_video_clamps_to_last_frame(self):
        got = sampling.rgb_indices(
            5, num_samples=4, sampling="clips", clip_stride=2, num_clips=2
        ).numpy()
        np.testing.assert_array_equal(got, [0, 2, 4, 4, 0, 2, 4, 4])
        flow = sampling.flow_indices(
            4, num_samples=3, flow_stack=2, sampling="clips"
        ).numpy()  # 3 flow frames
        np.testing.assert_array_equal(flow, [[0, 1], [1, 2], [2, 2]])

    @parameterized.parameters(True, False)
    def test_joint_streams_share_starts(self, training):
        got = sampling.sample_indices(
            50,
            modalities=("rgb", "flow"),
            num_samples=4,
            flow_stack=3,
            sampling="clips",
            clip_stride=2,
            num_clips=3,
            training=training,
            seed=(1, 2),
        )
        flow, rgb = got["flow"].numpy(), got["rgb"].numpy()
        self.assertEqual(flow.shape, (4 if training else 12, 3))
        np.testing.assert_array_equal(rgb, flow[:, 0])
        self.assertLessEqual(flow.max(), 48)  # 49 flow frames

    def test_num_steps(self):
        args = dict(sampling="clips", num_clips=10)
        self.assertEqual(sampling.num_steps(16, training=False, **args), 160)
        self.assertEqual(sampling.num_steps(16, training=True, **args), 16)
        self.assertEqual(
            sampling.num_steps(16, sampling="release", training=False, num_clips=10),
            16,
        )

    def test_bad_clip_settings(self):
        with self.assertRaisesRegex(ValueError, "clip_stride and num_clips"):
            sampling.rgb_indices(10, num_samples=3, sampling="clips", clip_stride=0)
        with self.assertRaisesRegex(ValueError, "are for sampling='clips'"):
            sampling.sample_indices(
                10, modalities=("rgb",), num_samples=3, flow_stack=1, num_clips=2
            )


if __name__ == "__main__":
    absltest.main()
