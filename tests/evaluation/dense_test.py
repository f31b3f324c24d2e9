"""Dense evaluation (`evaluate.frames='all'`): every n-th frame through
the backbone in chunks, pooled by the running state."""

import os

from absl.testing import absltest
from absl.testing import parameterized
import gin
import numpy as np
import pytest

from avlad_tf.evaluation import score_files
from avlad_tf.evaluation import scoring
from tests import fake_data
from tests import fake_run
from tests import testing

NUM_CLASSES = 3
NUM_VIDEOS = 4
# With T = 4 and L = 2 (fake_run.SMALL_INPUT), the release samples RGB frames
# 0, 8, 16, 24 and flow stacks from 0, 6, 12, 18 of a 26-frame video: every
# 8th frame and every 6th stack start, which dense evaluation can reproduce.
NUM_FRAMES = 26
STRIDES = {"rgb": 8, "flow": 6}


class DenseEvaluationTest(parameterized.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        root = testing.class_tempdir(cls)
        data_dir = fake_data.write_fake_dataset(
            os.path.join(root, "data"),
            num_videos=NUM_VIDEOS,
            num_frames=NUM_FRAMES,
            num_classes=NUM_CLASSES,
        )
        gin.clear_config()
        cls.workdir = os.path.join(root, "work")
        for stream in ("rgb", "flow"):
            fake_run.save_model(cls.workdir, stream, num_classes=NUM_CLASSES)
        fake_run.write_record(cls.workdir, data_dir=data_dir, num_crops={"flow": 5})

    @parameterized.parameters("rgb", "flow")
    @pytest.mark.slow
    def test_the_sampled_frames_read_densely_give_the_sampled_scores(self, stream):
        sampled = scoring.evaluate(workdir=self.workdir, stream=stream)
        for chunk_frames in (1, 3):
            dense = scoring.evaluate(
                workdir=self.workdir,
                stream=stream,
                frames="all",
                frame_stride=STRIDES[stream],
                chunk_frames=chunk_frames,
            )
            expected, ids, labels = score_files.read_scores(sampled["scores_path"])
            logits, dense_ids, dense_labels = score_files.read_scores(
                dense["scores_path"]
            )
            self.assertEqual(dense_ids, ids)
            np.testing.assert_array_equal(dense_labels, labels)
            np.testing.assert_allclose(logits, expected, atol=1e-4)
        self.assertTrue(dense["scores_path"].endswith(f"crop_all{STRIDES[stream]}.h5"))

    def test_every_frame(self):
        result = scoring.evaluate(
            workdir=self.workdir, stream="flow", frames="all", chunk_frames=7
        )
        self.assertEqual(result["frames"], "all")
        self.assertTrue(result["scores_path"].endswith("flow_test_5crop_all.h5"))
        logits, ids, _ = score_files.read_scores(result["scores_path"])
        self.assertEqual(logits.shape, (NUM_VIDEOS, NUM_CLASSES))
        self.assertTrue(np.isfinite(logits).all())
        self.assertIn("all frames", scoring.format_result(result))

    def test_a_number_of_frames_is_refused_with_the_switches(self):
        # `frames` says which frames; T is make_dataset.num_frames, recorded.
        with self.assertRaisesRegex(ValueError, "'sampled' .* or 'all'.*frame_stride"):
            scoring.evaluate(workdir=self.workdir, stream="rgb", frames=25)


if __name__ == "__main__":
    absltest.main()
