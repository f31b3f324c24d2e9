"""NetRVLAD, GhostVLAD and NeXtVLAD through the same commands as ActionVLAD.

`experiment.train` (what `python -m avlad_tf.train` runs) on tiny fake data:
k-means (NetRVLAD, GhostVLAD) or training from stage 1 (NeXtVLAD), both
stages, evaluation, and the SavedModel, whose streaming signatures classify a
video chunk by chunk as `serving_default` does whole.
"""

import os

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import pytest
import tensorflow as tf

from avlad_tf import run_record
from avlad_tf.models import inspection
from avlad_tf.training import experiment
from avlad_tf.training import kmeans_init
from avlad_tf.visualization import inference
from tests import testing
from tests.training import tiny


class VLADFamilyRunTest(parameterized.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = testing.class_tempdir(cls)
        cls.data_dir = tiny.write_data(os.path.join(cls.root, "data"))

    @parameterized.named_parameters(
        ("netrvlad", "build_model.pooling = 'netrvlad'\n", {}),
        (
            "ghostvlad",
            "build_model.pooling = 'ghostvlad'\n"
            "ghostvlad_pooling.num_ghost_clusters = 2\n",
            {"ghostvlad_pooling": {"num_ghost_clusters": 2}},
        ),
        (
            "nextvlad_gated",
            "build_model.pooling = 'nextvlad'\n"
            "nextvlad_pooling.groups = 4\n"
            "context_gating.enabled = True\n",
            {
                "nextvlad_pooling": {"expansion": 2, "groups": 4},
                "context_gating": {"enabled": True},
                # It starts random: its schedule is recorded (unbound here).
                "from_scratch_schedule": {"learning_rates": None, "decay_steps": None},
            },
        ),
    )
    @pytest.mark.slow
    def test_trains_evaluates_exports_and_streams(self, bindings, recorded):
        tiny.configure(bindings + "train_stream.stage_steps = (1, 1)\n")
        self.addCleanup(tiny.configure)
        workdir = os.path.join(self.root, self._testMethodName)
        outcome = experiment.train(
            workdir=workdir,
            data_dir=self.data_dir,
            streams=("rgb",),
            evaluate_split="test",
            export=True,
        )
        self.assertEqual(outcome["rgb"]["num_videos"], 4)
        training = run_record.read(workdir)["streams"]["rgb"]["training"]
        for name, values in recorded.items():
            self.assertEqual(training[name], values)
        model = inference.load_model(os.path.join(workdir, "rgb", "model.keras"))
        pool = inspection.pooling_layer(model)
        # k-means initialised the layers that take centres, and only those.
        centers = os.path.join(workdir, "rgb", kmeans_init.CENTERS_FILE)
        self.assertEqual(os.path.exists(centers), hasattr(pool, "set_centers"))
        self.assert_streaming_serves_as_whole(outcome["export_dir"])

    def assert_streaming_serves_as_whole(self, export_dir):
        loaded = tf.saved_model.load(export_dir)
        # Two frames, the tiny run's T: serving_default samples both.
        video = np.random.default_rng(1).integers(0, 256, (1, 2, 20, 24, 3), np.uint8)
        whole = loaded.signatures["serving_default"](rgb=tf.constant(video))
        state = loaded.signatures["streaming_start"](batch_size=tf.constant(1))
        for chunk in (video[:, :1], video[:, 1:]):
            state = loaded.signatures["streaming_feed"](
                **state,
                rgb=tf.constant(chunk),
                mask=tf.ones((1, 1), tf.float32),
            )
        streamed = loaded.signatures["streaming_finish"](**state)
        self.assertTrue(np.all(np.isfinite(whole["logits"].numpy())))
        np.testing.assert_allclose(
            streamed["logits"].numpy(), whole["logits"].numpy(), atol=1e-4
        )


if __name__ == "__main__":
    absltest.main()
