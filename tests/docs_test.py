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
