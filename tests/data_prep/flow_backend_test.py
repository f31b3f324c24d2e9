"""`data_prep.prepare --flow_backend=keras`: the same flow family as OpenCV's,
recorded in the metadata, interchangeable on a rerun, refused across presets;
the release's flow by default."""

import glob
import json
import os

from absl.testing import absltest
import numpy as np
import pytest
import tensorflow as tf

from avlad_tf.data import schema
from tests.data_prep import prep_fixtures
from tests.data_prep import prepare_test


def _stored_flow(data_dir):
    """Every record's decoded flow planes, by video id: uint8 [2, T-1, H, W]."""
    flows = {}
    for shard in sorted(glob.glob(os.path.join(data_dir, "*.tfrecord"))):
        for serialized in tf.data.TFRecordDataset(shard):
            parsed = schema.parse_sequence_example(serialized)
            planes = [
                np.stack([tf.io.decode_jpeg(j).numpy()[..., 0] for j in parsed[key]])
                for key in (schema.FLOW_X_KEY, schema.FLOW_Y_KEY)
            ]
            flows[parsed[schema.VIDEO_ID_KEY].numpy().decode()] = np.stack(planes)
    return flows


# OpenCV's CPU flow, computed by OpenCV.
_OPENCV = ("--flow_backend=opencv", "--flow_preset=opencv")


class FlowBackendTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        self.tmp = self.create_tempdir().full_path
        videos = os.path.join(self.tmp, "videos")
        for i in range(4):
            prep_fixtures.write_video(
                os.path.join(videos, "ab"[i % 2], f"{i}.avi"), 12, first=i
            )
        self.args = [
            "--dataset=folders",
            f"--input_dir={videos}",
            "--test_fraction=0.5",
            "--frame_size=48,64",
            "--records_per_shard=1",
        ]

    def _prepare(self, name, *extra):
        output = os.path.join(self.tmp, name)
        result = prepare_test._run(*self.args, f"--output_dir={output}", *extra)  # pylint: disable=protected-access
        self.assertEqual(result.returncode, 0, result.stderr)
        return output, result

    @pytest.mark.slow
    def test_both_backends_store_the_same_flow_and_say_which_made_it(self):
        cpu, _ = self._prepare("cpu", "--workers=1", *_OPENCV)
        keras_dir, _ = self._prepare(
            "keras", "--workers=2", "--flow_backend=keras", "--flow_preset=opencv"
        )
        ours, theirs = _stored_flow(keras_dir), _stored_flow(cpu)
        self.assertEqual(sorted(ours), sorted(theirs))
        for video_id, flow in ours.items():
            difference = np.abs(flow.astype(int) - theirs[video_id].astype(int))
            self.assertLessEqual(difference.mean(), 0.25, video_id)
            self.assertLessEqual((difference > 1).mean(), 0.01, video_id)
        for data_dir, backend in ((cpu, "opencv"), (keras_dir, "keras")):
            flow = schema.read_metadata(data_dir)["flow"]
            self.assertEqual(flow["backend"], backend)
            self.assertEqual(flow["preset"], "opencv")
            self.assertEqual(flow["algorithm"], schema.FLOW_ALGORITHM)
        schema.check_flow_family(
            schema.read_metadata(cpu)["flow"],
            schema.read_metadata(keras_dir)["flow"],
            what=keras_dir,
        )

    @pytest.mark.slow
    def test_a_rerun_may_switch_backends_but_not_presets(self):
        output, _ = self._prepare("data", "--workers=1", *_OPENCV)
        _, rerun = self._prepare(
            "data", "--workers=1", "--flow_backend=keras", "--flow_preset=opencv"
        )
        self.assertIn("4 finished shards verified and skipped", rerun.stderr)
        # The record says what computed the shards, not what the rerun asked.
        self.assertEqual(schema.read_metadata(output)["flow"]["backend"], "opencv")
        rebuilt = "train-00000-of-00002.tfrecord"
        os.remove(os.path.join(output, rebuilt))
        self._prepare(
            "data", "--workers=1", "--flow_backend=keras", "--flow_preset=opencv"
        )
        flow = schema.read_metadata(output)["flow"]
        self.assertEqual(flow["backend"], "mixed")
        self.assertEqual(flow["shard_backends"].pop(rebuilt), "keras")
        self.assertEqual(set(flow["shard_backends"].values()), {"opencv"})
        result = prepare_test._run(  # pylint: disable=protected-access
            *self.args,
            f"--output_dir={output}",
            "--flow_backend=keras",
            "--flow_preset=opencv_cuda",
        )
        self.assertEqual(result.returncode, 1)
        self.assertRegex(
            result.stderr.strip().splitlines()[-1],
            r"other settings \(options.flow_preset: .opencv. -> .opencv_cuda.\)",
        )
        with open(os.path.join(output, schema.METADATA_FILE), encoding="utf-8") as f:
            self.assertEqual(json.load(f)["flow"]["preset"], "opencv")

    @pytest.mark.slow
    def test_the_default_is_the_release_flow_computed_by_keras(self):
        output, _ = self._prepare("default", "--workers=1")
        flow = schema.read_metadata(output)["flow"]
        self.assertEqual(
            (flow["preset"], flow["backend"], flow["frame_size"]),
            ("release", "keras", "stored"),
        )
        planes = _stored_flow(output)
        self.assertLen(planes, 4)
        # The fixture's texture moves 2 px left a frame: stored below 128.
        self.assertLess(np.mean([p[0].mean() for p in planes.values()]), 124)

    @pytest.mark.slow
    def test_opencv_cannot_compute_the_cuda_family(self):
        result = prepare_test._run(  # pylint: disable=protected-access
            *self.args,
            f"--output_dir={os.path.join(self.tmp, 'x')}",
            "--flow_backend=opencv",
            "--flow_preset=opencv_cuda",
        )
        self.assertEqual(result.returncode, 1)
        self.assertIn("--flow_backend=keras", result.stderr.strip().splitlines()[-1])

    def test_another_family_is_named(self):
        with self.assertRaisesRegex(ValueError, r"x: its flow is .*opencv_cuda"):
            schema.check_flow_family(
                {"preset": "opencv"}, {"preset": "opencv_cuda"}, what="x"
            )


if __name__ == "__main__":
    absltest.main()
