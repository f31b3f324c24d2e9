"""avlad_tf.errors: TensorFlow's runtime errors in one line."""

from absl.testing import absltest

from avlad_tf import errors


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
            errors.tensorflow_message(error),
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
            errors.tensorflow_message(error), 'Shard "/d/a.tfrecord": 5 listed, 2 read.'
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
        message = errors.tensorflow_message(error)
        self.assertRegex(message, r"^Collective ops is aborted by: .*task:1")
        self.assertNotIn("train.py", message)
        self.assertIn("start the same command on every worker again", message)

    def test_other_errors_are_not_tensorflows(self):
        self.assertIsNone(errors.tensorflow_message(RuntimeError("x")))


if __name__ == "__main__":
    absltest.main()
