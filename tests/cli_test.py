"""avlad_tf.cli: importing it has no side effects; a program's quiet start."""

import subprocess
import sys

from absl.testing import absltest
import pytest

from avlad_tf import cli


def _python(code):
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )


class ImportTest(absltest.TestCase):
    def test_import_leaves_tensorflow_and_stderr_alone(self):
        result = _python(
            "import os, sys\n"
            "from avlad_tf import cli\n"
            "assert 'tensorflow' not in sys.modules, 'cli imported TensorFlow'\n"
            "os.write(2, b'stderr still open')\n"
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("stderr still open", result.stderr)

    @pytest.mark.slow  # starts TensorFlow twice
    def test_start_quietly_holds_back_tensorflow_start_up_lines(self):
        loud = _python("import tensorflow")
        quiet = _python(
            "import os, sys\n"
            "from avlad_tf import cli\n"
            "cli.start_quietly()\n"
            "assert 'tensorflow' in sys.modules\n"
            "os.write(2, b'after')\n"
        )
        self.assertEqual(quiet.returncode, 0, quiet.stderr)
        self.assertEqual(quiet.stderr, "after")
        # The lines it holds back exist on this machine (oneDNN, CUDA probes).
        self.assertNotEqual(loud.stderr.strip(), "")


class GinDirectoryTest(absltest.TestCase):
    def test_parse_restores_the_working_directory(self):
        before = __import__("os").getcwd()
        with self.assertRaises(ValueError):
            cli.parse_gin([], ["no_such_configurable.x = 1"])
        self.assertEqual(__import__("os").getcwd(), before)


if __name__ == "__main__":
    absltest.main()
