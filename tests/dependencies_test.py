"""Every declared runtime dependency imports and has what we use of it.

TF 2.21 no longer pulls in TensorBoard, TV-L1 exists only in OpenCV's contrib
build, and `gin.tf` is broken on current TF (docs/PITFALLS.md 2, "dependency rot").
"""

import importlib
import importlib.metadata

from absl.testing import absltest


class DependenciesTest(absltest.TestCase):
    def test_opencv_contrib_has_tvl1_and_no_plain_opencv_beside_it(self):
        import cv2

        self.assertTrue(hasattr(cv2.optflow, "DualTVL1OpticalFlow_create"))
        installed = {
            dist.metadata["Name"].lower() for dist in importlib.metadata.distributions()
        }
        self.assertIn("opencv-contrib-python-headless", installed)
        # opencv-python would shadow cv2 and lose cv2.optflow.
        self.assertNotIn("opencv-python", installed)

    def test_gin_is_the_real_package(self):
        import gin

        self.assertTrue(hasattr(gin, "configurable"))
        self.assertEqual(importlib.metadata.version("gin-config"), "0.5.0")

    def test_tensorflow_and_keras_versions(self):
        import keras
        import tensorflow as tf

        self.assertTrue(tf.__version__.startswith("2.21."), tf.__version__)
        self.assertEqual(keras.__version__.split(".")[0], "3")

    def test_beam_extra_resolves_beside_tensorflow(self):
        import apache_beam
        import crcmod  # apache-beam[tfrecord], for Beam's TFRecord IO

        self.assertGreaterEqual(
            tuple(int(v) for v in apache_beam.__version__.split(".")[:2]), (2, 69)
        )
        self.assertIsNotNone(crcmod.Crc)
        # The only protobuf range both accept (setup.py, BEAM).
        self.assertEqual(importlib.metadata.version("protobuf").split(".")[0], "6")

    def test_tensorflow_datasets_has_what_data_prep_uses(self):
        import tensorflow_datasets as tfds

        # data_prep/tfds_info.py builds the metadata from these; the tests
        # load it back with the other two.
        for name in ("DatasetIdentity", "DatasetInfo", "ShardedFileTemplate"):
            with self.subTest(name=name):
                self.assertTrue(hasattr(tfds.core, name))
        self.assertTrue(hasattr(tfds, "builder_from_directory"))
        self.assertTrue(hasattr(tfds, "as_dataframe"))
        self.assertEqual(importlib.metadata.version("tensorflow-datasets")[0], "4")

    def test_tensorboard_h5py_matplotlib_import(self):
        for name in (
            "tensorboard",
            "h5py",
            "matplotlib",
            "absl",
            "numpy",
        ):
            with self.subTest(name=name):
                self.assertIsNotNone(importlib.import_module(name))


if __name__ == "__main__":
    absltest.main()
