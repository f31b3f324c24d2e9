"""C3D and slow fusion through the same commands as VGG16: train (both
stages, k-means), evaluate, export and predict, under ActionVLAD and alone
(their own classifier through the two-stream pooling), on tiny fake data
with the tiny stand-ins (docs/CLIP_MODELS.md)."""

import os

from absl.testing import absltest
import keras
import numpy as np
import pytest
import tensorflow as tf

from avlad_tf.data import manifest
from avlad_tf.data import preprocessing
from avlad_tf.data import sampling
from avlad_tf.evaluation import score_files
from avlad_tf.evaluation import scoring
from avlad_tf.models import inspection
from avlad_tf.serving import prediction
from avlad_tf.visualization import inference
from tests.models import aggregators_run_test
from tests.serving import prediction_test

C3D = """
build_model.backbone = 'tiny_c3d'
make_dataset.num_frames = 4
"""
# Contiguous clips of 4 frames, 2 at test, each through C3D alone.
C3D_CLIPS = (
    C3D
    + """
make_dataset.sampling_mode = 'clips'
make_dataset.clip_stride = 2
make_dataset.num_clips = 2
build_model.clip_length = 4
"""
)
# Karpathy et al.'s networks read 32 px or more, slow fusion 10 frames.
SLOW_FUSION_ALONE = """
build_model.backbone = 'tiny_slow_fusion'
build_model.endpoint = 'fc7'
build_model.pooling = 'two_stream'
build_model.image_size = 32
make_dataset.num_frames = 10
make_dataset.image_size = 32
make_dataset.resize_to = (36, 44)
"""
CHANNELS = {"rgb": 3, "flow": 4}


class ClipModelsRunTest(aggregators_run_test.RunAndServe, absltest.TestCase):
    def assert_export_serves(self, workdir, outcome, streams, *, frames, crop, size):
        """The export is whole-video, 1 crop, and its descriptors are the
        Keras models' on the evaluation crops; predict ranks a video."""
        export_dir = outcome["export_dir"]
        config = prediction.read_config(export_dir)
        self.assertFalse(config["streaming"])
        self.assertEqual(config["num_crops"], dict.fromkeys(streams, 1))
        rng = np.random.default_rng(0)
        videos = {
            m: rng.integers(0, 256, (2, frames, *size, CHANNELS[m]), np.uint8)
            for m in streams
        }
        serve = tf.saved_model.load(export_dir).signatures["serving_default"]
        outputs = serve(**{m: tf.constant(v) for m, v in videos.items()})
        for stream in streams:
            crops = np.stack(
                [
                    preprocessing.preprocess_for_eval(
                        v, modality=stream, image_size=crop, resize_to=size
                    )
                    for v in videos[stream]
                ]
            )
            model = inference.load_model(os.path.join(workdir, stream, "model.keras"))
            expected = inspection.endpoints_model(model)({stream: crops})
            key = f"{stream}_descriptor" if len(streams) > 1 else "descriptor"
            np.testing.assert_allclose(
                outputs[key].numpy(),
                keras.ops.convert_to_numpy(expected["descriptor"]),
                atol=1e-5,
                err_msg=stream,
            )
        video = os.path.join(self.create_tempdir().full_path, "walk.avi")
        (result,) = prediction.predict_videos(
            export_dir, [prediction_test.write_video(video, 20)]
        )
        self.assertLen(result["top5"], 3)  # the fake data's 3 classes

    @pytest.mark.slow
    def test_c3d_under_actionvlad_both_streams_late_fused(self):
        streams = ("rgb", "flow")
        workdir, outcome = self.run_experiment("c3d", C3D, streams, fuse_weights=(1, 2))
        self.assertIn("late_fusion", outcome)
        self.assert_export_serves(
            workdir, outcome, streams, frames=4, crop=16, size=(20, 24)
        )

    @pytest.mark.slow
    def test_slow_fusion_alone(self):
        workdir, outcome = self.run_experiment("slow", SLOW_FUSION_ALONE, ("rgb",))
        self.assert_export_serves(
            workdir, outcome, ("rgb",), frames=10, crop=32, size=(36, 44)
        )
        with self.assertRaisesRegex(ValueError, "with 1 crop"):
            scoring.evaluate(workdir=workdir, stream="rgb", num_crops=5)

    @pytest.mark.slow
    def test_c3d_clips_evaluate_export_and_predict_sample_alike(self):
        workdir, outcome = self.run_experiment("c3d_clips", C3D_CLIPS, ("rgb",))
        config = prediction.read_config(outcome["export_dir"])
        self.assertEqual((config["clip_stride"], config["num_clips"]), (2, 2))
        indices = prediction.sample_indices(20, config)["rgb"]
        expected = sampling.rgb_indices(
            20, num_samples=4, sampling="clips", clip_stride=2, num_clips=2
        )
        np.testing.assert_array_equal(indices, expected.numpy())  # [0..6, 13..19]
        self.assert_export_serves(
            workdir, outcome, ("rgb",), frames=8, crop=16, size=(20, 24)
        )
        # The export's record signature samples the clips evaluate read.
        files, _ = manifest.split_shards(
            manifest.dataset_info(self.data_dir), self.data_dir, "test"
        )
        records = [r.numpy() for r in tf.data.TFRecordDataset(files)]
        serve = tf.saved_model.load(outcome["export_dir"])
        served = serve.signatures["serialized_examples"](examples=tf.constant(records))
        scores = score_files.read_scores(outcome["rgb"]["scores_path"])
        order = [scores.video_ids.index(v.decode()) for v in served["video_id"].numpy()]
        np.testing.assert_allclose(
            served["logits"].numpy(), scores.logits[order], atol=1e-4
        )


if __name__ == "__main__":
    absltest.main()
