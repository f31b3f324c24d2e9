"""End-to-end tests of `python -m avlad_tf.visualize` on tiny models.

A tiny ActionVLAD model per stream (its centres set to real descriptors, so
that several action words fire) is saved as WORKDIR/<stream>/model.keras and
run over `tests/fake_data.py` records; each sub-command must write a PNG of
the requested pixel size, and the numbers behind Fig. 8 must add up.
"""

import os
import subprocess
import sys

from absl.testing import absltest
import gin
import h5py
import keras
from matplotlib import image as mpimg
import numpy as np
import pytest
import tensorflow as tf

from avlad_tf import visualize
from avlad_tf.data import video_input
from avlad_tf.models import action_vlad
from avlad_tf.models import inspection
from avlad_tf.visualization import commands
from avlad_tf.visualization import comparisons
from tests import fake_data
from tests import fake_run
from tests import testing

_NUM_CLASSES = 3
_NUM_CLUSTERS = 4
_FLOW_STACK = 2
# The run's input settings (the record training writes).
_INPUT = dict(resize_to=(32, 40), num_frames=3, flow_stack=_FLOW_STACK, image_size=32)


def _save_stream_model(workdir, data_dir, modality):
    """A tiny model whose NetVLAD centres are descriptors of real frames."""
    keras.utils.set_random_seed(0)
    model = action_vlad.build_model(
        num_classes=_NUM_CLASSES,
        modality=modality,
        backbone="tiny",
        image_size=32,
        num_clusters=_NUM_CLUSTERS,
        flow_stack=_FLOW_STACK,
    )
    dataset = video_input.make_dataset(
        data_dir=data_dir,
        split="train",
        training=False,
        modalities=(modality,),
        batch_size=4,
        num_frames=3,
        image_size=32,
        resize_to=(32, 40),
        flow_stack=_FLOW_STACK,
    )
    features, _ = next(iter(dataset))
    descriptors = np.asarray(
        inspection.feature_model(model)({modality: features[modality]})
    ).reshape(-1, 16)
    picks = np.random.default_rng(0).choice(
        len(descriptors), _NUM_CLUSTERS, replace=False
    )
    centers = descriptors[picks]
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    inspection.pooling_layer(model).set_centers(centers)
    os.makedirs(os.path.join(workdir, modality))
    model.save(os.path.join(workdir, modality, "model.keras"))


class VisualizeTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        root = testing.class_tempdir(cls)
        cls.data_dir = fake_data.write_fake_dataset(
            os.path.join(root, "vis_data"),
            num_videos=4,
            num_classes=_NUM_CLASSES,
            content="pattern",
        )
        cls.workdir = os.path.join(root, "vis_workdir")
        for modality in ("rgb", "flow"):
            _save_stream_model(cls.workdir, cls.data_dir, modality)
        gin.clear_config()
        fake_run.write_record(cls.workdir, data_dir=cls.data_dir, input_settings=_INPUT)

    def setUp(self):
        super().setUp()
        gin.clear_config()
        self.addCleanup(gin.clear_config)
        self.out_dir = self.create_tempdir().full_path

    def _run(self, *argv, data=True):
        out = os.path.join(self.out_dir, f"{argv[0]}.png")
        argv = list(argv) + [f"--out={out}"]
        if data:  # dataset and input settings come from the run record
            argv += [f"--workdir={self.workdir}"]
        path = visualize.run(visualize.make_parser().parse_args(argv))
        self.assertEqual(path, out)
        self.assertGreater(os.path.getsize(path), 1000)
        return mpimg.imread(path).shape[:2]

    def test_attention_of_a_videolstm_model(self):
        workdir = os.path.join(self.out_dir, "videolstm_run")
        keras.utils.set_random_seed(0)
        model = action_vlad.build_model(
            num_classes=_NUM_CLASSES,
            backbone="tiny",
            image_size=32,
            pooling="videolstm",
        )
        os.makedirs(os.path.join(workdir, "rgb"))
        model.save(os.path.join(workdir, "rgb", "model.keras"))
        fake_run.write_record(workdir, data_dir=self.data_dir, input_settings=_INPUT)
        self.assertEqual(
            self._run(
                "attention",
                f"--workdir={workdir}",
                "--max_frames=3",
                "--height_px=250",
                data=False,
            ),
            (250, 1200),
        )
        with self.assertRaisesRegex(ValueError, "no attention maps"):
            self._run("attention")  # the ActionVLAD run

    def test_action_words(self):
        self.assertEqual(
            self._run("action_words", "--clusters=0,1", "--width_px=900"),
            (60 + 180 * 2, 900),
        )

    def test_assignment_over_time(self):
        self.assertEqual(
            self._run(
                "assignment_over_time",
                "--video_id=test/video2",
                "--clusters=0,2",
                "--width_px=800",
                "--height_px=400",
            ),
            (400, 800),
        )
        with self.assertRaisesRegex(ValueError, "test/nope.*not in split"):
            self._run("assignment_over_time", "--video_id=test/nope")
        with self.assertRaisesRegex(ValueError, r"clusters \[7\] do not exist"):
            self._run("assignment_over_time", "--clusters=1,7")

    @pytest.mark.slow
    def test_top_words_contributions_add_up_to_the_logit(self):
        self.assertEqual(
            self._run("top_words", "--stream=flow", "--height_px=500"), (500, 1200)
        )
        model_path = os.path.join(self.workdir, "rgb", "model.keras")
        out = os.path.join(self.out_dir, "top.png")
        _, contributions, class_index = commands.top_words(
            model_path=model_path,
            out=out,
            video_id="test/video1",
            class_name="class_02",
            split="test",
        )
        self.assertEqual(class_index, 2)
        self.assertEqual(contributions.shape, (_NUM_CLUSTERS,))
        model = keras.saving.load_model(model_path)
        features, _ = next(
            iter(
                video_input.make_dataset(
                    data_dir=self.data_dir,
                    split="test",
                    training=False,
                    modalities=("rgb",),
                    batch_size=2,
                    **_INPUT,
                )
            )
        )
        logits = np.asarray(model({"rgb": features["rgb"]}))[1]
        bias = model.get_layer("logits").get_weights()[1]
        self.assertAlmostEqual(contributions.sum() + bias[2], logits[2], places=4)
        with self.assertRaisesRegex(ValueError, "unknown class 'fly'"):
            commands.top_words(
                model_path=model_path, out=out, class_name="fly", data_dir=self.data_dir
            )

    @pytest.mark.slow
    def test_tsne_per_model_and_joint(self):
        common = [
            "--stream=rgb",
            "--stream=flow",
            "--num_videos=4",
            "--points_per_video=12",
            "--num_iters=250",
        ]
        self.assertEqual(self._run("tsne", *common), (500, 1000))
        self.assertEqual(
            self._run("tsne", *common, "--joint", "--width_px=500"), (500, 500)
        )

    def test_confusion_diff(self):
        paths = []
        for name, predictions in (("a", [0, 0, 0, 0]), ("b", [0, 1, 2, 1])):
            paths.append(os.path.join(self.out_dir, f"{name}.h5"))
            with h5py.File(paths[-1], "w") as f:
                f["stream0/logits"] = np.eye(_NUM_CLASSES)[predictions]
                f["video_ids"] = [f"test/video{v}".encode() for v in range(4)]
        # No labels in the files: the ground truth comes from the records
        # (video v has class v % 3), names from DATA_DIR/labels.txt.
        self.assertEqual(
            self._run(
                "confusion_diff",
                f"--scores_a={paths[0]}",
                f"--scores_b={paths[1]}",
                f"--data_dir={self.data_dir}",
                data=False,
            ),
            (700, 1000),
        )
        _, gained, lost = comparisons.confusion_diff(
            scores_a=paths[0],
            scores_b=paths[1],
            data_dir=self.data_dir,
            out=os.path.join(self.out_dir, "d.png"),
        )
        self.assertEqual(gained, [("class_01", 1.0), ("class_02", 1.0)])
        self.assertEqual(lost, [("class_00", -0.5)])

    @pytest.mark.slow
    def test_curves_entry_point(self):
        workdir = self.create_tempdir().full_path
        writer = tf.summary.create_file_writer(
            os.path.join(workdir, "tensorboard", "rgb")
        )
        with writer.as_default():
            for step in range(3):
                tf.summary.scalar("train/loss", 2.0 - step, step=step)
        writer.close()
        out = os.path.join(self.out_dir, "curves.png")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "avlad_tf.visualize",
                "curves",
                f"--workdir={workdir}",
                f"--out={out}",
                "--width_px=640",
                "--height_px=320",
            ],
            check=True,
            capture_output=True,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        )
        self.assertEqual(mpimg.imread(out).shape[:2], (320, 640))


if __name__ == "__main__":
    absltest.main()
