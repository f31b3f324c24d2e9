"""Model code must stay backend-agnostic: no TensorFlow imports."""

import ast
import pathlib

from absl.testing import absltest
from absl.testing import parameterized

_ROOT = pathlib.Path(__file__).resolve().parents[2] / "avlad_tf"
_FILES = sorted(
    str(p) for package in ("layers", "models") for p in (_ROOT / package).glob("*.py")
)


def imported_modules(path):
    tree = ast.parse(pathlib.Path(path).read_text(), filename=path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield node.module or ""


class NoTensorflowImportTest(parameterized.TestCase):
    def test_files_found(self):
        self.assertGreaterEqual(len(_FILES), 6)

    @parameterized.parameters(*_FILES)
    def test_no_tensorflow(self, path):
        bad = [
            m
            for m in imported_modules(path)
            if m.split(".")[0] in ("tensorflow", "tf_keras")
        ]
        self.assertEmpty(bad, f"{path} imports {bad}")


if __name__ == "__main__":
    absltest.main()
