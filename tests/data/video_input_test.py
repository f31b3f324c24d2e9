"""Tests for avlad_tf.data.video_input on tiny records (tests/fake_data.py)."""

import json
import os

from absl.testing import absltest
from absl.testing import parameterized
import gin
import numpy as np
import pytest
import tensorflow as tf

from avlad_tf.data import schema
from avlad_tf.data import video_input
from tests import fake_data
from tests import testing

# Fake frames are 32×40 and stay that size; crops are 24 (ratios 24..15).
SMALL = dict(num_frames=4, flow_stack=2, image_size=24, resize_to=(32, 40))


def _first_batch(data_dir, **kwargs):
    args = dict(SMALL, data_dir=data_dir, split="train", batch_size=3)
    args.update(kwargs)
    return next(iter(video_input.make_dataset(**args)))


class MakeDatasetTest(parameterized.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A fresh directory per process: pytest-xdist may run this class's
        # tests in two workers at once.
        root = testing.class_tempdir(cls)
        # n = 12, 7, 5: strides differ, n = 5 is shorter than L + T.
        cls.index_dir = fake_data.write_fake_dataset(
            os.path.join(root, "index"), num_frames=[12, 7, 5], num_shards=2
        )
        cls.pattern_dir = fake_data.write_fake_dataset(
            os.path.join(root, "pattern"), num_videos=4, content="pattern"
        )

    @parameterized.product(
        modalities=[("rgb",), ("flow",), ("rgb", "flow")], training=[True, False]
    )
    def test_shapes_dtypes_labels(self, modalities, training):
        crops = 1 if training else 5
        features, labels = _first_batch(
            self.index_dir,
            modalities=modalities,
            training=training,
            num_crops=crops,
            with_ids=True,
        )
        channels = {"rgb": 3, "flow": 4}
        for m in modalities:
            self.assertEqual(features[m].shape, (3, 4 * crops, 24, 24, channels[m]))
            self.assertEqual(features[m].dtype, tf.float32)
        self.assertEqual(set(features), set(modalities) | {"video_id"})
        self.assertEqual(labels.shape, (3, 3))
        np.testing.assert_array_equal(tf.reduce_sum(labels, axis=1), [1, 1, 1])
        if not training:  # sorted shards: shard 0 has videos 0 and 2
            self.assertEqual(
                features["video_id"].numpy().tolist(),
                [b"train/video0", b"train/video2", b"train/video1"],
            )
            np.testing.assert_array_equal(tf.argmax(labels, 1), [0, 2, 1])

    @parameterized.parameters(1, 5)
    @pytest.mark.slow
    def test_uint8_pixels_are_the_crops_before_arithmetic(self, crops):
        from avlad_tf.layers import ReleasePixels

        both = ("rgb", "flow")
        floats, labels = _first_batch(
            self.index_dir, modalities=both, training=False, num_crops=crops
        )
        raw, raw_labels = _first_batch(
            self.index_dir,
            modalities=both,
            training=False,
            num_crops=crops,
            pixel_dtype="uint8",
        )
        np.testing.assert_array_equal(raw_labels, labels)
        self.assertEqual(raw["rgb"].shape, floats["rgb"].shape)
        # Flow ships channels-first: [B, T·N, 2L, S, S].
        self.assertEqual(raw["flow"].shape, (3, 4 * crops, 4, 24, 24))
        for m in both:
            self.assertEqual(raw[m].dtype, tf.uint8)
            np.testing.assert_array_equal(
                ReleasePixels(m)(raw[m].numpy()), floats[m].numpy()
            )

    def test_sampled_frames_and_flow_channel_order(self):
        features, _ = _first_batch(
            self.index_dir, modalities=("rgb",), training=False, with_ids=True
        )
        # BGR channel 0 is B = 255 − R, minus 104.
        red = 255 - (features["rgb"][..., 0].numpy() + 104)
        rgb_index = fake_data.frame_index_of(red.mean(axis=(2, 3)))
        # Video order 0, 2, 1 with n = 12, 5, 7: strides ⌊(n−1)/3⌋ = 3, 1, 2.
        np.testing.assert_array_equal(
            rgb_index, [[0, 3, 6, 9], [0, 1, 2, 3], [0, 2, 4, 6]]
        )

        features, _ = _first_batch(self.index_dir, modalities=("flow",), training=False)
        planes = features["flow"].numpy().mean(axis=(2, 3)) + 128  # [B, T, 4]
        x = fake_data.frame_index_of(planes[..., 0::2], kind="flow_x")
        y = fake_data.frame_index_of(planes[..., 1::2], kind="flow_y")
        # Flow strides ⌊(n−2)/4⌋ = 2, 0, 1; channels x1, y1, x2, y2.
        starts = np.array([[0, 2, 4, 6], [0, 0, 0, 0], [0, 1, 2, 3]])
        expected = starts[..., None] + np.arange(2)
        np.testing.assert_array_equal(x, expected)
        np.testing.assert_array_equal(y, expected)

    def test_joint_rgb_follows_flow_stride(self):
        features, _ = _first_batch(
            self.index_dir, modalities=("rgb", "flow"), training=False
        )
        red = 255 - (features["rgb"][..., 0].numpy() + 104)
        np.testing.assert_array_equal(
            fake_data.frame_index_of(red.mean(axis=(2, 3))),
            [[0, 2, 4, 6], [0, 0, 0, 0], [0, 1, 2, 3]],
        )
        features, _ = _first_batch(
            self.index_dir,
            modalities=("rgb", "flow"),
            training=False,
            joint_sampling="independent",
        )
        red = 255 - (features["rgb"][..., 0].numpy() + 104)
        np.testing.assert_array_equal(
            fake_data.frame_index_of(red.mean(axis=(2, 3)))[0], [0, 3, 6, 9]
        )

    def test_evaluation_clips_are_clip_major(self):
        clips = dict(
            modalities=("rgb", "flow"),
            num_frames=2,
            sampling_mode="clips",
            clip_stride=2,
            num_clips=2,
        )
        features, _ = _first_batch(self.index_dir, training=False, **clips)
        self.assertEqual(features["rgb"].shape, (3, 4, 24, 24, 3))
        self.assertEqual(features["flow"].shape, (3, 4, 24, 24, 4))
        # Video order 0, 2, 1 with n = 12, 5, 7 (11, 4, 6 flow frames): a
        # clip spans (2 − 1)·2 + L = 4 flow frames, P = 8, 1, 3 starts,
        # N = 2 clips start at 0 and P − 1; both streams share them.
        starts = np.array([[0, 2, 7, 9], [0, 2, 0, 2], [0, 2, 2, 4]])
        red = 255 - (features["rgb"][..., 0].numpy() + 104)
        np.testing.assert_array_equal(
            fake_data.frame_index_of(red.mean(axis=(2, 3))), starts
        )
        planes = features["flow"].numpy().mean(axis=(2, 3)) + 128
        x = fake_data.frame_index_of(planes[..., 0::2], kind="flow_x")
        np.testing.assert_array_equal(x, starts[..., None] + np.arange(2))
        features, _ = _first_batch(self.index_dir, training=True, **clips)
        self.assertEqual(features["rgb"].shape, (3, 2, 24, 24, 3))  # one clip

    def test_augmentation_shared_by_frames_and_streams(self):
        dataset = video_input.make_dataset(
            data_dir=self.pattern_dir,
            split="train",
            training=True,
            modalities=("rgb", "flow"),
            batch_size=4,
            **SMALL,
        )
        crops = []
        for features, _ in dataset.take(2):
            rgb = features["rgb"].numpy() + np.array([104, 117, 123])
            flow = features["flow"].numpy() + 128
            for v in range(4):
                # Identical frames in -> identical crops out, every frame.
                for t in range(1, 4):
                    np.testing.assert_array_equal(rgb[v, t], rgb[v, 0])
                    np.testing.assert_array_equal(flow[v, t], flow[v, 0])
                # Grey RGB and every flow plane share the texture: same crop
                # and flip in both streams (JPEG differs by a few levels).
                for c in range(4):
                    np.testing.assert_allclose(
                        flow[v, 0, ..., c], rgb[v, 0, ..., 1], atol=4
                    )
                crops.append(rgb[v, 0, ..., 1])
        distinct = {np.round(c).astype(np.uint8).tobytes() for c in crops}
        self.assertGreater(len(distinct), 3)  # videos do get different crops

    def test_partial_decode_changes_no_pixel(self):
        # Frames large enough for a colour window smaller than the frame.
        data_dir = fake_data.write_fake_dataset(
            os.path.join(testing.class_tempdir(type(self)), "large"),
            num_videos=3,
            content="pattern",
            height=96,
            width=160,
        )
        size = dict(SMALL, image_size=64, resize_to=(96, 160))
        modes = ((True, 1, "float32"), (False, 1, "float32"), (False, 5, "float32"))
        for training, crops, pixels in modes + ((False, 1, "uint8"),):
            found = [
                _first_batch(
                    data_dir,
                    modalities=("rgb", "flow"),
                    training=training,
                    num_crops=crops,
                    pixel_dtype=pixels,
                    partial_decode=partial,
                    **size,
                )[0]
                for partial in (True, False)
            ]
            for modality in ("rgb", "flow"):
                np.testing.assert_array_equal(
                    found[0][modality], found[1][modality], err_msg=str(modes)
                )

    @pytest.mark.slow
    def test_training_is_seeded(self):
        first = _first_batch(
            self.pattern_dir, modalities=("rgb",), training=True, seed=3
        )[0]["rgb"]
        again = _first_batch(
            self.pattern_dir, modalities=("rgb",), training=True, seed=3
        )[0]["rgb"]
        other = _first_batch(
            self.pattern_dir, modalities=("rgb",), training=True, seed=4
        )[0]["rgb"]
        np.testing.assert_array_equal(first, again)
        self.assertFalse(np.array_equal(first, other))

    @pytest.mark.slow
    def test_shards_together_are_the_single_process_batch(self):
        """Two workers' batches of 2 hold the videos and crops of one
        process's batch of 4; `skip` starts at a later batch."""

        def batches(count, **kwargs):
            dataset = video_input.make_dataset(
                **SMALL,
                data_dir=self.pattern_dir,
                split="train",
                training=True,
                with_ids=True,
                **kwargs,
            )
            # A batch as a multiset of (video, crop): the stream is repeated,
            # so a batch can hold a video twice (with two crops).
            return [
                sorted(
                    zip(
                        f["video_id"].numpy().tolist(),
                        [video.tobytes() for video in f["rgb"].numpy()],
                    )
                )
                for f, _ in dataset.take(count)
            ]

        whole = batches(3, batch_size=4)
        shards = [batches(3, batch_size=2, num_shards=2, shard_index=k) for k in (0, 1)]
        self.assertEqual([sorted(a + b) for a, b in zip(*shards)], whole)
        self.assertEqual(batches(2, batch_size=4, skip=4), whole[1:])
        with self.assertRaisesRegex(ValueError, "shard_index < num_shards"):
            batches(1, batch_size=2, num_shards=2, shard_index=2)

    def test_multi_hot_labels(self):
        data_dir = fake_data.write_fake_dataset(
            self.create_tempdir().full_path, multi_label=True, splits=("test",)
        )
        _, labels = _first_batch(data_dir, split="test", training=False)
        np.testing.assert_array_equal(labels, [[1, 1, 0], [0, 1, 1], [1, 0, 1]])

    def test_gin_binds_the_rest(self):
        gin.clear_config()
        self.addCleanup(gin.clear_config)
        gin.parse_config(
            [
                "make_dataset.num_frames = 2",
                "make_dataset.flow_stack = 2",
                "make_dataset.image_size = 24",
                "make_dataset.resize_to = (32, 40)",
            ]
        )
        features, _ = next(
            iter(
                video_input.make_dataset(
                    data_dir=self.index_dir,
                    split="test",
                    training=False,
                    modalities=("flow",),
                    batch_size=2,
                )
            )
        )
        self.assertEqual(features["flow"].shape, (2, 2, 24, 24, 4))
        # The dataset is a call's business (one home: train.data_dir, then
        # the run record), never a make_dataset binding.
        with self.assertRaisesRegex(ValueError, "denylisted kwarg 'data_dir'"):
            gin.parse_config(f"make_dataset.data_dir = '{self.index_dir}'")


class ChecksTest(parameterized.TestCase):
    def setUp(self):
        super().setUp()
        self.data_dir = fake_data.write_fake_dataset(
            self.create_tempdir().full_path, splits=("test",)
        )
        self.shard = os.path.join(self.data_dir, "test-00000-of-00001.tfrecord")

    def _edit_metadata(self, edit):
        path = os.path.join(self.data_dir, schema.METADATA_FILE)
        with open(path) as f:
            metadata = json.load(f)
        edit(metadata)
        with open(path, "w") as f:
            json.dump(metadata, f)

    def _read_all(self, **kwargs):
        args = dict(
            SMALL, data_dir=self.data_dir, split="test", training=False, batch_size=2
        )
        args.update(kwargs)
        for _ in video_input.make_dataset(**args):
            pass

    def test_info(self):
        info = video_input.dataset_info(self.data_dir)
        self.assertEqual(info["num_classes"], 3)
        self.assertEqual(info["labels"], ["class_00", "class_01", "class_02"])

    def test_flow_settings_mismatch(self):
        self._edit_metadata(lambda m: m["flow"].update(bound=15.0))
        with self.assertRaisesRegex(ValueError, "flow bound is 15.0"):
            video_input.dataset_info(self.data_dir)

    def test_missing_shard_and_split(self):
        with self.assertRaisesRegex(ValueError, "no split 'train'"):
            self._read_all(split="train")
        os.remove(self.shard)
        with self.assertRaisesRegex(FileNotFoundError, "test-00000-of-00001"):
            self._read_all()

    @parameterized.parameters(2, 4)
    def test_count_mismatch_names_shard(self, listed):
        def edit(metadata):
            metadata["splits"]["test"]["num_records"] = listed
            metadata["splits"]["test"]["shards"][0]["num_records"] = listed

        self._edit_metadata(edit)
        with self.assertRaisesRegex(
            tf.errors.InvalidArgumentError,
            f"test-00000-of-00001.tfrecord.*lists {listed} records",
        ):
            self._read_all()

    @parameterized.parameters("flip", "truncate")
    def test_corrupt_shard_names_shard(self, damage):
        with open(self.shard, "rb") as f:
            data = bytearray(f.read())
        if damage == "flip":
            data[len(data) // 2] ^= 0xFF
        else:
            data = data[: len(data) - 100]
        with open(self.shard, "wb") as f:
            f.write(bytes(data))
        with self.assertRaisesRegex(
            tf.errors.InvalidArgumentError,
            "test-00000-of-00001.tfrecord.*truncated or corrupt",
        ):
            self._read_all()

    def test_video_too_short_for_flow_stack(self):
        with self.assertRaisesRegex(
            tf.errors.InvalidArgumentError, "fewer than 13 frames.*test/video0"
        ):
            self._read_all(modalities=("flow",), flow_stack=12)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "modalities"):
            self._read_all(modalities=("depth",))
        with self.assertRaisesRegex(ValueError, "one random crop"):
            self._read_all(training=True, num_crops=5)
        with self.assertRaisesRegex(ValueError, "training crops are resized"):
            self._read_all(training=True, pixel_dtype="uint8")
        with self.assertRaisesRegex(ValueError, "pixel_dtype.*'float16'"):
            self._read_all(pixel_dtype="float16")

    def test_uint8_pixels_need_frames_at_resize_to(self):
        with self.assertRaisesRegex(
            tf.errors.InvalidArgumentError, r"(?s)stored at \(30, 40\).*test/video0"
        ):
            self._read_all(pixel_dtype="uint8", resize_to=(30, 40))


if __name__ == "__main__":
    absltest.main()
