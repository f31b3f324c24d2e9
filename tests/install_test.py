"""A regular `pip install .` (not editable) from a clean checkout works.

The package is installed into a fresh target directory and used from an
empty working directory, with no checkout on the path: gin files resolve by
name, their includes follow, and the shipped split lists are there.
"""

import ast
import glob
import json
import os
import shutil
import subprocess
import sys
import textwrap

from absl.testing import absltest
import pytest

from tests import testing

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs with only the installed copy importable.
CHECK_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import gin
    from avlad_tf import cli
    from data_prep import sources
    site = sys.argv[1]
    cli.parse_gin(["late_fuse.gin"], [])
    gin.clear_config()
    cli.parse_gin(["toy/late_fuse.gin"], [])  # includes toy/base.gin, base.gin
    print(json.dumps({
        "gin_dir": cli.GIN_DIR,
        "cli": cli.__file__,
        "lists": sorted(os.listdir(sources.LISTS_DIR)),
        "ucf101": sorted(os.listdir(os.path.join(sources.LISTS_DIR, "ucf101"))),
    }))
""")


def _clean_checkout(dest):
    """The project's files (tracked, or new and not ignored), without build
    outputs and local runs, as a fresh clone of the work would have them."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    for name in filter(None, files):
        if not os.path.isfile(os.path.join(REPO, name)):
            continue  # deleted in the work tree, not yet committed
        out = os.path.join(dest, name)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        shutil.copy2(os.path.join(REPO, name), out)
    return dest


@pytest.mark.slow
class RegularInstallTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        root = testing.class_tempdir(cls)
        cls.site = os.path.join(root, "site")
        checkout = _clean_checkout(os.path.join(root, "checkout"))
        install = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--target",
                cls.site,
                checkout,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if install.returncode:
            raise AssertionError(f"pip install . failed:\n{install.stderr[-3000:]}")
        elsewhere = os.path.join(root, "elsewhere")
        os.makedirs(elsewhere)
        cls.check = subprocess.run(
            [sys.executable, "-c", CHECK_SCRIPT, cls.site],
            cwd=elsewhere,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
            env=dict(os.environ, PYTHONPATH=cls.site, TF_CPP_MIN_LOG_LEVEL="3"),
        )

    def test_gin_files_resolve_from_the_installed_package(self):
        self.assertEqual(self.check.returncode, 0, self.check.stderr[-3000:])
        found = json.loads(self.check.stdout.strip().splitlines()[-1])
        self.assertTrue(found["cli"].startswith(self.site), found["cli"])
        self.assertEqual(
            found["gin_dir"], os.path.join(self.site, "avlad_tf", "configs")
        )
        self.assertEqual(found["lists"], ["charades", "hmdb51", "ucf101"])
        self.assertIn("train_split1.txt", found["ucf101"])

    def test_every_config_is_installed(self):
        shipped = {
            os.path.relpath(os.path.join(d, f), os.path.join(REPO, "gin"))
            for d, _, fs in os.walk(os.path.join(REPO, "gin"))
            for f in fs
            if f.endswith(".gin")
        }
        configs = os.path.join(self.site, "avlad_tf", "configs")
        installed = {
            os.path.relpath(os.path.join(d, f), configs)
            for d, _, fs in os.walk(configs)
            for f in fs
        }
        self.assertEqual(installed, shipped)

    def test_every_package_data_pattern_matches_files(self):
        with open(os.path.join(REPO, "setup.py"), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        package_data = next(
            ast.literal_eval(k.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            for k in node.keywords
            if k.arg == "package_data"
        )
        for package, patterns in package_data.items():
            for pattern in patterns:
                matches = glob.glob(
                    os.path.join(REPO, package, pattern), recursive=True
                )
                self.assertTrue(matches, f"{package}: {pattern} matches nothing")

    def test_release_labels_are_installed(self):
        labels = os.path.join(self.site, "avlad_tf", "release", "labels")
        self.assertEqual(
            sorted(os.listdir(labels)),
            ["hmdb51.txt", "kinetics400.txt", "kinetics600.txt", "ucf101.txt"],
        )


if __name__ == "__main__":
    absltest.main()
