"""Tests for avlad_tf.data.pixel_rules: one home for both sides' constants."""

import subprocess
import sys

from absl.testing import absltest

from avlad_tf.data import pixel_rules
from avlad_tf.data import preprocessing
from avlad_tf.layers import pixels

# Runs with TensorFlow and Keras unimportable (a None entry in sys.modules
# makes `import` fail), so an import of either on this path is an error.
_IMPORT_WITHOUT_TF_OR_KERAS = """
import sys
for name in ("tensorflow", "keras"):
    sys.modules[name] = None
import avlad_tf.data
from avlad_tf.data import pixel_rules
print(pixel_rules.RELEASE_BGR_MEANS)
"""


class PixelRulesTest(absltest.TestCase):
    def test_imports_neither_tensorflow_nor_keras(self):
        result = subprocess.run(
            [sys.executable, "-c", _IMPORT_WITHOUT_TF_OR_KERAS],
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertEqual(result.stdout.strip(), "(104.0, 117.0, 123.0)")

    def test_host_and_layer_share_the_constants(self):
        for name in ("RELEASE_BGR_MEANS", "FLOW_MEAN", "KERAS_BGR_MEANS", "MODALITIES"):
            self.assertIs(
                getattr(preprocessing, name), getattr(pixel_rules, name), name
            )
        for name in ("RELEASE_BGR_MEANS", "FLOW_MEAN", "UINT8_DATA_FORMATS"):
            self.assertIs(getattr(pixels, name), getattr(pixel_rules, name), name)

    def test_release_values(self):  # docs/RELEASE.md Sec. 3
        self.assertEqual(pixel_rules.RELEASE_BGR_MEANS, (104.0, 117.0, 123.0))
        self.assertEqual(pixel_rules.FLOW_MEAN, 128.0)
        self.assertEqual(
            pixel_rules.UINT8_DATA_FORMATS,
            {"rgb": "channels_last", "flow": "channels_first"},
        )


if __name__ == "__main__":
    absltest.main()
