"""What the gin programs (train, evaluate, export) share: start-up, flags, gin.

Each of them takes exactly `--gin_file` (repeatable), `--gin_bindings`
(repeatable) and `--workdir`; everything else is a gin binding. The flags are
defined only when a module runs as a program. The configurables live in
library modules (`training.loop`, `evaluation.scoring`,
`serving.saved_model`, ...), which the `import` lines of `gin/base.gin` and
the programs themselves register. `run` reports a program's errors in one
line (`errors.one_line_errors`).
"""

import contextlib
import functools
import io
import logging
import os
import sys
import tokenize

from absl import flags
import gin

from avlad_tf import errors


def _asked_for_verbosity():
    return any(arg.startswith(("--verbosity", "-v")) for arg in sys.argv[1:])


def _import_tensorflow_quietly():
    """Imports TensorFlow with the process's stderr closed.

    Its C++ start-up lines (CUDA probes on a CPU machine, oneDNN notes) are
    written before its logging is initialised, where TF_CPP_MIN_LOG_LEVEL
    does not reach them (TF 2.21), so only the file descriptor can hold them
    back. An import error is raised after stderr is restored.
    """
    if "tensorflow" in sys.modules:
        return
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401, PLC0415
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def start_quietly():
    """A program's first call, before it imports anything that imports
    TensorFlow: TensorFlow starts with its C++ start-up lines held back.

    Flags are not parsed yet, so `--verbosity` on the command line keeps
    every line. Importing this module does nothing of the kind: only a
    program, run as one, calls this.
    """
    if not _asked_for_verbosity():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # later C++ logs
        _import_tensorflow_quietly()


def _gin_dir():
    """The configs: `avlad_tf/configs/` in a regular install (setup.py copies
    `gin/` there), else the checkout's top-level `gin/` (source or editable)."""
    package = os.path.dirname(os.path.abspath(__file__))
    installed = os.path.join(package, "configs")
    if os.path.isfile(os.path.join(installed, "base.gin")):
        return installed
    return os.path.join(os.path.dirname(package), "gin")


GIN_DIR = _gin_dir()


class _DropMissedLookups(logging.Filter):
    """Hides gin's "Path not found" log lines.

    gin tries each search-path prefix in turn and logs an ERROR for every
    prefix that misses, even when a later one holds the file.
    """

    def filter(self, record):
        return not str(record.msg).startswith("Path not found")


@contextlib.contextmanager
def _configs_first():
    """Parses with `gin/` as the working directory, the caller's after it.

    gin resolves `include 'toy/base.gin'` against its search path, the
    working directory first; and for a miss there its package-resource reader
    crashes (TypeError) when the working directory has a folder of the same
    name (`toy/`). Parsing from `gin/` makes every include of a shipped
    config mean the shipped file; the caller's directory stays on the search
    path (public `gin.add_config_file_search_path`) for configs of their own.
    """
    caller = os.getcwd()
    log_filter = _DropMissedLookups()
    root = logging.getLogger()
    root.addFilter(log_filter)
    gin.add_config_file_search_path(caller)
    os.chdir(GIN_DIR)
    try:
        yield
    finally:
        os.chdir(caller)
        root.removeFilter(log_filter)


def resolve_gin_file(name):
    """`name` as given if it exists, else the file of that name in `gin/`."""
    if os.path.isfile(name):
        return os.path.abspath(name)
    in_repo = os.path.join(GIN_DIR, name)
    if os.path.isfile(in_repo):
        return in_repo
    raise FileNotFoundError(
        f"gin file {name!r} is neither a file (from {os.getcwd()}) nor in "
        f"{GIN_DIR}; see `ls {GIN_DIR}`."
    )


def parse_gin(gin_files, gin_bindings):
    """Parses configs strictly, shipped configs first (`_configs_first`)."""
    # A `gin/` folder in the working directory can shadow the library as an
    # empty namespace package (docs/PITFALLS.md 4.1).
    if not hasattr(gin, "configurable"):
        raise ImportError(
            f"`import gin` found {getattr(gin, '__path__', gin)}, not the "
            f"gin-config package; pip install gin-config==0.5.0."
        )
    files = [resolve_gin_file(f) for f in gin_files]
    _check_gin_syntax(files, gin_bindings)
    with _configs_first():
        gin.parse_config_files_and_bindings(files, gin_bindings, skip_unknown=False)


def _check_gin_syntax(files, bindings):
    """A bracket or quote left open makes gin fail with a bare tokenizer
    error (`EOF in multi-line statement`); this names the binding or file."""
    texts = [(f"binding {b!r}", b) for b in bindings]
    for path in files:
        with open(path, encoding="utf-8") as f:
            texts.append((f"gin file {path}", f.read()))
    for what, text in texts:
        try:
            for _ in tokenize.generate_tokens(io.StringIO(text).readline):
                pass
        except (tokenize.TokenError, SyntaxError) as error:
            message = error.args[0] if error.args else error
            raise ValueError(
                f"gin syntax error in {what}: {message}; check its brackets and quotes."
            ) from error


def bound_or_none(name):
    """The value gin binds to `name` ('evaluate.stream'), or None."""
    try:
        return gin.query_parameter(name)
    except ValueError:
        return None


def no_arguments(argv):
    """Programs take flags only."""
    if len(argv) > 1:
        from absl import app  # pylint: disable=import-outside-toplevel

        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")


def define_flags():
    """Defines the three flags; call only under `if __name__ == '__main__'`.

    They are declared as the running program's own, so `--help` lists them.
    """
    main = dict(module_name=sys.argv[0])
    flags.DEFINE_multi_string(
        "gin_file",
        [],
        "gin config file (repeatable); relative names are "
        "also looked up in the repository's gin/ directory.",
        **main,
    )
    flags.DEFINE_multi_string(
        "gin_bindings",
        [],
        'gin binding, e.g. "train_stream.batch_size = 2" '
        "(repeatable; applied after the files).",
        **main,
    )
    flags.DEFINE_string("workdir", None, "Run directory.", required=True, **main)


def parse_flags_into_gin():
    """Parses the gin flags; returns the workdir."""
    parse_gin(flags.FLAGS.gin_file, flags.FLAGS.gin_bindings)
    return flags.FLAGS.workdir


@contextlib.contextmanager
def root_log_level(level):
    """The root logger at `level` or above inside the block, unless
    `--verbosity` is given (`errors.verbose`)."""
    root = logging.getLogger()
    previous = root.level
    if not errors.verbose():
        root.setLevel(max(level, previous))
    try:
        yield
    finally:
        root.setLevel(previous)


def run(main, *, pass_unknown=False):
    """`app.run` of a program's `main` with `errors.one_line_errors`; `--help`
    lists the program's flags and exits 0 (absl exits 1). With
    `pass_unknown`, flags the program does not define reach `main` in `argv`
    (for another library's options, e.g. Beam's) instead of failing."""
    from absl import app  # pylint: disable=import-outside-toplevel

    parser = app.parse_flags_with_usage
    if pass_unknown:
        parser = functools.partial(flags.FLAGS, known_only=True)
    try:
        app.run(errors.one_line_errors(main), flags_parser=parser)
    except SystemExit as exit_:
        helps = ("--help", "-h", "-?", "--helpshort", "--helpfull")
        if exit_.code == 1 and any(arg in helps for arg in sys.argv[1:]):
            raise SystemExit(0) from None
        raise
