"""pytest set-up shared by all tests."""

import os

# Quiet TensorFlow's C++ start-up logging in test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

# absltest helpers such as create_tempdir read --test_tmpdir; under pytest no
# absl main parses flags, so mark the defaults as parsed.
if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
