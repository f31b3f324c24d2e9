"""Every command and path the README and docs/ name exists in the repository.

For README.md and docs/*.md (not docs/RELEASE.md, which describes the files
of the original release, not of this repository):

* `python -m <module>` names a module of the repository (`a/b.py` or a
  package `a/b/__init__.py`), apart from a few third-party tools;
* `python <path>.py` names a script of the repository;
* `--gin_file=<name>` names a config in gin/ (or a repository path);
* a backticked path under one of the repository's top-level folders
  (`avlad_tf/`, `data_prep/`, `gin/`, `docs/`, `tests/`, `bench/`,
  `experiments/`) exists, and so does a backticked gin file name
  (`rgb.gin`, `toy/late_fuse.gin`, in gin/);
* a backticked dotted name `avlad_tf.x.y` is a module of the repository or a
  name that module defines;
* a relative markdown link `[text](target)` points at something that exists;
* a backticked `module.name`, `module` being a module or package of the
  repository by its last name (`video_input.make_dataset`,
  `layers.pixels.INPUT_RULES`), is defined or imported by that module, and a
  backticked `name()` or `name(args)` is a `def`, `class` or `name =` of the
  repository's Python (other libraries' names: a short allow-list);
* a gin binding `configurable.argument`, backticked or in `--gin_bindings`,
  names an argument of a configurable of `settings.configurable` that gin
  may bind (not a `call` argument);
* a backticked path glob (`gin/aggregators_*.gin`, `table2b_*.gin`) matches
  at least one file.

The module docstrings of avlad_tf/, data_prep/ and experiments/ are checked
for backticked `gin/...` paths and globs the same way.

`{a,b}` alternatives are expanded and each checked; a name with a
placeholder (`<...>`, `*`, `…`, `...`, `$X`, a bare `N` as in `splitN`) is
skipped (a glob's `*` apart). The checks are plain functions of a text, so
the last tests feed them bad names and check that they are caught. Files
only: the repository's Python is read as text, never imported, so this runs
in well under a second.
"""

import functools
import glob
import os
import re

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_GIN = os.path.join(_ROOT, "gin")
# Top-level folders whose backticked paths must exist.
_PREFIXES = (
    "avlad_tf/",
    "data_prep/",
    "gin/",
    "docs/",
    "tests/",
    "bench/",
    "experiments/",
)
_PACKAGES = ("avlad_tf", "data_prep", "experiments", "bench", "tests")
# `python -m` modules that are not the repository's.
_THIRD_PARTY = {"pytest", "pip", "venv"}
# Files a run writes into its workdir, not configs of gin/.
_WORKDIR_GIN = {"operative_config.gin", "training_config.gin"}
# Documents about other repositories' files.
_NOT_CHECKED = {"docs/RELEASE.md"}
# Paths that exist only in a regular install (setup.py copies gin/ there).
_INSTALLED = {"avlad_tf/configs/", "avlad_tf/configs"}

_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_SPAN = re.compile(r"`([^`]+)`")
_PYTHON_M = re.compile(r"\bpython3? -m ([A-Za-z_][\w.]*)")
_PYTHON_SCRIPT = re.compile(r"\bpython3? ((?:[\w.-]+/)*[\w.-]+\.py)\b")
_GIN_FILE = re.compile(r"--gin_file[= ]([^\s`\\'\"),]+)")
_DOTTED = re.compile(
    r"(?<![\w./-])((?:" + "|".join(_PACKAGES) + r")(?:\.[A-Za-z_]\w*)+)"
)
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_PLACEHOLDER = re.compile(r"[<>*$…]|\.\.\.|(?:^|[/_a-z0-9])N(?=$|[._/-])")
_STRIP = "()[]{},.;:'\"!?"


def doc_files():
    """README.md and docs/*.md, as repository-relative paths."""
    docs = sorted(
        os.path.relpath(p, _ROOT)
        for p in glob.glob(os.path.join(_ROOT, "docs", "*.md"))
    )
    return [p for p in ["README.md"] + docs if p not in _NOT_CHECKED]


def _read(path):
    with open(os.path.join(_ROOT, path), encoding="utf-8") as f:
        return f.read()


def _expand(name):
    """`a_{x,y}.gin` -> `a_x.gin`, `a_y.gin` (every brace group)."""
    match = re.search(r"\{([^{}]*)\}", name)
    if not match:
        return [name]
    return [
        expanded
        for option in match.group(1).split(",")
        for expanded in _expand(name[: match.start()] + option + name[match.end() :])
    ]


def _names(raw):
    """The concrete names `raw` stands for, or [] for a placeholder."""
    names = _expand(raw)
    if any(_PLACEHOLDER.search(n) for n in names):
        return []
    return names


def _inline_spans(text):
    """The text of every inline code span outside fenced code blocks."""
    return _SPAN.findall(_FENCE.sub("", text))


def _tokens(span):
    """The words of a code span (split at spaces and `=`), outer punctuation
    off; a brace group keeps its commas (`{rgb,flow}`)."""
    for word in re.split(r"[\s=]+", span):
        word = word.strip(_STRIP) if "{" not in word else word.strip("()[],.;:")
        if word:
            yield word


def _module_file(dotted):
    """The file of module `a.b.c` in the repository, or None."""
    base = os.path.join(_ROOT, *dotted.split("."))
    for candidate in (
        base + ".py",
        os.path.join(base, "__init__.py"),
        os.path.join(base, "__main__.py"),
    ):
        if os.path.isfile(candidate):
            return candidate
    return None


def _defines(module_file, name):
    """Whether a module's source defines or imports `name` at any level."""
    with open(module_file, encoding="utf-8") as f:
        source = f.read()
    pattern = (
        rf"^\s*(?:async\s+)?(?:def|class)\s+{name}\b"
        rf"|^\s*{name}\s*(?::[^=\n]*)?="
        rf"|^\s*(?:from\s+\S+\s+)?import\s+[^\n]*\b{name}\b"
    )
    return re.search(pattern, source, re.MULTILINE) is not None


def missing_modules(text):
    """`python -m X` where X is neither the repository's nor a known tool."""
    problems = []
    for module in _PYTHON_M.findall(text):
        module = module.rstrip(".")
        if module.split(".")[0] in _THIRD_PARTY:
            continue
        if _module_file(module) is None:
            problems.append(
                f"python -m {module}: no module "
                f"{module.replace('.', '/')}.py in the repository"
            )
    return problems


def missing_scripts(text):
    """`python path/x.py` where the script does not exist."""
    return [
        f"python {script}: no such file"
        for script in _PYTHON_SCRIPT.findall(text)
        if not _PLACEHOLDER.search(script)
        and not os.path.isfile(os.path.join(_ROOT, script))
    ]


def _gin_exists(name):
    return os.path.isfile(os.path.join(_GIN, name)) or os.path.isfile(
        os.path.join(_ROOT, name)
    )


def missing_gin_files(text):
    """`--gin_file=X` where X is neither in gin/ nor a repository path."""
    return [
        f"--gin_file={name}: not in gin/"
        for raw in _GIN_FILE.findall(text)
        for name in _names(raw)
        if not _gin_exists(name)
    ]


def missing_paths(text):
    """Backticked repository paths and gin file names that do not exist."""
    problems = []
    for span in _inline_spans(text):
        for token in _tokens(span):
            for name in _names(token):
                if name in _INSTALLED:
                    continue
                if name.startswith(_PREFIXES):
                    if not os.path.exists(os.path.join(_ROOT, name)):
                        problems.append(f"`{name}` does not exist")
                elif name.endswith(".gin") and name not in _WORKDIR_GIN:
                    folder = name.split("/")[0]
                    in_gin = "/" not in name or os.path.isdir(
                        os.path.join(_GIN, folder)
                    )
                    if in_gin and not os.path.isfile(os.path.join(_GIN, name)):
                        problems.append(f"`{name}` is not in gin/")
    return problems


def missing_dotted_names(text):
    """Backticked `avlad_tf.x.y` that is neither a module nor a name in one."""
    problems = []
    for span in _inline_spans(text):
        for dotted in _DOTTED.findall(span):
            parts = dotted.split(".")
            # The longest prefix that is a module; the next part must be a
            # name it defines (further parts are attributes of that name).
            for end in range(len(parts), 0, -1):
                module_file = _module_file(".".join(parts[:end]))
                if module_file:
                    break
            else:
                problems.append(f"`{dotted}`: no such module")
                continue
            if end < len(parts) and not _defines(module_file, parts[end]):
                problems.append(
                    f"`{dotted}`: {os.path.relpath(module_file, _ROOT)} "
                    f"does not define {parts[end]}"
                )
    return problems


def broken_links(text, doc="README.md"):
    """Relative markdown link targets that do not exist (from `doc`'s folder)."""
    problems = []
    folder = os.path.dirname(os.path.join(_ROOT, doc))
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = target.split("#")[0]
        if not os.path.exists(os.path.normpath(os.path.join(folder, path))):
            problems.append(f"link ({target}) does not exist from {doc}")
    return problems


# ---- Names: what a backticked `module.name` or `name()` stands for ----------

# Where the repository's Python lives (definitions are looked up here), and
# where module docstrings are checked for gin paths.
_SOURCE_DIRS = _PACKAGES
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
        for folder, dirs, files in os.walk(os.path.join(_ROOT, top)):
            dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "configs"))
            found += [
                os.path.relpath(os.path.join(folder, f), _ROOT)
                for f in sorted(files)
                if f.endswith(".py")
            ]
    return tuple(found)


@functools.cache
def _source(path):
    return _read(path)


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
            if os.path.isfile(os.path.join(_ROOT, sub)):
                return _module_defines(sub, parts[1:])
    return _defines(os.path.join(_ROOT, path), parts[0])


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
    for span in _inline_spans(text):
        for dotted, call in _NAME.findall(span):
            parts = dotted.split(".")
            if parts[0] in _PACKAGES or parts[0] in _FOREIGN_ROOTS:
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
    for span in _inline_spans(text):
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
    if pattern.startswith(_PREFIXES):
        where = [os.path.join(_ROOT, pattern)]
    elif pattern.endswith(".gin"):
        where = [os.path.join(_GIN, pattern), os.path.join(_ROOT, pattern)]
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
    names = _expand(raw)
    if any(_PLACEHOLDER.search(n.replace("*", "")) for n in names):
        return []
    return names


def unmatched_globs(text):
    """Backticked path globs (`gin/aggregators_*.gin`, `table2b_*.gin`) that
    match no file."""
    problems = []
    for span in _inline_spans(text):
        for token in _tokens(span):
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
    for span in _SPAN.findall(docstring):
        for token in _tokens(span):
            if not token.startswith("gin/"):
                continue
            if "*" in token:
                problems += filter(None, map(_glob_problem, _glob_names(token)))
            else:
                problems += [
                    f"`{name}` does not exist"
                    for name in _names(token)
                    if not os.path.exists(os.path.join(_ROOT, name))
                ]
    return problems


def _problems(check):
    found = []
    for doc in doc_files():
        text = _read(doc)
        problems = check(text, doc) if check is broken_links else check(text)
        found += [f"{doc}: {problem}" for problem in problems]
    return found


def test_docs_are_checked():
    docs = doc_files()
    for doc in (
        "README.md",
        "docs/DATA_PREP.md",
        "docs/INPUT_PIPELINE.md",
        "docs/TRAINING.md",
        "docs/EVALUATION.md",
        "docs/SERVING.md",
        "docs/RELEASE_MODELS.md",
        "docs/VISUALIZATION.md",
        "docs/PERFORMANCE.md",
        "docs/DEVIATIONS.md",
        "docs/PARITY.md",
        "docs/CONTRACTS.md",
    ):
        assert doc in docs
    assert "docs/RELEASE.md" not in docs


def test_python_modules_exist():
    assert _problems(missing_modules) == []


def test_scripts_exist():
    assert _problems(missing_scripts) == []


def test_gin_files_exist():
    assert _problems(missing_gin_files) == []


def test_paths_exist():
    assert _problems(missing_paths) == []


def test_dotted_names_exist():
    assert _problems(missing_dotted_names) == []


def test_links_resolve():
    assert _problems(broken_links) == []


def test_names_are_defined():
    assert _problems(undefined_names) == []


def test_gin_bindings_exist():
    assert _problems(unknown_gin_bindings) == []


def test_globs_match():
    assert _problems(unmatched_globs) == []


def test_module_docstrings_name_existing_gin_files():
    found = []
    for path in _python_files():
        if path.split(os.sep)[0] in _DOCSTRING_DIRS:
            docstring = module_docstring(_source(path))
            found += [f"{path}: {p}" for p in stale_docstring_gin_paths(docstring)]
    assert found == []


def test_readme_keeps_the_quick_start():
    """Two `pip install` lines in the first block after `## Quick start`."""
    text = _read("README.md")
    block = text[text.index("## Quick start") :].split("```")[1]
    lines = [line for line in block.splitlines() if line.startswith("pip install")]
    assert len(lines) == 2
    assert "python -m avlad_tf.train --gin_file=toy/late_fuse.gin" in lines[0]
    assert "python -m pytest" in lines[1]


def test_bad_modules_are_caught():
    assert missing_modules("python -m avlad_tf.nope --workdir=w")
    assert missing_modules("`python -m data_prep.prepared`")
    assert not missing_modules("python -m avlad_tf.train --workdir=w")
    assert not missing_modules("python -m experiments.run_table --table=2b")
    assert not missing_modules("python -m pytest -n 2 -q")


def test_bad_scripts_are_caught():
    assert missing_scripts("python bench/nope.py --workers=2")
    assert not missing_scripts("python bench/flow.py --workers=2")


def test_bad_gin_files_are_caught():
    assert missing_gin_files("--gin_file=nope.gin")
    assert missing_gin_files("--gin_file=toy/nope.gin --workdir=w")
    assert missing_gin_files("--gin_file=table1_{rgb,nope}.gin")
    assert not missing_gin_files("--gin_file=toy/late_fuse.gin")
    assert not missing_gin_files("--gin_file=base.gin")
    assert not missing_gin_files("--gin_file=$W/operative_config.gin")


def test_bad_paths_are_caught():
    assert missing_paths("see `avlad_tf/nope.py`.")
    assert missing_paths("(`gin/table1_two_stream_{rgb,nope}.gin`)")
    assert missing_paths("`table9_nope.gin`")
    assert missing_paths("`toy/nope.gin`")
    # `docs/` names built in pieces: docs_references_test checks this file.
    assert missing_paths("`bench/flow.py --workers=N` and `docs" + "/NOPE.md`")
    assert not missing_paths("`avlad_tf/data/schema.py`, `tests/release/`")
    assert not missing_paths("`gin/table1_two_stream_{rgb,flow}.gin`")
    assert not missing_paths("`rgb.gin`, `toy/late_fuse.gin`, `operative_config.gin`")
    # Placeholders are not checked.
    assert not missing_paths("`gin/table<N>_<what>.gin`, `gin/toy/*.gin`")
    assert not missing_paths("`data_prep/lists/<dataset>`, `tests/x_splitN.txt`")
    # Only inline spans: paths in fenced blocks may be outputs.
    assert not missing_paths("```\nls experiments/results/nope\n```\n")


def test_bad_dotted_names_are_caught():
    assert missing_dotted_names("`avlad_tf.nope`")
    assert missing_dotted_names("`avlad_tf.evaluate.evaluate(workdir=w)`")
    assert missing_dotted_names("`avlad_tf.data.video_input.make_datasets`")
    assert not missing_dotted_names("`avlad_tf.evaluation.scoring.evaluate(workdir=w)`")
    assert not missing_dotted_names("`avlad_tf.data.video_input.make_dataset`")
    assert not missing_dotted_names("`avlad_tf.kmeans` and `data_prep.toy`")


def test_bad_links_are_caught():
    assert broken_links("[x](nope.md)", "docs/TRAINING.md")
    assert broken_links("![f](docs" + "/figures/nope.png)", "README.md")
    assert broken_links("[x](docs/TRAINING.md)", "docs/EVALUATION.md")
    assert not broken_links("[x](TRAINING.md#resume)", "docs/EVALUATION.md")
    assert not broken_links("[x](docs/TRAINING.md)", "README.md")
    assert not broken_links("[x](https://github.com/a/b)", "README.md")


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
