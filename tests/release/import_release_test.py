"""Tests for `avlad_tf.release.workdir` and its program `import_release`:
release checkpoint -> evaluable workdir."""

import contextlib
import io
import os
import shutil
import tempfile

from absl import flags
from absl.testing import absltest
import keras
import numpy as np
import pytest

from avlad_tf import import_release
from avlad_tf import run_record
from avlad_tf.evaluation import scoring
from avlad_tf.models import action_vlad
from avlad_tf.release import importer
from avlad_tf.release import workdir as release_workdir
from tests import fake_data
from tests.release import release_checkpoints as ckpts

_NUM_CLASSES = 3  # the fake dataset's class_00 .. class_02
_IMAGE_SIZE = 32


@pytest.mark.slow
class ImportReleaseTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = tempfile.mkdtemp()
        rng = np.random.default_rng(2)
        variables = ckpts.vgg16_variables(rng)
        variables.update(
            ckpts.head_variables(
                rng, num_clusters=4, depth=512, num_classes=_NUM_CLASSES
            )
        )
        cls.checkpoint = ckpts.write(
            os.path.join(cls.dir, "split1.ckpt"),
            ckpts.with_prefix(variables, "stream0/"),
            version="V1",
        )
        cls.data_dir = fake_data.write_fake_dataset(
            os.path.join(cls.dir, "data"), num_classes=_NUM_CLASSES
        )
        # The release's class order differs from the dataset's sorted order.
        cls.release_labels = os.path.join(cls.dir, "classInd.txt")
        with open(cls.release_labels, "w") as f:
            f.write("1 class_02\n2 class_00\n3 class_01\n")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir)
        super().tearDownClass()

    def test_workdir_is_evaluable_and_classes_follow_dataset(self):
        workdir = os.path.join(self.dir, "workdir")
        output = os.path.join(workdir, "rgb", "model.keras")
        report = release_workdir.import_release(
            checkpoint=self.checkpoint,
            modality="rgb",
            output=output,
            num_classes=_NUM_CLASSES,
            labels=self.release_labels,
            data_dir=self.data_dir,
            image_size=_IMAGE_SIZE,
            train_split="train_split1",
        )
        self.assertEqual(report.unset, [])
        with open(os.path.join(workdir, "labels.txt")) as f:
            self.assertEqual(f.read().split(), ["class_00", "class_01", "class_02"])
        with open(os.path.join(workdir, "rgb", "import_report.txt")) as f:
            self.assertIn("31 weights imported", f.read())

        # Column j of the saved model is the release's class of that name.
        direct = action_vlad.build_model(
            num_classes=_NUM_CLASSES,
            backbone="vgg16",
            num_clusters=4,
            image_size=_IMAGE_SIZE,
        )
        importer.import_checkpoint(direct, self.checkpoint)
        loaded = scoring.load_stream_model(workdir, "rgb")
        video = (
            np.random.default_rng(0)
            .normal(0, 50, (2, 2, _IMAGE_SIZE, _IMAGE_SIZE, 3))
            .astype(np.float32)
        )
        np.testing.assert_allclose(
            loaded({"rgb": video}).numpy(),
            direct({"rgb": video}).numpy()[:, [1, 2, 0]],
            rtol=1e-5,
            atol=1e-5,
        )

        # Evaluation scores the imported model from its run record, which
        # holds the dataset and the release's input settings.
        record = run_record.read(workdir)
        self.assertEqual(record["streams"]["rgb"]["input"]["image_size"], _IMAGE_SIZE)
        self.assertEqual(record["data"]["data_dir"], os.path.abspath(self.data_dir))
        # The split the release fine-tuned it on.
        self.assertEqual(record["streams"]["rgb"]["train_split"], "train_split1")
        result = scoring.evaluate(workdir=workdir, stream="rgb", split="test")
        self.assertEqual(result["num_videos"], 3)
        self.assertTrue(os.path.exists(result["scores_path"]))

    def test_rejects_wrong_modality_and_class_count(self):
        output = os.path.join(self.dir, "bad", "flow", "model.keras")
        with self.assertRaisesRegex(ValueError, r"3 input channels.*flow"):
            release_workdir.import_release(
                checkpoint=self.checkpoint, modality="flow", output=output
            )
        with self.assertRaisesRegex(ValueError, "3 classes, not --num_classes=51"):
            release_workdir.import_release(
                checkpoint=self.checkpoint,
                modality="rgb",
                output=output,
                num_classes=51,
            )
        self.assertFalse(os.path.exists(output))

    def test_rejects_bn_inception_and_non_actionvlad_checkpoints(self):
        path = ckpts.write(
            os.path.join(self.dir, "charades.ckpt"),
            {
                "stream0/InceptionV2_TSN/conv1/7x7_s2/Conv/weights": np.zeros(
                    (7, 7, 3, 4), np.float32
                )
            },
        )
        with self.assertRaisesRegex(ValueError, "BN-Inception"):
            release_workdir.checkpoint_dims(path)
        path = ckpts.write(
            os.path.join(self.dir, "two_stream.ckpt"),
            {"vgg_16/conv1/conv1_1/weights": np.zeros((3, 3, 20, 4), np.float32)},
        )
        with self.assertRaisesRegex(
            ValueError,
            r"not a VGG-16 ActionVLAD checkpoint for stream "
            r"0: no \['NetVLAD/centers', 'classifier/logits/weights'\]",
        ):
            release_workdir.checkpoint_dims(path)

    def test_bundled_labels(self):
        hmdb = release_workdir.read_labels("hmdb51")
        self.assertLen(hmdb, 51)
        self.assertEqual(hmdb[:2], ["brush_hair", "cartwheel"])
        ucf = release_workdir.read_labels("ucf101")
        self.assertLen(ucf, 101)
        # The release orders UCF101 case-insensitively (classInd.txt).
        self.assertLess(ucf.index("Hammering"), ucf.index("HammerThrow"))

    def test_command_line(self):
        head = ckpts.head_variables(
            np.random.default_rng(3), num_clusters=2, depth=512, num_classes=4
        )
        head["vgg_16/conv1/conv1_1/weights"] = np.zeros((3, 3, 20, 64), np.float32)
        path = ckpts.write(os.path.join(self.dir, "flow_head.ckpt"), head)
        output = os.path.join(self.dir, "cli", "flow", "model.keras")
        argv = [
            "import_release",
            f"--checkpoint={path}",
            "--modality=flow",
            f"--output={output}",
            "--image_size=32",
        ]
        flag_values = flags.FlagValues()
        import_release.define_flags(flag_values)
        flag_values(argv)
        with self.assertRaisesRegex(ValueError, "does not provide 25 model weights"):
            import_release.main(["import_release"], flag_values)
        self.assertFalse(os.path.exists(output))
        flag_values(argv + ["--allow_incomplete"])
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            import_release.main(["import_release"], flag_values)
        self.assertIn("unset model weight: block1_conv2/kernel", stdout.getvalue())
        model = keras.saving.load_model(output)
        self.assertEqual(model.input["flow"].shape[-1], 20)
        self.assertEqual(model.output.shape[-1], 4)

    def test_flags_are_defined_only_for_the_program(self):
        # Other entry points (fuse) also define --output; importing this
        # module must not register flags globally.
        self.assertNotIn("checkpoint", flags.FLAGS)
        flag_values = flags.FlagValues()
        import_release.define_flags(flag_values)
        self.assertIn("allow_incomplete", flag_values)


if __name__ == "__main__":
    absltest.main()
