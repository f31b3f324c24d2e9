"""Tests for avlad_tf.progress: the one-line progress of long work.

The clock is replaced by a fake one, so rates, elapsed time and ETAs are
exact and the expected lines are worked out by hand in each test.
"""

import io
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized

from avlad_tf import progress

START = 1000.0  # the fake monotonic clock when a Progress is made


class _Terminal(io.StringIO):
    def isatty(self):
        return True


class _Clock:
    """A settable `time.monotonic`."""

    def __init__(self):
        self.now = START

    def __call__(self):
        return self.now


class ProgressTest(parameterized.TestCase):
    def setUp(self):
        super().setUp()
        self.clock = _Clock()
        patcher = mock.patch.object(progress.time, "monotonic", self.clock)
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_piped_line_has_bar_counts_rate_elapsed_and_eta(self):
        out = io.StringIO()
        bar = progress.Progress(
            10, what="rgb stage 1", unit="updates", stream=out, plain_every=0
        )
        self.clock.now = START + 60.0
        bar.update(2)
        # 2 of 10 in 60 s: 2.0/min; 8 left at 2/min is 4 minutes; the bar
        # has int(30 * 2 / 10) = 6 of its 30 places filled.
        self.assertEqual(
            out.getvalue(),
            "rgb stage 1 [" + "#" * 6 + "." * 24 + "] 2/10 updates 2.0/min "
            "elapsed 01:00 ETA 04:00\n",
        )

    def test_done_sets_the_count_and_finishing_fills_the_bar(self):
        out = io.StringIO()
        bar = progress.Progress(4, stream=out, plain_every=0)
        self.clock.now = START + 30.0
        bar.update(done=4)
        # 4 in 30 s is 8/min; nothing remains, so the ETA is zero.
        self.assertEqual(
            out.getvalue(),
            "[" + "#" * 30 + "] 4/4 videos 8.0/min elapsed 00:30 ETA 00:00\n",
        )

    def test_unknown_total_has_no_eta_and_an_empty_bar(self):
        out = io.StringIO()
        bar = progress.Progress(None, unit="videos", stream=out, plain_every=0)
        self.clock.now = START + 3661.0
        bar.update(61)
        # 61 in 3661 s is 61 * 60 / 3661 = 0.99.../min; 1 h 1 min 1 s.
        self.assertEqual(
            out.getvalue(),
            "[" + "." * 30 + "] 61 videos 1.0/min elapsed 1:01:01 ETA --:--\n",
        )

    def test_suffix_is_shown_after_the_counts(self):
        out = io.StringIO()
        bar = progress.Progress(2, stream=out, plain_every=0)
        bar.suffix = "loss 0.25"
        self.clock.now = START + 1.0
        bar.update()
        self.assertTrue(out.getvalue().endswith(" loss 0.25\n"), out.getvalue())

    def test_no_time_elapsed_gives_zero_rate_and_unknown_eta(self):
        out = io.StringIO()
        bar = progress.Progress(3, stream=out, plain_every=0)
        bar.update()
        self.assertIn(" 1/3 videos 0.0/min elapsed 00:00 ETA --:--", out.getvalue())

    def test_piped_output_writes_every_plain_every_seconds_and_at_the_end(self):
        out = io.StringIO()
        bar = progress.Progress(3, stream=out, plain_every=30.0)
        self.clock.now = START + 10.0
        bar.update()
        self.assertEqual(out.getvalue(), "")  # 10 s < 30 s since the start
        self.clock.now = START + 31.0
        bar.update()
        self.assertEqual(out.getvalue().count("\n"), 1)
        self.assertIn(" 2/3 ", out.getvalue())
        self.clock.now = START + 32.0  # 1 s after the last line, but finished
        bar.update()
        lines = out.getvalue().splitlines()
        self.assertLen(lines, 2)
        self.assertIn(" 3/3 ", lines[1])

    def test_terminal_redraws_one_line_and_ends_it_when_finished(self):
        out = _Terminal()
        bar = progress.Progress(2, stream=out, plain_every=1000.0)
        self.clock.now = START + 0.1  # under the terminal's 0.5 s: not drawn
        bar.update()
        self.assertEqual(out.getvalue(), "")
        self.clock.now = START + 0.6
        bar.update(0)
        self.assertTrue(out.getvalue().startswith("\r\033[K["), repr(out.getvalue()))
        self.assertNotIn("\n", out.getvalue())
        self.clock.now = START + 0.7
        bar.update()
        text = out.getvalue()
        self.assertEqual(text.count("\r\033[K"), 2)
        self.assertTrue(text.endswith("\n"))
        self.assertIn(" 2/2 videos", text.rsplit("\r\033[K", 1)[1])

    def test_writes_to_stderr_by_default(self):
        err = io.StringIO()
        with mock.patch.object(progress.sys, "stderr", err):
            bar = progress.Progress(1)
            bar.update()
        self.assertIn("1/1 videos", err.getvalue())

    @parameterized.parameters(
        (0.0, "00:00"),
        (59.9, "00:59"),
        (60.0, "01:00"),
        (3599.0, "59:59"),
        (3600.0, "1:00:00"),
        (36000.0 + 62.0, "10:01:02"),
    )
    def test_elapsed_clock(self, seconds, shown):
        out = io.StringIO()
        bar = progress.Progress(None, stream=out, plain_every=0)
        self.clock.now = START + seconds
        bar.update()
        self.assertIn(f" elapsed {shown} ", out.getvalue())


if __name__ == "__main__":
    absltest.main()
