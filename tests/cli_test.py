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


class TensorflowMessageTest(absltest.TestCase):
    """TensorFlow's runtime errors become one line without the graph's
    context (programs print it after `<program>: error:`)."""

    def test_a_full_disk_while_saving_names_the_file_and_the_fix(self):
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        error = tf.errors.ResourceExhaustedError(
            None,
            None,
            "{{function_node __wrapped__SaveV2_dtypes_29_device_/job:localhost}} "
            "/w/ckpt-1_temp/part-0.tempstate1; No space left on device [Op:SaveV2]",
        )
        self.assertEqual(
            cli.tensorflow_message(error),
            "/w/ckpt-1_temp/part-0.tempstate1; No space left on device; the disk "
            "is full: free space (or choose another disk) and rerun",
        )

    def test_a_failed_assertion_gives_its_own_message(self):
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        message = (
            "Graph execution error:\n\nDetected at node Assert/Assert defined at "
            "(most recent call last):\n<stack traces unavailable>\nError in "
            'user-defined function: assertion failed: [Shard \\"/d/a.tfrecord\\": '
            "5 listed, 2 read.]\n\t [[{{node Assert/Assert}}]] [Op:__inference_go_81]"
        )
        error = tf.errors.InvalidArgumentError(None, None, message)
        self.assertEqual(
            cli.tensorflow_message(error), 'Shard "/d/a.tfrecord": 5 listed, 2 read.'
        )

    def test_a_lost_worker_says_to_restart_every_worker(self):
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        error = tf.errors.UnavailableError(
            None,
            None,
            "Graph execution error:\n\nDetected at node x defined at (most recent "
            'call last):\n  File "/a/train.py", line 50, in <module>\nCollective '
            "ops is aborted by: Error reported from /job:worker/task:1: The "
            "following tasks are unhealthy (stopped sending heartbeats)",
        )
        message = cli.tensorflow_message(error)
        self.assertRegex(message, r"^Collective ops is aborted by: .*task:1")
        self.assertNotIn("train.py", message)
        self.assertIn("start the same command on every worker again", message)

    def test_other_errors_are_not_tensorflows(self):
        self.assertIsNone(cli.tensorflow_message(RuntimeError("x")))


if __name__ == "__main__":
    absltest.main()
