"""VideoLSTM and STFN through the same commands as ActionVLAD: train,
evaluate, export.

`experiment.train` (what `python -m avlad_tf.train` runs) on tiny fake data,
both stages, evaluation, late fusion and the SavedModel, for VideoLSTM's
appearance attention in two late-fused streams, and as one `fused` stream
for the models that read both streams: VideoLSTM's motion attention and
STFN's fusion blocks. The SavedModel's descriptors must be the Keras
model's.
"""

import os

from absl.testing import absltest
from absl.testing import parameterized
import gin
import keras
import numpy as np
import pytest
import tensorflow as tf

from avlad_tf import run_record
from avlad_tf.data import preprocessing
from avlad_tf.models import inspection
from avlad_tf.training import experiment
from avlad_tf.visualization import inference
from tests import testing
from tests.training import tiny

VIDEOLSTM = (
    "build_model.pooling = 'videolstm'\n"
    "recurrent_pooling.per_step_loss = 'softmax'\n"
    "train_stream.stage_steps = (1, 1)\n"
)
MOTION_ATTENTION = VIDEOLSTM + "build_model.fusion = 'motion_attention'\n"
STFN = (
    "build_model.pooling = 'res_inception'\n"
    "build_model.fusion = 'stfn'\n"
    "train_stream.stage_steps = (1, 1)\n"
)
# tests/training/tiny.py: 2 frames, 16 px crops of 20 x 24 frames, 2 flow
# pairs per stack.
NUM_FRAMES, IMAGE_SIZE, RESIZE_TO, CHANNELS = 2, 16, (20, 24), {"rgb": 3, "flow": 4}


class RunAndServe:
    """Mixed into a test case: tiny data, `experiment.train`, and the check
    that the export serves the trained models."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = testing.class_tempdir(cls)
        cls.data_dir = tiny.write_data(os.path.join(cls.root, "data"))

    def tearDown(self):
        gin.clear_config()
        super().tearDown()

    def run_experiment(self, name, bindings, streams, fuse_weights=None):
        tiny.configure(bindings)
        workdir = os.path.join(self.root, name)
        outcome = experiment.train(
            workdir=workdir,
            data_dir=self.data_dir,
            streams=streams,
            evaluate_split="test",
            fuse_weights=fuse_weights,
            export=True,
        )
        for stream in streams:
            self.assertEqual(outcome[stream]["num_videos"], 4)
            self.assertTrue(0.0 <= outcome[stream]["top1"] <= 1.0)
        return workdir, outcome

    def assert_export_serves_the_models(self, workdir, export_dir, streams):
        """serving_default's descriptors are the Keras models' on the same
        evaluation crops (uint8 videos in, the stored layout)."""
        rng = np.random.default_rng(0)
        videos = {
            m: rng.integers(0, 256, (2, NUM_FRAMES, *RESIZE_TO, c), np.uint8)
            for m, c in CHANNELS.items()
            if m in streams or "fused" in streams
        }
        serve = tf.saved_model.load(export_dir).signatures["serving_default"]
        outputs = serve(**{m: tf.constant(v) for m, v in videos.items()})
        self.assertEqual(tuple(outputs["logits"].shape), (2, 3))
        self.assertTrue(np.all(np.isfinite(outputs["logits"].numpy())))
        crops = {
            m: np.stack(
                [
                    preprocessing.preprocess_for_eval(
                        v, modality=m, image_size=IMAGE_SIZE, resize_to=RESIZE_TO
                    )
                    for v in vs
                ]
            )
            for m, vs in videos.items()
        }
        for stream in streams:
            model = inference.load_model(os.path.join(workdir, stream, "model.keras"))
            ends = inspection.endpoints_model(model)
            names = inspection.input_names(model)
            expected = ends({n: crops[n] for n in names}, training=False)
            # Late fusion prefixes each stream's descriptor with its name.
            key = f"{stream}_descriptor" if len(streams) > 1 else "descriptor"
            np.testing.assert_allclose(
                outputs[key].numpy(),
                keras.ops.convert_to_numpy(expected["descriptor"]),
                atol=1e-5,
                err_msg=stream,
            )


class VideoLSTMRunTest(RunAndServe, parameterized.TestCase):
    @pytest.mark.slow
    def test_late_fused_streams_train_evaluate_and_export(self):
        workdir, outcome = self.run_experiment(
            "late", VIDEOLSTM, ("rgb", "flow"), fuse_weights=(1, 2)
        )
        self.assertIn("late_fusion", outcome)
        # The aggregator's own settings are recorded with build_model's.
        training = run_record.read(workdir)["streams"]["rgb"]["training"]
        self.assertEqual(
            training["recurrent_pooling"],
            {"per_step_loss": "softmax", "frame_pooling": "mean"},
        )
        self.assert_export_serves_the_models(
            workdir, outcome["export_dir"], ("rgb", "flow")
        )
        # The visualiser's maps over the test split, like the assignments.
        model = inference.load_model(os.path.join(workdir, "rgb", "model.keras"))
        result = inference.attention(
            model, data_dir=self.data_dir, split="test", num_videos=3
        )
        self.assertEqual(result["attention"].shape, (3, NUM_FRAMES, 2, 2))
        np.testing.assert_allclose(result["attention"].sum(axis=(2, 3)), 1.0, atol=1e-5)

    @parameterized.named_parameters(
        ("motion_attention", MOTION_ATTENTION, {"attention": "motion"}),
        ("stfn", STFN, {"num_blocks": 2, "direction": "bi", "fusion_op": "avg"}),
    )
    @pytest.mark.slow
    def test_both_streams_in_one_model_train_as_the_fused_stream(
        self, bindings, pool_config
    ):
        workdir, outcome = self.run_experiment(
            self._testMethodName, bindings, ("fused",)
        )
        model = inference.load_model(os.path.join(workdir, "fused", "model.keras"))
        config = inspection.pooling_layer(model).get_config()
        self.assertEqual({k: config[k] for k in pool_config}, pool_config)
        training = run_record.read(workdir)["streams"]["fused"]["training"]
        if "num_blocks" in pool_config:
            self.assertEqual(training["stfn_fusion"], pool_config)
        self.assert_export_serves_the_models(workdir, outcome["export_dir"], ("fused",))


if __name__ == "__main__":
    absltest.main()
