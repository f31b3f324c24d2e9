"""Every name the docs give stands for something that exists.

For README.md and docs/*.md (as `tests/docs_test.py` reads them): a
backticked `module.name` is defined or imported by a module of that name, a
bare `name()` is defined somewhere in the repository, a path glob matches a
file, a gin binding names an argument that `avlad_tf.settings.configurable`
lets gin bind; and the module docstrings under avlad_tf/, data_prep/ and
experiments/ name existing `gin/` files. Files only: nothing of the project
is imported. The last tests feed each check bad names.
"""

import functools
import glob
import os
import re

from tests import docs_test

# ---- Names: what a backticked `module.name` or `name()` stands for ----------

# Where the repository's Python lives (definitions are looked up here), and
# where module docstrings are checked for gin paths.
_SOURCE_DIRS = docs_test._PACKAGES
_DOCSTRING_DIRS = ("avlad_tf", "data_prep", "experiments")
# Roots of other libraries' names (`keras.ops.x`, `tf.data`, `np.load()`),
# and project module names that prose also uses for an object
# (`layer.update()` is a layer's method, not avlad_tf/flow/layer.py's).
_FOREIGN_ROOTS = {
    "keras", "tf", "tensorflow", "np", "numpy", "gin", "os", "sys", "json",
    "re", "cv2", "jax", "absl", "flags", "beam", "apache_beam", "tfds",
    "tensorboard", "hp", "ops", "concurrent", "multiprocessing", "h5py",
    "scipy", "sklearn", "math", "layer",
}  # fmt: skip
# `name()` written bare that is no name of this repository: Python's
# built-ins, other libraries' methods (tf.data, Keras, Beam, OpenCV) and
# FLOW.md's notation `first(p) ≈ second(p + flow(p))`.
_FOREIGN_CALLS = {
    "hasattr", "set", "len", "time", "cache", "interleave", "repeat",
    "list_files", "compile", "save", "get_config", "with_exception_handling",
    "remap", "resize", "first", "second", "flow", "L2",
    "BackupAndRestore", "MirroredStrategy", "ModelCheckpoint", "TensorBoard",
    "DualTVL1OpticalFlow_create",
}  # fmt: skip
# A dotted word that is a file name (`run_record.py`, `late_fuse.gin`).
_EXTENSIONS = {
    "py", "md", "gin", "json", "jsonl", "h5", "txt", "npy", "keras", "csv",
    "tfrecord", "pkl", "ckpt", "avi", "mp4", "png", "pb", "pbtxt", "sh", "m",
    "cpp", "cu", "com",
}  # fmt: skip
_NAME = re.compile(r"(?<![\w./-])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(\()?")
_DEFINITION = re.compile(
    r"^\s*(?:async\s+)?(?:def|class)\s+(\w+)|^\s*(\w+)\s*(?::[^=\n]*)?=(?!=)",
    re.MULTILINE,
)
_CONFIGURABLE = re.compile(
    r"@settings\.configurable\((.*?)\)\s*\n\s*def\s+(\w+)\s*\(", re.DOTALL
)
_ROLE = re.compile(r"\b(setting|execution|evaluation|call)\s*=\s*(\([^)]*\)|\"\w*\")")
# `[scope/]configurable.argument` at the start of a `--gin_bindings` value.
_GIN_BINDING = re.compile(r"--gin_bindings[= ][\"']?\s*((?:\w+/)*\w+\.\w+)\s*=")
_DOCSTRING = re.compile(
    r"\A(?:\s*#[^\n]*\n|\s*\n)*\s*[rRuU]?(\"\"\"|\'\'\')(.*?)\1", re.DOTALL
)


@functools.cache
def _python_files():
    """Every .py file of the repository's packages, repository-relative."""
    found = []
    for top in _SOURCE_DIRS:
        for folder, dirs, files in os.walk(os.path.join(docs_test._ROOT, top)):
            dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "configs"))
            found += [
                os.path.relpath(os.path.join(folder, f), docs_test._ROOT)
                for f in sorted(files)
                if f.endswith(".py")
            ]
    return tuple(found)


@functools.cache
def _source(path):
    return docs_test._read(path)


@functools.cache
def _modules():
    """`{name: [file]}`: the files of every module and package by last name
    (`video_input`, `layers` -> avlad_tf/layers/__init__.py)."""
    modules = {}
    for path in _python_files():
        folder, name = os.path.split(path[: -len(".py")])
        if name == "__init__":
            folder, name = os.path.split(folder)
        modules.setdefault(name, []).append(path)
    return modules


@functools.cache
def _defined_names():
    """Every name a `def`, `class` or `name =` defines, at any indentation,
    in any of the repository's Python files (keyword defaults included)."""
    names = set()
    for path in _python_files():
        for match in _DEFINITION.finditer(_source(path)):
            names.add(match.group(1) or match.group(2))
    return frozenset(names)


@functools.cache
def _configurables():
    """`{configurable: {argument: role}}` of every `settings.configurable`."""
    found = {}
    for path in _python_files():
        source = _source(path)
        if path.startswith("tests") or "@settings.configurable(" not in source:
            continue
        for arguments, name in _CONFIGURABLE.findall(source):
            found[name] = {
                argument: role
                for role, names in _ROLE.findall(arguments)
                for argument in re.findall(r"\"(\w+)\"", names)
            }
    return found


def _module_defines(path, parts):
    """Whether module `path` has `parts[0]` (a submodule of a package, or a
    name it defines or imports); further parts are that name's attributes."""
    if not parts:
        return True
    if path.endswith("__init__.py"):
        folder = os.path.dirname(path)
        for sub in (
            os.path.join(folder, parts[0] + ".py"),
            os.path.join(folder, parts[0], "__init__.py"),
        ):
            if os.path.isfile(os.path.join(docs_test._ROOT, sub)):
                return _module_defines(sub, parts[1:])
    return docs_test._defines(os.path.join(docs_test._ROOT, path), parts[0])


def _binding_problem(configurable, argument):
    """Why gin cannot bind `configurable.argument`, or None."""
    roles = _configurables()[configurable]
    if argument not in roles:
        return f"{configurable} has no argument {argument}"
    if roles[argument] == "call":
        return (
            f"{configurable}.{argument} is a call argument, which gin "
            f"refuses to bind (avlad_tf/settings.py)"
        )
    return None


def undefined_names(text):
    """Backticked `module.name` (a module of the repository's) and `name()`
    that the repository does not define.

    `module.name` must be defined (or imported) by a module of that last name
    (`video_input.make_dataset`; `layers.pixels.INPUT_RULES` through the
    package); a configurable's `evaluate.split` is a gin binding, checked by
    `unknown_gin_bindings`. A bare `name()` or `name(args)` must be a `def`,
    `class` or `name =` somewhere in the repository's Python. Dotted names of
    the repository's packages (`avlad_tf.x.y`) are `missing_dotted_names`'s.
    """
    problems = []
    for span in docs_test._inline_spans(text):
        for dotted, call in _NAME.findall(span):
            parts = dotted.split(".")
            if parts[0] in docs_test._PACKAGES or parts[0] in _FOREIGN_ROOTS:
                continue
            if len(parts) == 1:
                known = dotted in _FOREIGN_CALLS or dotted in _defined_names()
                if call and not known:
                    problems.append(f"`{dotted}()` is defined nowhere")
                continue
            if parts[-1] in _EXTENSIONS and not call:
                continue  # a file name
            if parts[0] in _configurables() and len(parts) == 2 and not call:
                continue  # a gin binding: unknown_gin_bindings
            if parts[0] not in _modules():
                continue  # an object's attribute or method
            if not any(
                _module_defines(path, parts[1:]) for path in _modules()[parts[0]]
            ):
                files = ", ".join(_modules()[parts[0]])
                problems.append(f"`{dotted}`: {files} does not define {parts[1]}")
    return problems


def unknown_gin_bindings(text):
    """`configurable.argument` that gin cannot bind: written backticked
    (`evaluate.split`, `flow/evaluate.num_crops = 5`) or bound with
    `--gin_bindings=...`, for a configurable of the repository; the argument
    must be one of its arguments, and not a call argument."""
    problems = []
    bindings = _GIN_BINDING.findall(text)
    for span in docs_test._inline_spans(text):
        bindings += re.findall(r"(?<![\w.-])(?:\w+/)*(\w+\.\w+)\b(?![.(])", span)
    for binding in bindings:
        configurable, argument = binding.split("/")[-1].split(".")
        if configurable in _configurables() and argument not in _EXTENSIONS:
            problem = _binding_problem(configurable, argument)
            if problem:
                problems.append(f"`{binding}`: {problem}")
    return problems


def _glob_problem(pattern):
    """Why `pattern` (a repository path, or a gin file name relative to gin/)
    names nothing, or None."""
    if pattern.startswith(docs_test._PREFIXES):
        where = [os.path.join(docs_test._ROOT, pattern)]
    elif pattern.endswith(".gin"):
        where = [
            os.path.join(docs_test._GIN, pattern),
            os.path.join(docs_test._ROOT, pattern),
        ]
    else:
        return None
    if any(glob.glob(p, recursive=True) for p in where):
        return None
    return f"`{pattern}` matches no file"


def _glob_names(raw):
    """The patterns `raw` stands for if it is a glob (with `*`) and has no
    other placeholder, else []."""
    if "*" not in raw:
        return []
    names = docs_test._expand(raw)
    if any(docs_test._PLACEHOLDER.search(n.replace("*", "")) for n in names):
        return []
    return names


def unmatched_globs(text):
    """Backticked path globs (`gin/aggregators_*.gin`, `table2b_*.gin`) that
    match no file."""
    problems = []
    for span in docs_test._inline_spans(text):
        for token in docs_test._tokens(span):
            for pattern in _glob_names(token):
                problem = _glob_problem(pattern)
                if problem:
                    problems.append(problem)
    return problems


def module_docstring(source):
    """The module docstring of a Python source, or ''."""
    match = _DOCSTRING.match(source)
    return match.group(2) if match else ""


def stale_docstring_gin_paths(docstring):
    """Backticked `gin/...` paths and globs in a docstring that name nothing."""
    problems = []
    for span in docs_test._SPAN.findall(docstring):
        for token in docs_test._tokens(span):
            if not token.startswith("gin/"):
                continue
            if "*" in token:
                problems += filter(None, map(_glob_problem, _glob_names(token)))
            else:
                problems += [
                    f"`{name}` does not exist"
                    for name in docs_test._names(token)
                    if not os.path.exists(os.path.join(docs_test._ROOT, name))
                ]
    return problems


def test_names_are_defined():
    assert docs_test._problems(undefined_names) == []


def test_gin_bindings_exist():
    assert docs_test._problems(unknown_gin_bindings) == []


def test_globs_match():
    assert docs_test._problems(unmatched_globs) == []


def test_module_docstrings_name_existing_gin_files():
    found = []
    for path in _python_files():
        if path.split(os.sep)[0] in _DOCSTRING_DIRS:
            docstring = module_docstring(_source(path))
            found += [f"{path}: {p}" for p in stale_docstring_gin_paths(docstring)]
    assert found == []


def test_bad_names_are_caught():
    assert undefined_names("`bound_settings()` is their keyword arguments")
    assert undefined_names("`action_vlad.set_stage(model, 2)`")
    assert undefined_names("`video_input.CALL_ARGUMENTS`")
    assert undefined_names("`run_record.input_settings`")
    assert undefined_names("`jsonable_arguments(fn, arguments)`")
    assert undefined_names("`layers.pixels.NOPE`")
    assert not undefined_names("`trainable.set_stage(model, 2)`, `settings.CHANGEABLE`")
    assert not undefined_names("`run_record.recorded_settings`, `endpoints_model(m)`")
    assert not undefined_names("`layers.pixels.INPUT_RULES`, `layers.ReleasePixels`")
    # Other libraries' names, file names and objects' methods are not checked.
    assert not undefined_names("`keras.ops.normalize`, `np.load()`, `gin.REQUIRED`")
    assert not undefined_names("`hasattr(m, 'x')`, `run_record.py`, `model.fit()`")
    # A gin binding is unknown_gin_bindings' to check.
    assert not undefined_names("`evaluate.num_frames`")
    # Only inline spans: a fenced block may show other code.
    assert not undefined_names("```\nbound_settings()\n```\n")


def test_bad_gin_bindings_are_caught():
    assert unknown_gin_bindings("`evaluate.num_frames = 'all'`")
    assert unknown_gin_bindings("""--gin_bindings="evaluate.num_frames='all'\"""")
    assert unknown_gin_bindings("`flow/evaluate.nope = 5`")
    # A call argument: gin refuses to bind it.
    assert unknown_gin_bindings("`make_dataset.data_dir`")
    assert not unknown_gin_bindings(
        "`evaluate.frames = 'all'`, `flow/evaluate.num_crops`"
    )
    assert not unknown_gin_bindings("""--gin_bindings="train.data_dir='data/toy'\"""")
    assert not unknown_gin_bindings(
        "`DATA_DIR`, `train_stream.seed`, `avlad_tf/train.py`"
    )


def test_bad_globs_are_caught():
    assert unmatched_globs("`gin/tableA_*.gin`")
    assert unmatched_globs("`tableA_*.gin`")
    assert unmatched_globs("`gin/{aggregators,nope}_*.gin`")
    assert unmatched_globs("`tests/nope/*_test.py`")
    assert not unmatched_globs(
        "`gin/aggregators_*.gin`, `table2b_*.gin`, `gin/toy/*.gin`"
    )
    # Placeholders besides `*`, and paths outside the repository's folders.
    assert not unmatched_globs("`gin/table<N>_*.gin`, `scores/*.h5`")


def test_bad_docstring_gin_paths_are_caught():
    source = '"""Rows are `gin/tableA_*.gin` and `gin/nope.gin`."""\nimport os\n'
    assert len(stale_docstring_gin_paths(module_docstring(source))) == 2
    source = '# A comment.\n"""`gin/aggregators_*.gin`, `gin/toy/shrink.gin`."""\n'
    assert module_docstring(source).startswith("`gin/aggregators_")
    assert not stale_docstring_gin_paths(module_docstring(source))
    assert not stale_docstring_gin_paths("`gin/table<N>_<what>.gin`, `gin/toy/`")
    assert module_docstring('import os\n"""Not a docstring."""\n') == ""
