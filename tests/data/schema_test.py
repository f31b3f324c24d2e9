"""Tests for avlad_tf.data.schema: the one on-disk record and metadata format."""

import json
import os

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from avlad_tf.data import schema

# One flow quantisation step in pixels: 2 * bound spread over 255 steps.
_STEP = 2 * schema.FLOW_BOUND / 255.0


def _video(num_frames):
    """Distinct stand-in 'JPEG' bytes; the schema does not decode them."""
    rgb = [f"rgb{i}".encode() for i in range(num_frames)]
    flow_x = [f"x{j}".encode() for j in range(max(num_frames - 1, 0))]
    flow_y = [f"y{j}".encode() for j in range(max(num_frames - 1, 0))]
    return rgb, flow_x, flow_y


def _metadata():
    return {
        "dataset": "fake",
        "labels": ["a", "b", "c"],
        "num_classes": 3,
        "splits": {},
    }


class SequenceExampleTest(parameterized.TestCase):
    def test_round_trip(self):
        rgb, flow_x, flow_y = _video(4)
        serialized = schema.make_sequence_example(
            video_id="brush_hair/1",
            labels=[2, 0],
            rgb_jpegs=rgb,
            flow_x_jpegs=flow_x,
            flow_y_jpegs=flow_y,
            source="/videos/brush_hair/1.avi",
            start_frame=7,
        )
        parsed = schema.parse_sequence_example(serialized)
        self.assertEqual(parsed[schema.VIDEO_ID_KEY].numpy(), b"brush_hair/1")
        np.testing.assert_array_equal(parsed[schema.LABEL_INDEX_KEY].numpy(), [2, 0])
        self.assertEqual(parsed[schema.LABEL_INDEX_KEY].dtype, tf.int64)
        self.assertEqual(parsed[schema.LENGTH_KEY].numpy(), 4)
        self.assertEqual(parsed[schema.SOURCE_KEY].numpy(), b"/videos/brush_hair/1.avi")
        self.assertEqual(parsed[schema.START_FRAME_KEY].numpy(), 7)
        self.assertEqual(list(parsed[schema.RGB_KEY].numpy()), rgb)
        self.assertEqual(list(parsed[schema.FLOW_X_KEY].numpy()), flow_x)
        self.assertEqual(list(parsed[schema.FLOW_Y_KEY].numpy()), flow_y)

    def test_defaults_and_no_labels(self):
        rgb, flow_x, flow_y = _video(2)
        parsed = schema.parse_sequence_example(
            schema.make_sequence_example(
                video_id="v",
                labels=[],
                rgb_jpegs=rgb,
                flow_x_jpegs=flow_x,
                flow_y_jpegs=flow_y,
            )
        )
        self.assertEqual(parsed[schema.LABEL_INDEX_KEY].shape, (0,))
        self.assertEqual(parsed[schema.SOURCE_KEY].numpy(), b"")
        self.assertEqual(parsed[schema.START_FRAME_KEY].numpy(), 0)

    def test_parses_inside_tf_data(self):
        rgb, flow_x, flow_y = _video(3)
        serialized = schema.make_sequence_example(
            video_id="v",
            labels=[1],
            rgb_jpegs=rgb,
            flow_x_jpegs=flow_x,
            flow_y_jpegs=flow_y,
        )
        dataset = tf.data.Dataset.from_tensors(serialized).map(
            schema.parse_sequence_example
        )
        parsed = next(iter(dataset))
        self.assertEqual(list(parsed[schema.FLOW_Y_KEY].numpy()), flow_y)

    def test_same_video_same_bytes(self):
        rgb, flow_x, flow_y = _video(3)
        kwargs = dict(
            video_id="v",
            labels=[1],
            rgb_jpegs=rgb,
            flow_x_jpegs=flow_x,
            flow_y_jpegs=flow_y,
            source="s",
            start_frame=3,
        )
        self.assertEqual(
            schema.make_sequence_example(**kwargs),
            schema.make_sequence_example(**kwargs),
        )

    @parameterized.named_parameters(
        ("too_few_x", 3, 1, 2),
        ("too_many_y", 3, 2, 3),
        ("one_frame_with_flow", 1, 1, 1),
    )
    def test_flow_needs_one_frame_per_pair(self, num_frames, num_x, num_y):
        with self.assertRaisesRegex(
            ValueError,
            rf"^v: {num_frames} RGB frames need {num_frames - 1} flow frames per "
            rf"direction\. Received: x={num_x}, y={num_y}$",
        ):
            schema.make_sequence_example(
                video_id="v",
                labels=[0],
                rgb_jpegs=[b"r"] * num_frames,
                flow_x_jpegs=[b"x"] * num_x,
                flow_y_jpegs=[b"y"] * num_y,
            )

    def test_a_single_frame_has_no_flow(self):
        parsed = schema.parse_sequence_example(
            schema.make_sequence_example(
                video_id="v",
                labels=[0],
                rgb_jpegs=[b"r"],
                flow_x_jpegs=[],
                flow_y_jpegs=[],
            )
        )
        self.assertEqual(parsed[schema.FLOW_X_KEY].shape, (0,))


class FlowQuantisationTest(absltest.TestCase):
    def test_bounds_and_zero_motion(self):
        flow = np.array([-100.0, -20.0, 0.0, 20.0, 100.0], np.float32)
        # -bound -> 0, +bound -> 255, 0 -> 127.5, which rounds to even 128.
        np.testing.assert_array_equal(schema.quantize_flow(flow), [0, 0, 128, 255, 255])
        self.assertEqual(schema.quantize_flow(flow).dtype, np.uint8)

    def test_tensor_and_numpy_agree(self):
        flow = np.linspace(-25.0, 25.0, 1001, dtype=np.float32)
        from_tensor = schema.quantize_flow(tf.constant(flow))
        self.assertTrue(tf.is_tensor(from_tensor))
        self.assertEqual(from_tensor.dtype, tf.uint8)
        np.testing.assert_array_equal(from_tensor.numpy(), schema.quantize_flow(flow))

    def test_dequantize_inverts_within_half_a_step(self):
        flow = np.linspace(-schema.FLOW_BOUND, schema.FLOW_BOUND, 777)
        back = schema.dequantize_flow(schema.quantize_flow(flow))
        self.assertLessEqual(np.abs(back - flow).max(), _STEP / 2 + 1e-5)
        np.testing.assert_allclose(
            schema.dequantize_flow([0, 255]), [-schema.FLOW_BOUND, schema.FLOW_BOUND]
        )


class FlowFamilyTest(absltest.TestCase):
    def test_family_is_preset_parameters_and_frame_size_not_backend(self):
        # Metadata older than presets and frame sizes: OpenCV's CPU flow on
        # the stored frames, the only flow data_prep made then.
        self.assertEqual(
            schema.flow_family({}),
            {"preset": "opencv", "parameters": {}, "frame_size": "stored"},
        )
        self.assertEqual(
            schema.flow_family(
                {
                    "preset": "release",
                    "parameters": {"warps": 3},
                    "backend": "b",
                    "frame_size": "native",
                }
            ),
            {"preset": "release", "parameters": {"warps": 3}, "frame_size": "native"},
        )
        schema.check_flow_family(
            {"preset": "opencv", "backend": "opencv"},
            {"backend": "keras", "bound": 20.0},
            what="x",
        )

    def test_another_family_is_refused_naming_what(self):
        with self.assertRaisesRegex(ValueError, r"^the export: its flow is .*warps"):
            schema.check_flow_family(
                {}, {"parameters": {"warps": 3}}, what="the export"
            )
        with self.assertRaisesRegex(ValueError, "opencv_cuda"):
            schema.check_flow_family({"preset": "opencv_cuda"}, {}, what="x")
        with self.assertRaisesRegex(ValueError, "native"):
            schema.check_flow_family({"frame_size": "native"}, {}, what="x")


class MetadataTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        self.data_dir = self.create_tempdir().full_path
        self.path = os.path.join(self.data_dir, schema.METADATA_FILE)

    def _edit(self, change):
        with open(self.path) as f:
            metadata = json.load(f)
        change(metadata)
        with open(self.path, "w") as f:
            json.dump(metadata, f)

    def test_write_read_round_trip_adds_version_and_flow_convention(self):
        metadata = dict(_metadata(), flow={"preset": "opencv_cuda", "backend": "b"})
        schema.write_metadata(self.data_dir, metadata)
        read = schema.read_metadata(self.data_dir)
        self.assertEqual(read["schema_version"], schema.SCHEMA_VERSION)
        self.assertEqual(
            read["flow"],
            {
                "preset": "opencv_cuda",
                "backend": "b",
                "algorithm": schema.FLOW_ALGORITHM,
                "bound": schema.FLOW_BOUND,
                "quantisation": schema.FLOW_QUANTISATION,
                "index_base": schema.FLOW_INDEX_BASE,
            },
        )
        for key in ("dataset", "labels", "num_classes", "splits"):
            self.assertEqual(read[key], metadata[key])
        with open(os.path.join(self.data_dir, schema.LABELS_FILE)) as f:
            self.assertEqual(f.read(), "a\nb\nc\n")
        self.assertNotIn("schema_version", metadata)  # the argument is kept

    def test_missing_metadata_says_to_prepare(self):
        with self.assertRaisesRegex(
            FileNotFoundError, r"metadata.json does not exist: .*data_prep.prepare"
        ):
            schema.read_metadata(self.data_dir)

    def test_another_schema_version_is_refused(self):
        schema.write_metadata(self.data_dir, _metadata())
        self._edit(lambda m: m.update(schema_version=2))
        with self.assertRaisesRegex(
            ValueError, r"schema_version 2 is not the supported 1\.$"
        ):
            schema.read_metadata(self.data_dir)

    def test_other_flow_settings_are_refused_naming_the_field(self):
        schema.write_metadata(self.data_dir, _metadata())
        self._edit(lambda m: m["flow"].update(bound=15.0))
        with self.assertRaises(ValueError) as raised:
            schema.read_metadata(self.data_dir)
        message = str(raised.exception)
        self.assertEqual(message.count("\n"), 0)
        self.assertIn(self.path, message)
        self.assertIn("flow bound is 15.0, but this reader expects 20.0", message)

    def test_missing_flow_settings_are_refused(self):
        schema.write_metadata(self.data_dir, _metadata())
        self._edit(lambda m: m.pop("flow"))
        with self.assertRaisesRegex(ValueError, "flow algorithm is None"):
            schema.read_metadata(self.data_dir)


if __name__ == "__main__":
    absltest.main()
