"""The flow stream starts as the release's did: from its two-stream flow VGG-16.

A checkpoint in the release's format (TF1 Saver, slim names, Adam slots, a
51-way fc8) at the release's path (`hmdb51/flow/split1.ckpt`) goes through
`python -m avlad_tf.import_release --backbone_weights`, and the file it
writes is what `flow/build_model.weights` takes in a gin config; it records
the split the checkpoint was fine-tuned on (`models.initial_weights`).
"""

import os
import subprocess
import sys

from absl.testing import absltest
import gin
import numpy as np
import pytest

from avlad_tf import cli
from avlad_tf.models import action_vlad
from avlad_tf.models import initial_weights
from avlad_tf.release import backbone_weights
from tests import testing
from tests.release import release_checkpoints as ckpts

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLOW_STACK = 10


@pytest.mark.slow
class BackboneWeightsTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = testing.class_tempdir(cls)
        rng = np.random.default_rng(4)
        cls.variables = ckpts.vgg16_variables(rng, input_channels=2 * FLOW_STACK)
        cls.variables["vgg_16/fc8/weights"] = rng.normal(
            0, 0.01, (1, 1, 4096, 51)
        ).astype(np.float32)
        cls.variables["vgg_16/fc8/biases"] = np.zeros(51, np.float32)
        # The release's layout: 2-stream-pretrained/<dataset>/flow/split<k>.
        release_dir = os.path.join(cls.dir, "2-stream-pretrained", "hmdb51", "flow")
        os.makedirs(release_dir)
        cls.checkpoint = ckpts.write(
            os.path.join(release_dir, "split1.ckpt"),
            dict(
                cls.variables,
                **ckpts.adam_bookkeeping(
                    {k: v for k, v in cls.variables.items() if "conv1_1" in k}
                ),
            ),
        )
        cls.output = os.path.join(cls.dir, "flow_vgg16.weights.h5")
        cls.command = subprocess.run(
            [
                sys.executable,
                "-m",
                "avlad_tf.import_release",
                "--backbone_weights",
                f"--checkpoint={cls.checkpoint}",
                f"--output={cls.output}",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
            timeout=300,
        )

    def setUp(self):
        super().setUp()
        gin.clear_config()
        self.addCleanup(gin.clear_config)

    def test_command_writes_the_weights_file(self):
        self.assertEqual(self.command.returncode, 0, self.command.stderr[-2000:])
        self.assertIn("conv1_1 takes 20 channels", self.command.stdout)
        self.assertIn("fine-tuned on hmdb51 train_split1", self.command.stdout)
        self.assertTrue(os.path.isfile(self.output))

    def test_weights_file_records_the_split(self):
        self.assertEqual(self.command.returncode, 0, self.command.stderr[-2000:])
        self.assertEqual(
            initial_weights.training_split(self.output),
            {"dataset": "hmdb51", "train_split": "train_split1"},
        )

    def test_explicit_split_and_dataset_override_the_path(self):
        output = os.path.join(self.dir, "explicit.weights.h5")
        backbone_weights.write_vgg16_weights(
            self.checkpoint, output, dataset="ucf101", split=3
        )
        self.assertEqual(
            initial_weights.training_split(output),
            {"dataset": "ucf101", "train_split": "train_split3"},
        )
        # An older script's name for the same network.
        self.assertEqual(
            backbone_weights.release_training_split(
                "2-stream-pretrained/hmdb51/flow_split1.ckpt"
            ),
            {"dataset": "hmdb51", "train_split": "train_split1"},
        )

    def test_flow_build_model_weights_starts_from_the_checkpoint(self):
        self.assertEqual(self.command.returncode, 0, self.command.stderr[-2000:])
        cli.parse_gin(
            [],
            [
                f"flow/build_model.weights = '{self.output}'",
                f"build_model.flow_stack = {FLOW_STACK}",
                "build_model.image_size = 32",
            ],
        )
        # As train_stream builds it: the gin-configured factory in the
        # stream's scope.
        with gin.config_scope("flow"):
            model = action_vlad.build_model(num_classes=3, modality="flow")
        backbone = model.get_layer("flow_backbone")
        for block, num_convs, _ in ckpts.VGG16_BLOCKS:
            for index in range(1, num_convs + 1):
                layer = backbone.get_layer(f"block{block}_conv{index}")
                scope = f"vgg_16/conv{block}/conv{block}_{index}"
                np.testing.assert_array_equal(
                    layer.kernel.numpy(), self.variables[f"{scope}/weights"]
                )
                np.testing.assert_array_equal(
                    layer.bias.numpy(), self.variables[f"{scope}/biases"]
                )

    def test_top_needs_fc_layers(self):
        with self.assertRaisesRegex(ValueError, "no fc6 .*drop --include_top"):
            backbone_weights.write_vgg16_weights(
                self.checkpoint,
                os.path.join(self.dir, "top.weights.h5"),
                include_top=True,
            )

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, r"must end in \.weights\.h5"):
            backbone_weights.write_vgg16_weights(self.checkpoint, "x.h5")
        other = ckpts.write(
            os.path.join(self.dir, "other.ckpt"),
            {"NetVLAD/centers": np.zeros((2, 4), np.float32)},
        )
        with self.assertRaisesRegex(ValueError, "not a release VGG-16"):
            backbone_weights.write_vgg16_weights(
                other, os.path.join(self.dir, "o.weights.h5")
            )


class ReleaseTrainingSplitTest(absltest.TestCase):
    """What a release checkpoint's path says it was fine-tuned on."""

    def test_release_paths(self):
        self.assertEqual(
            backbone_weights.release_training_split(
                "PreTrained/2-stream-pretrained/hmdb51/flow/split2.ckpt"
            ),
            {"dataset": "hmdb51", "train_split": "train_split2"},
        )
        self.assertEqual(
            backbone_weights.release_training_split(
                "ActionVLAD-pretrained/ucf101/rgb/split3.ckpt/"
            ),
            {"dataset": "ucf101", "train_split": "train_split3"},
        )

    def test_no_split(self):
        self.assertIsNone(
            backbone_weights.release_training_split(
                "imagenet-trained-CUHK/vgg_16_action_rgb_pretrain_uptoConv5.ckpt"
            )
        )

    def test_flags_give_what_the_path_does_not(self):
        self.assertEqual(
            backbone_weights.release_training_split(
                "flow_net.ckpt", dataset="hmdb51", split=1
            ),
            {"dataset": "hmdb51", "train_split": "train_split1"},
        )

    def test_split_without_dataset_is_refused(self):
        with self.assertRaisesRegex(
            ValueError, r"^copies/split2\.ckpt: fine-tuned on split 2, .*--dataset"
        ):
            backbone_weights.release_training_split("copies/split2.ckpt")


if __name__ == "__main__":
    absltest.main()
