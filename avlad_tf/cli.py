"""What the gin programs (train, evaluate, export) share: flags, parsing, errors.

Each of them takes exactly `--gin_file` (repeatable), `--gin_bindings`
(repeatable) and `--workdir`; everything else is a gin binding. The flags are
defined only when a module runs as a program. The configurables live in
library modules (`training.loop`, `evaluation`, `exporting`, ...), which the
`import` lines of `gin/base.gin` and the programs themselves register.
"""

import contextlib
import logging
import os
import sys

from absl import flags

import gin


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
    with _configs_first():
        gin.parse_config_files_and_bindings(files, gin_bindings, skip_unknown=False)


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
    """Defines the three flags; call only under `if __name__ == '__main__'`."""
    flags.DEFINE_multi_string(
        "gin_file",
        [],
        "gin config file (repeatable); relative names are "
        "also looked up in the repository's gin/ directory.",
    )
    flags.DEFINE_multi_string(
        "gin_bindings",
        [],
        'gin binding, e.g. "train_stream.batch_size = 2" '
        "(repeatable; applied after the files).",
    )
    flags.DEFINE_string("workdir", None, "Run directory.", required=True)


def parse_flags_into_gin():
    """Parses the gin flags; returns the workdir."""
    parse_gin(flags.FLAGS.gin_file, flags.FLAGS.gin_bindings)
    return flags.FLAGS.workdir


def one_line_errors(main):
    """Wraps a program's `main`: a configuration or input error is one line.

    The traceback is printed too with `--verbosity=1` or more, or with the
    environment variable `AVLAD_TRACEBACK=1`.
    """

    def wrapped(argv):
        try:
            return main(argv)
        except (
            ValueError,
            FileNotFoundError,
            NotADirectoryError,
            IsADirectoryError,
            PermissionError,
        ) as error:
            if flags.FLAGS.verbosity >= 1 or os.environ.get("AVLAD_TRACEBACK"):
                raise
            program = os.path.basename(sys.argv[0]).removesuffix(".py")
            sys.exit(f"{program}: error: {error}")

    return wrapped
