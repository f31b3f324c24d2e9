"""Tests of reading and plotting TensorBoard training curves."""

import os

from absl.testing import absltest
from matplotlib import image as mpimg
import numpy as np
import tensorflow as tf

from avlad_tf.visualization import curves


def write_scalars(log_dir, tag, values, *, start=0):
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        for step, value in enumerate(values, start=start):
            tf.summary.scalar(tag, value, step=step)
    writer.close()


class CurvesTest(absltest.TestCase):
    def test_reads_runs_and_tags_and_plots(self):
        log_dir = os.path.join(self.create_tempdir().full_path, "tensorboard")
        write_scalars(os.path.join(log_dir, "rgb", "train"), "loss", [3.0, 2.0, 1.5])
        write_scalars(os.path.join(log_dir, "rgb", "validation"), "loss", [3.5, 2.5])
        write_scalars(
            os.path.join(log_dir, "rgb", "train"), "accuracy", [0.1, 0.4, 0.6]
        )
        # A resumed run logs step 2 again: the later value wins.
        write_scalars(
            os.path.join(log_dir, "rgb", "train"), "loss", [1.25, 1.0], start=2
        )
        scalars = curves.read_scalars(log_dir)
        self.assertEqual(set(scalars), {"loss", "accuracy"})
        steps, values = scalars["loss"][os.path.join("rgb", "train")]
        np.testing.assert_array_equal(steps, [0, 1, 2, 3])
        np.testing.assert_allclose(values, [3.0, 2.0, 1.25, 1.0])
        steps, values = scalars["loss"][os.path.join("rgb", "validation")]
        np.testing.assert_allclose(values, [3.5, 2.5])
        out = curves.plot_curves(
            scalars, os.path.join(log_dir, "..", "c.png"), width_px=600, height_px=300
        )
        self.assertEqual(mpimg.imread(out).shape[:2], (300, 600))
        with self.assertRaisesRegex(ValueError, "not logged"):
            curves.plot_curves(scalars, out, tags=["lr"])

    def test_later_writer_wins_across_many_writers_in_one_second(self):
        # A process's writer counter passes 9 -> 10, which a string sort of
        # the event file names would put first; the newest write must win.
        log_dir = self.create_tempdir().full_path
        for value in range(12):
            write_scalars(log_dir, "loss", [float(value)])
        files = curves.find_event_files(log_dir)["."]
        self.assertLen(files, 12)
        steps, values = curves.read_scalars(log_dir)["loss"]["."]
        np.testing.assert_array_equal(steps, [0])
        np.testing.assert_allclose(values, [11.0])

    def test_no_event_files_is_an_error(self):
        empty = self.create_tempdir().full_path
        with self.assertRaisesRegex(FileNotFoundError, "no TensorBoard"):
            curves.read_scalars(empty)


if __name__ == "__main__":
    absltest.main()
