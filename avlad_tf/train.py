r"""Trains ActionVLAD from gin configs (ORIGINAL_RELEASE.md Sec. 7).

    python -m avlad_tf.train --gin_file=late_fuse.gin --workdir=runs/hmdb51_s1 \
        --gin_bindings="DATA_DIR='data/hmdb51'"

The README's main command trains both streams of the embedded toy dataset
through both stages, evaluates, fuses, exports and prints a results table:

    python -m avlad_tf.train --gin_file=toy/late_fuse.gin --workdir=runs/toy

`--gin_file` names are looked up in the working directory and then in the
repository's `gin/` directory, so configs work from anywhere. Every tunable
is a gin binding (`--gin_bindings='train_stream.batch_size = 2'`); the
workdir gets `operative_config.gin` and `command.txt`. Restarting the same
command resumes from the last checkpoint.
"""

import contextlib
import importlib
import logging
import os
import shlex
import sys

from absl import app
from absl import flags
import gin

GIN_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "gin")
_FLAG_NAMES = ("gin_file", "gin_bindings", "workdir")
_AFTER_TRAINING_MODULES = ("avlad_tf.evaluate", "avlad_tf.fuse",
                           "avlad_tf.export")


class _DropMissedLookups(logging.Filter):
    """Hides gin's "Path not found" log lines.

    gin tries each search-path prefix in turn (the working directory first)
    and logs an ERROR for every prefix that misses, even when a later one
    (our gin/ directory) holds the file.
    """

    def filter(self, record):
        return not str(record.msg).startswith("Path not found")


@contextlib.contextmanager
def _quiet_gin_lookups():
    log_filter = _DropMissedLookups()
    root = logging.getLogger()
    root.addFilter(log_filter)
    try:
        yield
    finally:
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
        f"{GIN_DIR}; see `ls {GIN_DIR}`.")


def _search_gin_dir_first():
    """Puts `gin/` before the working directory on gin's include path.

    `include 'toy/base.gin'` then always means the repository's file. gin
    only appends search paths, and for a miss in the working directory it
    asks its package-resource reader, which crashes (TypeError) when the
    working directory has a folder of the same name (e.g. `toy/`). gin-config
    is pinned at its last release (0.5.0), so its prefix list is stable.
    """
    prefixes = gin.config._LOCATION_PREFIXES  # pylint: disable=protected-access
    if GIN_DIR in prefixes:
        prefixes.remove(GIN_DIR)
    prefixes.insert(0, GIN_DIR)


def parse_gin(gin_files, gin_bindings):
    """Parses configs strictly, with `gin/` on the search path."""
    # A `gin/` folder in the working directory can shadow the library as an
    # empty namespace package (PITFALLS.md Sec. 12).
    if not hasattr(gin, "configurable"):
        raise ImportError(
            f"`import gin` found {getattr(gin, '__path__', gin)}, not the "
            f"gin-config package; pip install gin-config==0.5.0.")
    from avlad_tf.training import loop  # noqa: F401  registers configurables
    # Steps after training call these; their configurables must exist before
    # gin locks the config. A missing module fails later, with its own error.
    for module in _AFTER_TRAINING_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    _search_gin_dir_first()
    with _quiet_gin_lookups():
        gin.parse_config_files_and_bindings(
            [resolve_gin_file(f) for f in gin_files], gin_bindings,
            skip_unknown=False)


def define_flags():
    """The three flags. Defined only when run as a program, so that other
    entry points (evaluate, export, ...) can import each other's libraries
    without duplicate-flag errors."""
    flags.DEFINE_multi_string(
        "gin_file", [], "gin config file (repeatable); relative names are "
        "also looked up in the repository's gin/ directory.")
    flags.DEFINE_multi_string(
        "gin_bindings", [], "gin binding, e.g. \"train_stream.batch_size = 2\" "
        "(repeatable; applied after the files).")
    flags.DEFINE_string("workdir", None, "Run directory.", required=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    gin_files = list(flags.FLAGS.gin_file)
    gin_bindings = list(flags.FLAGS.gin_bindings)
    workdir = flags.FLAGS.workdir
    # Other entry points (evaluate, export) define flags of the same names
    # when imported, as they are by gin files and after training; ours are
    # read, so release the names.
    for name in _FLAG_NAMES:
        delattr(flags.FLAGS, name)
    parse_gin(gin_files, gin_bindings)
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "command.txt"), "w") as f:
        f.write(shlex.join([sys.executable, "-m", "avlad_tf.train"]
                           + sys.argv[1:]) + "\n")
    from avlad_tf.training import loop
    loop.train(workdir=workdir)
    with open(os.path.join(workdir, "operative_config.gin"), "w") as f:
        f.write(gin.operative_config_str())


if __name__ == "__main__":
    define_flags()
    app.run(main)
