"""Tests for avlad_tf.run_record: what a training run records in run.json."""

import copy
import json
import os

from absl.testing import absltest
from absl.testing import parameterized
import gin

from avlad_tf import run_record
from avlad_tf import settings
from avlad_tf.data import video_input

# Imported for the roles they declare (`train_stream`, `evaluate`, ...),
# which `check_rerun` reads.
from avlad_tf.evaluation import scoring  # noqa: F401
from avlad_tf.training import experiment  # noqa: F401

_INFO = {
    "labels": ["brush_hair", "cartwheel"],
    "multi_label": False,
    "frame_height": 256,
    "frame_width": 340,
    "flow": {"preset": "opencv_cuda", "parameters": {"warps": 3}, "backend": "x"},
}


def _stream_entry(batch_size=4):
    return {
        "modalities": ["rgb"],
        "train_split": "train",
        "training": {
            "train_stream": {
                "batch_size": batch_size,
                "jit_compile": True,
                "stage_steps": [10, 20],
            },
            "build_model": {"num_clusters": 64},
        },
        "input": {"num_frames": 25, "resize_to": (256, 340)},
        "num_crops": 1,
    }


def _build(data_dir="data", fuse_weights=(1, 2), evaluate_split="test", **kwargs):
    return run_record.build(
        data_dir=data_dir,
        info=_INFO,
        evaluate_split=evaluate_split,
        streams={"rgb": _stream_entry(), "flow": _stream_entry(batch_size=8)},
        fuse_weights=fuse_weights,
        **kwargs,
    )


class BuildWriteReadTest(absltest.TestCase):
    def test_build_records_the_data_streams_and_fusion(self):
        record = _build(data_dir="some/data")
        self.assertEqual(record["format_version"], run_record.FORMAT_VERSION)
        data = record["data"]
        self.assertEqual(data["data_dir"], os.path.abspath("some/data"))
        self.assertEqual(data["labels"], ["brush_hair", "cartwheel"])
        self.assertIs(data["multi_label"], False)
        self.assertEqual((data["frame_height"], data["frame_width"]), (256, 340))
        # The flow family: the preset, its parameters and frame size, not
        # the backend.
        self.assertEqual(
            data["flow"],
            {
                "preset": "opencv_cuda",
                "parameters": {"warps": 3},
                "frame_size": "stored",
            },
        )
        self.assertEqual(data["evaluate_split"], "test")
        self.assertEqual(list(record["streams"]), ["rgb", "flow"])
        # As JSON reads it back: tuples are lists.
        self.assertEqual(record["streams"]["rgb"]["input"]["resize_to"], [256, 340])
        self.assertEqual(record["fusion"], {"weights": {"rgb": 1.0, "flow": 2.0}})

    def test_no_fuse_weights_no_fusion(self):
        self.assertIsNone(_build(fuse_weights=None)["fusion"])

    def test_write_read_round_trip_keeps_stream_order(self):
        workdir = os.path.join(self.create_tempdir().full_path, "new", "workdir")
        record = _build()
        run_record.write(workdir, record)
        self.assertEqual(run_record.path(workdir), os.path.join(workdir, "run.json"))
        self.assertTrue(os.path.exists(run_record.path(workdir)))
        read = run_record.read(workdir)
        self.assertEqual(read, record)
        self.assertEqual(list(read["streams"]), ["rgb", "flow"])

    def test_read_without_a_record_says_how_to_get_one(self):
        workdir = self.create_tempdir().full_path
        with self.assertRaisesRegex(FileNotFoundError, "run.json does not exist"):
            run_record.read(workdir)

    def test_read_refuses_another_format_version(self):
        workdir = self.create_tempdir().full_path
        with open(os.path.join(workdir, "run.json"), "w") as f:
            json.dump({"format_version": run_record.FORMAT_VERSION + 1}, f)
        with self.assertRaisesRegex(
            ValueError,
            rf"format_version {run_record.FORMAT_VERSION + 1}, this avlad_tf "
            rf"reads {run_record.FORMAT_VERSION}",
        ):
            run_record.read(workdir)

    def test_stream_returns_the_entry_or_names_the_streams(self):
        record = _build()
        self.assertEqual(
            run_record.stream(record, "flow")["training"]["train_stream"]["batch_size"],
            8,
        )
        with self.assertRaisesRegex(
            ValueError, r"/w/run.json: no stream 'fused'; .*\['flow', 'rgb'\]"
        ):
            run_record.stream(record, "fused", workdir="/w")


class ResolvedSettingsTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        gin.clear_config()
        self.addCleanup(gin.clear_config)

    def test_defaults_updated_with_bindings_in_the_stream_scope(self):
        gin.parse_config(
            "make_dataset.num_frames = 7\nflow/make_dataset.flow_stack = 3\n"
        )
        rgb = run_record.resolved_arguments(video_input.make_dataset, scope="rgb")
        flow = run_record.resolved_arguments(video_input.make_dataset, scope="flow")
        self.assertEqual((rgb["num_frames"], rgb["flow_stack"]), (7, 10))
        self.assertEqual((flow["num_frames"], flow["flow_stack"]), (7, 3))

    def test_recorded_settings_leave_out_call_arguments(self):
        recorded = run_record.recorded_settings(video_input.make_dataset)
        roles = video_input.make_dataset.roles
        self.assertNotIn("seed", recorded)  # a call argument
        self.assertNotIn("data_dir", recorded)
        self.assertEqual(
            set(recorded), {name for name, role in roles.items() if role != "call"}
        )
        self.assertEqual(recorded["resize_to"], [256, 340])  # as JSON

    def test_check_input_bindings_refuses_a_contradicting_binding(self):
        record = _build()
        gin.parse_config("rgb/make_dataset.num_frames = 25")  # as recorded
        run_record.check_input_bindings(record, video_input.make_dataset, workdir="/w")
        gin.parse_config("flow/make_dataset.num_frames = 5")
        with self.assertRaisesRegex(
            ValueError,
            r"make_dataset.num_frames = 5 differs from the flow stream's "
            r"recorded 25 \(/w/run.json\)",
        ):
            run_record.check_input_bindings(
                record, video_input.make_dataset, workdir="/w"
            )


class CheckRerunTest(parameterized.TestCase):
    def _changed(self, path, value):
        current = copy.deepcopy(_build())
        *parents, leaf = path.split("/")
        entry = current
        for key in parents:
            entry = entry[key]
        entry[leaf] = value
        return current

    def test_the_same_settings_apply_nothing(self):
        self.assertEqual(run_record.check_rerun(_build(), _build(), workdir="w"), [])

    def test_a_changed_setting_is_refused_naming_its_binding(self):
        self.assertEqual(settings.role("train_stream", "batch_size"), "setting")
        current = self._changed("streams/rgb/training/train_stream/batch_size", 16)
        with self.assertRaisesRegex(
            ValueError,
            r"^/runs/a was trained with other settings "
            r"\(rgb/train_stream\.batch_size: 4 -> 16\)\. Use a new --workdir, "
            r"or the recorded settings \(/runs/a/run\.json\)\.$",
        ):
            run_record.check_rerun(_build(), current, workdir="/runs/a")

    def test_switching_determinism_is_refused_either_way(self):
        on, off = _build(deterministic=True), _build()
        self.assertEqual(on["train"], {"deterministic": True})
        older = {k: v for k, v in off.items() if k != "train"}  # not recorded
        for before, after, change in (
            (off, on, "False -> True"),
            (older, on, "False -> True"),
            (on, off, "True -> False"),
        ):
            with self.assertRaisesRegex(
                ValueError, rf"\(train\.deterministic: {change}\)"
            ):
                run_record.check_rerun(before, after, workdir="w")
        self.assertEqual(run_record.check_rerun(on, on, workdir="w"), [])
        self.assertEqual(run_record.check_rerun(older, off, workdir="w"), [])

    def test_an_input_setting_is_refused_as_a_make_dataset_binding(self):
        current = self._changed("streams/flow/input/num_frames", 5)
        with self.assertRaisesRegex(
            ValueError, r"\(flow/make_dataset\.num_frames: 25 -> 5\)"
        ):
            run_record.check_rerun(_build(), current, workdir="w")

    def test_every_refused_setting_is_named_and_nothing_applied(self):
        current = self._changed("streams/rgb/training/build_model/num_clusters", 32)
        current["streams"]["rgb"]["training"]["train_stream"]["jit_compile"] = False
        current["data"]["labels"] = ["a", "b"]
        with self.assertRaises(ValueError) as raised:
            run_record.check_rerun(_build(), current, workdir="w")
        message = str(raised.exception)
        self.assertIn("rgb/build_model.num_clusters: 64 -> 32", message)
        self.assertIn("data.labels: ['brush_hair', 'cartwheel'] -> ['a', 'b']", message)
        # The execution setting is not the reason for refusing.
        self.assertNotIn("jit_compile", message)

    def test_an_execution_setting_is_applied(self):
        self.assertEqual(settings.role("train_stream", "jit_compile"), "execution")
        current = self._changed("streams/rgb/training/train_stream/jit_compile", False)
        self.assertEqual(
            run_record.check_rerun(_build(), current, workdir="w"),
            ["rgb/train_stream.jit_compile: True -> False"],
        )

    def test_evaluation_entries_are_applied(self):
        self.assertEqual(settings.role("evaluate", "num_crops"), "evaluation")
        current = self._changed("streams/flow/num_crops", 5)
        current["data"]["evaluate_split"] = "val"
        current["fusion"]["weights"]["flow"] = 1.5
        applied = run_record.check_rerun(_build(), current, workdir="w")
        self.assertLen(applied, 3)
        joined = "; ".join(applied)
        self.assertIn("num_crops: 1 -> 5", joined)
        self.assertIn("evaluate_split: 'test' -> 'val'", joined)
        self.assertIn("flow: 2.0 -> 1.5", joined)

    def test_extending_the_last_stage_is_applied(self):
        current = self._changed(
            "streams/rgb/training/train_stream/stage_steps", [10, 35]
        )
        self.assertEqual(
            run_record.check_rerun(_build(), current, workdir="w"),
            ["rgb/train_stream.stage_steps: [10, 20] -> [10, 35]"],
        )

    @parameterized.named_parameters(
        ("shortening_the_last", [10, 15]),
        ("changing_an_earlier", [11, 20]),
        ("adding_a_stage", [10, 20, 5]),
        ("dropping_a_stage", [10]),
    )
    def test_other_stage_steps_changes_are_refused(self, steps):
        current = self._changed("streams/rgb/training/train_stream/stage_steps", steps)
        with self.assertRaisesRegex(ValueError, r"rgb/train_stream\.stage_steps"):
            run_record.check_rerun(_build(), current, workdir="w")

    def test_a_recorded_call_argument_is_ignored(self):
        # An older record may hold an entry that is a call argument now.
        self.assertEqual(settings.role("train_stream", "workdir"), "call")
        previous = self._changed("streams/rgb/training/train_stream/workdir", "/a")
        current = self._changed("streams/rgb/training/train_stream/workdir", "/b")
        self.assertEqual(run_record.check_rerun(previous, current, workdir="w"), [])


if __name__ == "__main__":
    absltest.main()
