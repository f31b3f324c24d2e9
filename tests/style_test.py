"""The tree is lint-clean and formatted (ruff, configured in pyproject.toml)."""

import os
import subprocess
import sys

from absl.testing import absltest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _ruff(*args):
    # The ruff of the [test] extra, run with this interpreter.
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )


class StyleTest(absltest.TestCase):
    def test_lint(self):
        result = _ruff("check", ".")
        self.assertEqual(result.returncode, 0, result.stdout[-3000:])

    def test_format(self):
        result = _ruff("format", "--check", ".")
        self.assertEqual(result.returncode, 0, result.stdout[-3000:])


if __name__ == "__main__":
    absltest.main()
