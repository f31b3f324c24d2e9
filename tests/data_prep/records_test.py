"""Records from real video files and release frame folders."""

import os

from absl.testing import absltest
import cv2
import numpy as np
import tensorflow as tf

from avlad_tf.data import schema
from data_prep import records
from data_prep import video_io
from tests.data_prep import prep_fixtures

OPTIONS = records.Options(height=24, width=32, min_frames=11)


def _parse(serialized):
    parsed = schema.parse_sequence_example(serialized)
    return {k: v.numpy() for k, v in parsed.items()}


class RecordsTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        self.dir = self.create_tempdir().full_path

    def test_video_round_trip_through_schema(self):
        path = prep_fixtures.write_video(os.path.join(self.dir, "a", "v.avi"), 12)
        item = records.Item(video_id="a/v", labels=(3,), path=path)
        serialized, n, _ = records.encode_item(item, OPTIONS)
        parsed = _parse(serialized)
        self.assertEqual(n, 12)
        self.assertEqual(parsed[schema.VIDEO_ID_KEY], b"a/v")
        self.assertEqual(list(parsed[schema.LABEL_INDEX_KEY]), [3])
        self.assertEqual(parsed[schema.LENGTH_KEY], 12)
        self.assertEqual(parsed[schema.SOURCE_KEY], path.encode())
        self.assertLen(parsed[schema.RGB_KEY], 12)
        self.assertLen(parsed[schema.FLOW_X_KEY], 11)
        self.assertLen(parsed[schema.FLOW_Y_KEY], 11)
        rgb = tf.io.decode_jpeg(parsed[schema.RGB_KEY][0]).numpy()
        self.assertEqual(rgb.shape, (24, 32, 3))
        flow_x = tf.io.decode_jpeg(parsed[schema.FLOW_X_KEY][0]).numpy()
        self.assertEqual(flow_x.shape, (24, 32, 1))
        # The texture moves 2 px left per frame at 64 px wide: -1 px at the
        # stored 32 px; quantised, that is 127.5 - 255/40 ~ 121.1.
        centre = schema.dequantize_flow(flow_x[6:18, 8:24]).mean()
        self.assertAlmostEqual(float(centre), -1.0, delta=0.35)

    def test_native_flow_is_in_the_videos_own_pixels(self):
        # UCF101's way (dense_flow at the native size): flow computed on the
        # 64 px wide frames, -2 px a frame, then stored at 32 px wide with
        # its values unchanged; the RGB frames are stored as before.
        path = prep_fixtures.write_video(os.path.join(self.dir, "a", "v.avi"), 12)
        item = records.Item(video_id="a/v", labels=(3,), path=path)
        native = records.Options(
            height=24, width=32, min_frames=11, flow_frame_size="native"
        )
        parsed = _parse(records.encode_item(item, native)[0])
        stored = _parse(records.encode_item(item, OPTIONS)[0])
        self.assertEqual(parsed[schema.RGB_KEY][0], stored[schema.RGB_KEY][0])
        flow_x = tf.io.decode_jpeg(parsed[schema.FLOW_X_KEY][0]).numpy()
        self.assertEqual(flow_x.shape, (24, 32, 1))
        centre = schema.dequantize_flow(flow_x[6:18, 8:24]).mean()
        self.assertAlmostEqual(float(centre), -2.0, delta=0.5)
        self.assertEqual(records.flow_metadata(native)["frame_size"], "native")
        self.assertEqual(records.release_flow_frame_size("ucf101"), "native")
        self.assertEqual(records.release_flow_frame_size("hmdb51"), "stored")

    def test_frame_folder_is_converted_without_recomputing_flow(self):
        folder = prep_fixtures.write_frame_folder(
            os.path.join(self.dir, "frames", "c", "1"), 12, height=24, width=32
        )
        item = records.Item(video_id="c/1", labels=(0,), path=folder)
        parsed = _parse(records.encode_item(item, OPTIONS)[0])
        self.assertEqual(parsed[schema.LENGTH_KEY], 12)
        with open(os.path.join(folder, "image_00001.jpg"), "rb") as f:
            self.assertEqual(parsed[schema.RGB_KEY][0], f.read())  # kept as is
        flow_x = [
            tf.io.decode_jpeg(x).numpy().mean() for x in parsed[schema.FLOW_X_KEY]
        ]
        flow_y = [
            tf.io.decode_jpeg(y).numpy().mean() for y in parsed[schema.FLOW_Y_KEY]
        ]
        np.testing.assert_allclose(flow_x, 100 + np.arange(1, 12), atol=1)
        np.testing.assert_allclose(flow_y, 150 - np.arange(1, 12), atol=1)

    def test_frame_folder_of_another_size_is_resized(self):
        folder = prep_fixtures.write_frame_folder(
            os.path.join(self.dir, "big"), 11, height=48, width=64
        )
        parsed = _parse(
            records.encode_item(
                records.Item(video_id="big", labels=(0,), path=folder), OPTIONS
            )[0]
        )
        self.assertEqual(
            tf.io.decode_jpeg(parsed[schema.RGB_KEY][3]).shape, (24, 32, 3)
        )
        self.assertEqual(
            tf.io.decode_jpeg(parsed[schema.FLOW_Y_KEY][3]).shape, (24, 32, 1)
        )

    def test_missing_flow_file_is_an_error(self):
        folder = prep_fixtures.write_frame_folder(
            os.path.join(self.dir, "f"), 12, height=24, width=32
        )
        os.remove(os.path.join(folder, "flow_y_00004.jpg"))
        with self.assertRaisesRegex(
            video_io.SourceError, "missing: flow flow_y_00004.jpg"
        ):
            records.encode_item(
                records.Item(video_id="f", labels=(0,), path=folder), OPTIONS
            )

    def test_corrupt_jpeg_is_an_error(self):
        folder = prep_fixtures.write_frame_folder(
            os.path.join(self.dir, "j"), 12, height=24, width=32
        )
        with open(os.path.join(folder, "image_00005.jpg"), "wb") as f:
            f.write(b"\xff\xd8 truncated")
        with self.assertRaisesRegex(
            video_io.SourceError, "corrupt JPEG: image_00005.jpg"
        ):
            records.encode_item(
                records.Item(video_id="j", labels=(0,), path=folder), OPTIONS
            )

    def test_unusable_videos_raise_with_the_reason(self):
        cases = {
            "corrupt": (
                prep_fixtures.write_corrupt(os.path.join(self.dir, "corrupt.avi")),
                "unreadable",
            ),
            "missing": (os.path.join(self.dir, "nope.avi"), "missing"),
            "short": (
                prep_fixtures.write_video(os.path.join(self.dir, "three.avi"), 3),
                "too short: 3 frames, fewer than min_frames=11",
            ),
        }
        empty = os.path.join(self.dir, "empty.avi")
        open(empty, "wb").close()
        cases["empty"] = (empty, "empty")
        for name, (path, reason) in cases.items():
            with self.subTest(name):
                with self.assertRaisesRegex(video_io.SourceError, reason):
                    records.encode_item(
                        records.Item(video_id=name, labels=(0,), path=path), OPTIONS
                    )

    def test_three_frame_video_is_kept_with_a_lower_minimum(self):
        path = prep_fixtures.write_video(os.path.join(self.dir, "three.avi"), 3)
        options = records.Options(height=24, width=32, min_frames=2)
        parsed = _parse(
            records.encode_item(
                records.Item(video_id="three", labels=(1,), path=path), options
            )[0]
        )
        self.assertEqual(parsed[schema.LENGTH_KEY], 3)
        self.assertLen(parsed[schema.FLOW_X_KEY], 2)

    def test_clip_takes_the_annotated_frames(self):
        path = prep_fixtures.write_video(os.path.join(self.dir, "c.avi"), 20)
        item = records.Item(
            video_id="c@5-16", labels=(2,), path=path, start_frame=5, clip_length=11
        )
        parsed = _parse(records.encode_item(item, OPTIONS)[0])
        self.assertEqual(parsed[schema.LENGTH_KEY], 11)
        self.assertEqual(parsed[schema.START_FRAME_KEY], 5)
        full = _parse(
            records.encode_item(
                records.Item(video_id="c", labels=(2,), path=path), OPTIONS
            )[0]
        )
        for j in (0, 10):
            clip = tf.io.decode_jpeg(parsed[schema.RGB_KEY][j]).numpy()
            whole = tf.io.decode_jpeg(full[schema.RGB_KEY][5 + j]).numpy()
            np.testing.assert_array_equal(clip, whole)


class FlowTest(absltest.TestCase):
    def test_quantisation_round_trip_within_one_step(self):
        rng = np.random.default_rng(0)
        flow = rng.uniform(-30, 30, size=(64, 64, 2)).astype(np.float32)
        restored = schema.dequantize_flow(schema.quantize_flow(flow))
        step = 2 * schema.FLOW_BOUND / 255
        clipped = np.clip(flow, -schema.FLOW_BOUND, schema.FLOW_BOUND)
        self.assertLessEqual(np.abs(restored - clipped).max(), step)
        self.assertEqual(schema.quantize_flow(np.zeros((1,)))[0], 128)

    def test_stored_flow_jpeg_round_trip(self):
        from data_prep import flow as flow_lib

        flow = np.stack(np.meshgrid(np.linspace(-5, 5, 32), np.linspace(-3, 3, 24)), -1)
        xs, ys = flow_lib.encode_flows([flow.astype(np.float32)], quality=95)
        x = cv2.imdecode(np.frombuffer(xs[0], np.uint8), cv2.IMREAD_UNCHANGED)
        self.assertEqual(x.shape, (24, 32))
        restored = schema.dequantize_flow(x)
        # JPEG adds at most a few quantisation steps on smooth flow.
        self.assertLess(np.abs(restored - flow[..., 0]).max(), 0.5)


if __name__ == "__main__":
    absltest.main()
