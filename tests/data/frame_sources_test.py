"""Tests for avlad_tf.data.frame_sources: distinct decoding and flow stacking."""

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from avlad_tf.data import frame_sources
from avlad_tf.data import schema

H, W = 8, 12
# Flat frames decode to within a grey level or two of their value; values
# 20 apart are told apart by rounding to the nearest.
_STEP = 20


def _jpeg(value, channels):
    image = np.full((H, W, channels), value, np.uint8)
    return tf.io.encode_jpeg(image, quality=100).numpy()


def _index_of(pixels, offset=0):
    """The frame index a flat decoded value codes (value = offset + 20 i)."""
    return np.round((np.asarray(pixels, np.float64) - offset) / _STEP).astype(int)


def _example(num_frames):
    """RGB frame i is flat 20 i; flow x frame j 20 j + 5 and flow y frame j
    250 - 20 j (decoded with `_index_of(x, offset=5)`, `_index_of(250 - y)`)."""
    return {
        schema.RGB_KEY: tf.constant([_jpeg(_STEP * i, 3) for i in range(num_frames)]),
        schema.FLOW_X_KEY: tf.constant(
            [_jpeg(_STEP * j + 5, 1) for j in range(num_frames - 1)]
        ),
        schema.FLOW_Y_KEY: tf.constant(
            [_jpeg(250 - _STEP * j, 1) for j in range(num_frames - 1)]
        ),
    }


def _reference_assemble(crops, position, num_unique, num_samples, flow_stack):
    """Loop version of the release's order: channel 2l + d of sample t is
    plane d·U + position[t·L + l]."""
    crops = np.asarray(crops)
    _, n, h, w, _ = crops.shape
    out = np.zeros((num_samples, n, h, w, 2 * flow_stack), crops.dtype)
    for t in range(num_samples):
        for l in range(flow_stack):
            for d in range(2):
                plane = d * num_unique + position[t * flow_stack + l]
                out[t, ..., 2 * l + d] = crops[plane, ..., 0]
    return out


class DecodeDistinctFramesTest(absltest.TestCase):
    def test_each_distinct_frame_once_list_major(self):
        example = _example(6)
        indices = tf.constant([[0, 2], [2, 4], [4, 4]])
        images, position, num_unique = frame_sources.decode_distinct_frames(
            [example[schema.FLOW_X_KEY], example[schema.FLOW_Y_KEY]], indices, 1
        )
        # Distinct indices in order of first use: 0, 2, 4.
        self.assertEqual(int(num_unique), 3)
        np.testing.assert_array_equal(position, [0, 1, 1, 2, 2, 2])
        self.assertEqual(images.shape, (6, H, W, 1))
        self.assertEqual(images.dtype, tf.uint8)
        means = tf.reduce_mean(tf.cast(images, tf.float32), axis=[1, 2, 3]).numpy()
        np.testing.assert_array_equal(_index_of(means[:3], offset=5), [0, 2, 4])
        np.testing.assert_array_equal(_index_of(250 - means[3:]), [0, 2, 4])


class RgbSourceTest(absltest.TestCase):
    def test_assemble_puts_each_sample_frame_in_place(self):
        indices = tf.constant([0, 0, 3, 1, 3])  # a short video repeats frames
        frames, assemble = frame_sources.rgb_source(_example(5), indices)
        self.assertEqual(frames.shape, (3, H, W, 3))  # frames 0, 3, 1
        crops = frames[:, None]  # one 'crop' per frame: [U, 1, H, W, 3]
        video = assemble(crops)
        self.assertEqual(video.shape, (5, 1, H, W, 3))
        red = tf.reduce_mean(tf.cast(video[..., 0], tf.float32), axis=[1, 2, 3])
        np.testing.assert_array_equal(_index_of(red), indices.numpy())


class FlowSourceTest(parameterized.TestCase):
    @parameterized.parameters(False, True)
    def test_stacks_interleave_x_and_y(self, channels_first):
        indices = tf.constant([[0, 1, 2], [2, 3, 4]])  # T = 2, L = 3
        planes, assemble = frame_sources.flow_source(
            _example(6), indices, channels_first=channels_first
        )
        self.assertEqual(planes.shape, (10, H, W, 1))  # 5 distinct, x then y
        stacks = assemble(planes[:, None]).numpy().astype(np.float64)
        if channels_first:
            self.assertEqual(stacks.shape, (2, 1, 6, H, W))
            channels = stacks.mean(axis=(1, 3, 4))  # [T, 2L]
        else:
            self.assertEqual(stacks.shape, (2, 1, H, W, 6))
            channels = stacks.mean(axis=(1, 2, 3))
        # Channel 2l is x of frame indices[t, l], 2l + 1 its y.
        np.testing.assert_array_equal(_index_of(channels[:, 0::2], offset=5), indices)
        np.testing.assert_array_equal(_index_of(250 - channels[:, 1::2]), indices)


class FlowAssemblerTest(parameterized.TestCase):
    @parameterized.parameters(False, True)
    def test_matches_the_loop_order(self, channels_first):
        rng = np.random.default_rng(0)
        num_samples, flow_stack, num_unique = 3, 4, 5
        position = rng.integers(0, num_unique, num_samples * flow_stack)
        crops = rng.integers(0, 256, (2 * num_unique, 2, 3, 4, 1)).astype(np.uint8)
        assemble = frame_sources.flow_assembler(
            tf.constant(position, tf.int32),
            tf.constant(num_unique, tf.int32),
            (num_samples, flow_stack),
            channels_first=channels_first,
        )
        expected = _reference_assemble(
            crops, position, num_unique, num_samples, flow_stack
        )
        if channels_first:
            expected = expected.transpose(0, 1, 4, 2, 3)  # [T, N, 2L, h, w]
        np.testing.assert_array_equal(assemble(tf.constant(crops)).numpy(), expected)

    def test_runs_in_a_compiled_function(self):
        position = np.array([0, 1, 1, 2], np.int32)  # T = 2, L = 2, U = 3
        crops = np.arange(6 * 1 * 2 * 2, dtype=np.float32).reshape(6, 1, 2, 2, 1)

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, None, 1])])
        def assemble(crops):
            return frame_sources.flow_assembler(
                tf.constant(position), tf.constant(3), (2, 2)
            )(crops)

        np.testing.assert_array_equal(
            assemble(crops).numpy(), _reference_assemble(crops, position, 3, 2, 2)
        )


if __name__ == "__main__":
    absltest.main()
