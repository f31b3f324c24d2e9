"""Tests for importing release checkpoints into avlad_tf models."""

import os
import shutil
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np

from avlad_tf.models import action_vlad
from avlad_tf.models import inspection
from avlad_tf.release import importer
from tests.release import release_checkpoints as ckpts

_NUM_CLUSTERS = 4
_NUM_CLASSES = 5
_DEPTH = 512  # VGG-16 conv5_3
_IMAGE_SIZE = 32  # conv5_3 is 2x2 here: a real VGG-16 at a tiny size
_NUM_FRAMES = 2


def _build(modality="rgb"):
    return action_vlad.build_model(
        num_classes=_NUM_CLASSES,
        modality=modality,
        backbone="vgg16",
        num_clusters=_NUM_CLUSTERS,
        image_size=_IMAGE_SIZE,
    )


def _l2n(x, axis):
    return x / np.sqrt(np.maximum(np.sum(x * x, axis, keepdims=True), 1e-12))


def numpy_head(features, variables):
    """The release's NetVLAD + linear classifier, written with loops.

    Args:
        features: `(B, T, h, w, D)` pre-ReLU conv5_3 features.
        variables: stream-relative checkpoint arrays (`NetVLAD/vlad_W` ...).
    """
    centers = variables["NetVLAD/centers"].astype(np.float64)
    kernel = variables["NetVLAD/vlad_W"][0, 0].astype(np.float64)  # (D, K)
    bias = variables["NetVLAD/vlad_B"].astype(np.float64)
    logits = []
    for video in features.astype(np.float64):
        x = _l2n(video.reshape(-1, video.shape[-1]), 1)  # (T·h·w, D)
        scores = x @ kernel + bias
        assign = np.exp(scores - scores.max(1, keepdims=True))
        assign /= assign.sum(1, keepdims=True)
        vlad = np.stack(
            [
                (assign[:, k : k + 1] * (x - centers[k])).sum(0)
                for k in range(len(centers))
            ]
        )  # (K, D)
        vlad = _l2n(_l2n(vlad, 1).reshape(-1), 0)  # (K·D,), cluster-major
        logits.append(
            vlad @ variables["classifier/logits/weights"]
            + variables["classifier/logits/biases"]
        )
    return np.stack(logits)


def numpy_conv3x3_relu(image, kernel, bias):
    """SAME 3x3 convolution + ReLU of one `(H, W, C)` image."""
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)))
    out = np.zeros(image.shape[:2] + (kernel.shape[-1],))
    for dy in range(3):
        for dx in range(3):
            window = padded[dy : dy + image.shape[0], dx : dx + image.shape[1]]
            out += window @ kernel[dy, dx]
    return np.maximum(out + bias, 0)


class ImporterEndToEndTest(parameterized.TestCase):
    """A full VGG-16 ActionVLAD checkpoint, imported and run."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = tempfile.mkdtemp()
        rng = np.random.default_rng(0)
        cls.variables = ckpts.vgg16_variables(rng)
        cls.variables.update(
            ckpts.head_variables(
                rng, num_clusters=_NUM_CLUSTERS, depth=_DEPTH, num_classes=_NUM_CLASSES
            )
        )
        cls.video = rng.normal(
            0, 60, (2, _NUM_FRAMES, _IMAGE_SIZE, _IMAGE_SIZE, 3)
        ).astype(np.float32)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir)
        super().tearDownClass()

    @parameterized.named_parameters(
        ("v2_stream0", "V2", "stream0/"),
        ("v1_no_prefix", "V1", ""),
    )
    def test_logits_match_numpy(self, version, prefix):
        variables = ckpts.with_prefix(self.variables, prefix)
        variables.update(
            ckpts.adam_bookkeeping(
                {k: v for k, v in variables.items() if "NetVLAD" in k}
            )
        )
        path = ckpts.write(
            os.path.join(self.dir, f"{version}.ckpt"), variables, version=version
        )
        if version == "V1":
            self.assertTrue(os.path.isfile(path))  # one file, no .index
            self.assertFalse(os.path.exists(path + ".index"))
        model = _build()
        report = importer.import_checkpoint(model, path, require_complete=True)
        self.assertEqual(report.unset, [])
        self.assertEqual(report.unused, [])
        self.assertLen(report.assigned, 26 + 3 + 2)
        self.assertIn(f"{prefix}NetVLAD/centers/Adam_1", report.skipped)
        self.assertIn("global_step", report.skipped)

        # Every imported weight equals its checkpoint value.
        backbone = inspection.find_layer(model, "rgb_backbone")
        for layer in backbone.layers:
            if layer.weights:
                block, conv = layer.name[5], layer.name[-1]
                scope = f"vgg_16/conv{block}/conv{block}_{conv}"
                np.testing.assert_array_equal(
                    layer.kernel.numpy(), self.variables[f"{scope}/weights"]
                )
                np.testing.assert_array_equal(
                    layer.bias.numpy(), self.variables[f"{scope}/biases"]
                )

        # conv1_1 in NumPy, on one frame.
        conv1 = keras.Model(backbone.input, backbone.get_layer("block1_conv1").output)
        frame = self.video[0, 0]
        np.testing.assert_allclose(
            conv1(frame[None]).numpy()[0],
            numpy_conv3x3_relu(
                frame,
                self.variables["vgg_16/conv1/conv1_1/weights"],
                self.variables["vgg_16/conv1/conv1_1/biases"],
            ),
            rtol=1e-4,
            atol=1e-3,
        )

        # NetVLAD + classifier in NumPy on the model's conv5_3 features.
        features = inspection.feature_model(model)({"rgb": self.video}).numpy()
        self.assertEqual(features.shape, (2, _NUM_FRAMES, 2, 2, _DEPTH))
        logits = model({"rgb": self.video}).numpy()
        expected = numpy_head(features, self.variables)
        np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
        # The assignment is soft and the logits are far from trivial.
        self.assertGreater(np.std(expected), 0.1)


class ImporterTest(parameterized.TestCase):
    """Naming styles, formats and reports on small partial checkpoints."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model = _build()
        cls.flow_model = _build("flow")

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.rng = np.random.default_rng(1)
        self.head = ckpts.head_variables(
            self.rng, num_clusters=_NUM_CLUSTERS, depth=_DEPTH, num_classes=_NUM_CLASSES
        )

    def _write(self, variables, version="V2", name="model.ckpt"):
        return ckpts.write(os.path.join(self.dir, name), variables, version=version)

    def _assert_head_imported(self, model):
        netvlad = inspection.find_layer(model, "netvlad")
        np.testing.assert_array_equal(
            netvlad.centers.numpy(), self.head["NetVLAD/centers"]
        )
        np.testing.assert_array_equal(
            netvlad.assignment_kernel.numpy(), self.head["NetVLAD/vlad_W"][0, 0]
        )
        np.testing.assert_array_equal(
            netvlad.assignment_bias.numpy(), self.head["NetVLAD/vlad_B"]
        )
        logits = inspection.find_layer(model, "logits")
        np.testing.assert_array_equal(
            logits.kernel.numpy(), self.head["classifier/logits/weights"]
        )
        np.testing.assert_array_equal(
            logits.bias.numpy(), self.head["classifier/logits/biases"]
        )

    @parameterized.product(version=("V1", "V2"), prefix=("", "stream0/"))
    def test_formats_and_naming_styles(self, version, prefix):
        path = self._write(ckpts.with_prefix(self.head, prefix), version)
        importer.import_checkpoint(self.model, path)
        self._assert_head_imported(self.model)

    def test_v2_file_names_and_directory_are_accepted(self):
        prefix = self._write(self.head)
        with open(os.path.join(self.dir, "checkpoint"), "w") as f:
            f.write('model_checkpoint_path: "model.ckpt"\n')
        for path in (
            prefix + ".index",
            prefix + ".meta",
            prefix + ".data-00000-of-00001",
            self.dir,
        ):
            report = importer.import_checkpoint(self.model, path)
            self.assertEqual(report.checkpoint, prefix)

    def test_report_lists_unused_skipped_and_unset(self):
        variables = ckpts.with_prefix(self.head, "stream0/")
        variables["stream0/vgg_16/fc8/weights"] = np.zeros((1, 1, 8, 5), np.float32)
        variables["stream1/NetVLAD/centers"] = np.zeros((3, 7), np.float32)
        variables["classifier/stream-pool-logits/biases"] = np.zeros(5, np.float32)
        variables.update(
            ckpts.adam_bookkeeping(
                {
                    "stream0/classifier/logits/biases": self.head[
                        "classifier/logits/biases"
                    ]
                }
            )
        )
        report = importer.import_checkpoint(self.model, self._write(variables))
        self.assertCountEqual(
            report.unused,
            [
                "stream0/vgg_16/fc8/weights",
                "stream1/NetVLAD/centers",
                "classifier/stream-pool-logits/biases",
            ],
        )
        self.assertCountEqual(
            report.skipped,
            [
                "global_step",
                "beta1_power",
                "beta2_power",
                "stream0/classifier/logits/biases/Adam",
                "stream0/classifier/logits/biases/Adam_1",
            ],
        )
        expected_unset = [
            w.path for w in self.model.weights if w.path.startswith("block")
        ]
        self.assertLen(expected_unset, 26)
        self.assertCountEqual(report.unset, expected_unset)
        summary = report.summary()
        self.assertIn("5 weights imported, 3 checkpoint variables unused", summary)
        self.assertIn("unset model weight: block1_conv1/kernel", summary)
        self.assertIn("unused checkpoint variable: stream1/NetVLAD/centers", summary)
        with self.assertRaisesRegex(ValueError, "does not provide 26 model"):
            importer.import_checkpoint(
                self.model, self._write(variables), require_complete=True
            )

    def test_other_stream_is_selected(self):
        variables = ckpts.with_prefix(self.head, "stream1/")
        variables.update(
            ckpts.with_prefix({k: v + 1 for k, v in self.head.items()}, "stream0/")
        )
        report = importer.import_checkpoint(
            self.model, self._write(variables), stream=1
        )
        self._assert_head_imported(self.model)
        self.assertLen(report.unused, 5)

    def test_both_naming_styles_at_once_is_ambiguous(self):
        variables = dict(self.head)
        variables.update(ckpts.with_prefix(self.head, "stream0/"))
        with self.assertRaisesRegex(ValueError, "mixes the names with and"):
            importer.import_checkpoint(self.model, self._write(variables))

    def test_flow_model(self):
        variables = dict(self.head)
        conv1 = self.rng.normal(size=(3, 3, 20, 64)).astype(np.float32)
        variables["vgg_16/conv1/conv1_1/weights"] = conv1
        importer.import_checkpoint(self.flow_model, self._write(variables))
        np.testing.assert_array_equal(
            inspection.find_layer(self.flow_model, "block1_conv1").kernel.numpy(),
            conv1,
        )
        self._assert_head_imported(self.flow_model)

    def test_shape_mismatch_names_variable_and_shapes(self):
        variables = dict(self.head)
        variables["vgg_16/conv1/conv1_1/weights"] = np.zeros((3, 3, 20, 64), np.float32)
        variables["NetVLAD/centers"] = np.zeros((8, _DEPTH), np.float32)
        before = inspection.find_layer(self.model, "logits").bias.numpy()
        with self.assertRaisesRegex(
            ValueError,
            r"(?s)shape mismatch.*nothing was imported.*"
            r"NetVLAD/centers: checkpoint shape \[8, 512\], model weight "
            r"netvlad/centers shape \[4, 512\] \(check num_clusters\).*"
            r"conv1_1/weights: checkpoint shape \[3, 3, 20, 64\], model "
            r"weight block1_conv1/kernel shape \[3, 3, 3, 64\].*"
            r"check the modality",
        ):
            importer.import_checkpoint(self.model, self._write(variables))
        # Nothing was assigned, not even the variables that did fit.
        np.testing.assert_array_equal(
            inspection.find_layer(self.model, "logits").bias.numpy(), before
        )

    def test_unreadable_checkpoint_says_how_to_convert(self):
        path = os.path.join(self.dir, "broken.ckpt")
        with open(path, "wb") as f:
            f.write(b"\x00not a checkpoint" * 64)
        with self.assertRaisesRegex(
            ValueError,
            r"broken.ckpt: not a TensorFlow checkpoint.*"
            r"convert it once with TensorFlow 1.x.*SaverDef.V2",
        ):
            importer.import_checkpoint(self.model, path)

    def test_missing_checkpoint(self):
        with self.assertRaisesRegex(FileNotFoundError, "no such checkpoint"):
            importer.import_checkpoint(self.model, os.path.join(self.dir, "nope.ckpt"))
        with self.assertRaisesRegex(FileNotFoundError, "without a `checkpoint`"):
            importer.import_checkpoint(self.model, self.dir)

    def test_fc6_fc7_convolutions(self):
        # The tiny backbone keeps the release's fc6 (VALID conv over pool5)
        # and fc7 (1x1 conv) layout at a small size.
        model = action_vlad.build_model(
            num_classes=3,
            backbone="tiny",
            endpoint="fc7",
            num_clusters=2,
            image_size=32,
        )
        variables = {
            "vgg_16/fc6/weights": self.rng.normal(size=(4, 4, 16, 16)).astype(
                np.float32
            ),
            "vgg_16/fc6/biases": self.rng.normal(size=16).astype(np.float32),
            "vgg_16/fc7/weights": self.rng.normal(size=(1, 1, 16, 16)).astype(
                np.float32
            ),
            "vgg_16/fc8/weights": np.zeros((1, 1, 16, 3), np.float32),
        }
        report = importer.import_checkpoint(model, self._write(variables))
        for name in ("fc6", "fc7"):
            np.testing.assert_array_equal(
                inspection.find_layer(model, name).kernel.numpy(),
                variables[f"vgg_16/{name}/weights"],
            )
        np.testing.assert_array_equal(
            inspection.find_layer(model, "fc6").bias.numpy(),
            variables["vgg_16/fc6/biases"],
        )
        self.assertEqual(report.unused, ["vgg_16/fc8/weights"])

    def test_fc_kernels_flatten_into_dense_layers(self):
        inputs = keras.Input((16,))
        hidden = keras.layers.Dense(16, name="fc7")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(hidden))
        fc7 = self.rng.normal(size=(1, 1, 16, 16)).astype(np.float32)
        importer.import_checkpoint(model, self._write({"vgg_16/fc7/weights": fc7}))
        np.testing.assert_array_equal(
            model.get_layer("fc7").kernel.numpy(), fc7.reshape(16, 16)
        )
        with self.assertRaisesRegex(
            ValueError,
            r"vgg_16/fc7/weights: checkpoint shape "
            r"\[2, 2, 16, 16\], model weight fc7/kernel shape \[16, 16\]",
        ):
            importer.import_checkpoint(
                model,
                self._write(
                    {"vgg_16/fc7/weights": np.zeros((2, 2, 16, 16), np.float32)},
                    name="bad.ckpt",
                ),
            )

    def test_late_fusion_scope(self):
        model = action_vlad.build_model(
            num_classes=_NUM_CLASSES,
            modality="rgb+flow",
            fusion="late",
            backbone="vgg16",
            num_clusters=_NUM_CLUSTERS,
            image_size=_IMAGE_SIZE,
        )
        path = self._write(self.head)
        with self.assertRaisesRegex(ValueError, "occurs more than once"):
            importer.import_checkpoint(model, path)
        importer.import_checkpoint(model, path, scope="rgb_stream")
        self._assert_head_imported(inspection.find_layer(model, "rgb_stream"))


if __name__ == "__main__":
    absltest.main()
