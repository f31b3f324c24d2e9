"""avlad_tf.settings: every configurable argument has one role; records."""

import glob
import json
import os

from absl.testing import absltest
import gin

from avlad_tf import settings

# Imported for their configurables (experiment imports the training ones).
from avlad_tf.evaluation import scoring  # noqa: F401
from avlad_tf.serving import saved_model  # noqa: F401
from avlad_tf.training import experiment  # noqa: F401

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class RolesTest(absltest.TestCase):
    def test_every_configurable_of_the_library_declares_roles(self):
        # gin.configurable anywhere else would let an argument go without one.
        offenders = []
        for path in glob.glob(
            os.path.join(_ROOT, "avlad_tf", "**", "*.py"), recursive=True
        ):
            with open(path, encoding="utf-8") as f:
                if "gin.configurable" in f.read() and not path.endswith("settings.py"):
                    offenders.append(os.path.relpath(path, _ROOT))
        self.assertEqual(offenders, [])
        self.assertContainsSubset(
            [
                "build_model",
                "evaluate",
                "export",
                "init_centers",
                "make_dataset",
                "train",
                "train_stream",
            ],
            settings.declared(),
        )

    def test_declared_roles_cover_every_keyword_argument(self):
        for name in settings.declared():
            roles = settings.roles(name)
            self.assertTrue(set(roles.values()) <= set(settings.ROLES), name)

    def test_a_new_argument_without_a_role_fails_at_import(self):
        def train_stream(*, workdir, batch_size=4, new_setting=1):
            del workdir, batch_size, new_setting

        with self.assertRaisesRegex(TypeError, r"without a role: \['new_setting'\]"):
            settings.configurable(setting=("batch_size",), call=("workdir",))(
                train_stream
            )

    def test_a_role_for_no_argument_or_two_roles_fail(self):
        def fn(*, a=1):
            del a

        with self.assertRaisesRegex(TypeError, r"not an argument: \['b'\]"):
            settings.check_roles(fn, {"setting": ("a", "b")})
        with self.assertRaisesRegex(TypeError, r"two roles: \['a'\]"):
            settings.check_roles(fn, {"setting": ("a",), "execution": ("a",)})

    def test_call_arguments_cannot_be_bound(self):
        with self.assertRaisesRegex(ValueError, "denylisted kwarg 'workdir'"):
            gin.parse_config("train_stream.workdir = '/tmp/x'")
        gin.clear_config()

    def test_role_of_an_unknown_argument_is_setting(self):
        self.assertEqual(settings.role("train_stream", "jit_compile"), "execution")
        self.assertEqual(settings.role("evaluate", "num_crops"), "evaluation")
        self.assertEqual(settings.role("train_stream", "no_such"), "setting")
        self.assertEqual(settings.role("no_such_configurable", "x"), "setting")


class RecordsTest(absltest.TestCase):
    def test_write_json_is_atomic_and_leaves_no_temporary_file(self):
        directory = self.create_tempdir().full_path
        path = os.path.join(directory, "a.json")
        settings.write_json(path, {"b": (1, 2)})
        self.assertEqual(settings.read_json(path), {"b": [1, 2]})
        self.assertEqual(os.listdir(directory), ["a.json"])

    def test_flatten_differences_and_describe(self):
        old = {"a": {"b": 1, "c": [1, 2]}, "d": 3}
        new = {"a": {"b": 2, "c": [1, 2]}, "e": 4}
        self.assertEqual(settings.flatten(old), {"a/b": 1, "a/c": [1, 2], "d": 3})
        changes = settings.differences(old, new)
        self.assertEqual(changes, [("a/b", 1, 2), ("d", 3, None), ("e", None, 4)])
        self.assertEqual(
            settings.describe(changes[:1], name=lambda k: k.replace("/", ".")),
            "a.b: 1 -> 2",
        )
        self.assertEqual(settings.differences(old, new, sep=".")[0][0], "a.b")

    def test_jsonable(self):
        self.assertEqual(settings.jsonable({"a": (1, 2)}), {"a": [1, 2]})
        self.assertEqual(settings.jsonable({"f": len}, default=repr), {"f": repr(len)})
        json.dumps(settings.jsonable({"x": (1,)}))


if __name__ == "__main__":
    absltest.main()
