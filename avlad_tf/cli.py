"""What the gin entry points (train, evaluate, export) share: flags and parsing.

Each of them takes exactly `--gin_file` (repeatable), `--gin_bindings`
(repeatable) and `--workdir`; everything else is a gin binding.
The flags are defined only when a module runs as a program, so entry points
can import each other's libraries (train calls evaluate and export).
"""

import contextlib
import importlib
import importlib.util
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
_CONFIGURABLE_MODULES = ("avlad_tf.training.loop", "avlad_tf.evaluate",
                         "avlad_tf.fuse", "avlad_tf.export")


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
    # empty namespace package (docs/PITFALLS.md 4.1).
    if not hasattr(gin, "configurable"):
        raise ImportError(
            f"`import gin` found {getattr(gin, '__path__', gin)}, not the "
            f"gin-config package; pip install gin-config==0.5.0.")
    # Every configurable a config may bind must exist before gin parses:
    # the training loop, and the steps after training. A module running as
    # `python -m` is `__main__` and has registered its configurables already;
    # importing it again under its own name (here, or by a config's `import`
    # lines, as in every operative_config.gin) would register them twice, so
    # that name is bound to `__main__`.
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    for module in _CONFIGURABLE_MODULES:
        origin = importlib.util.find_spec(module).origin
        if main_file and os.path.samefile(origin, main_file):
            sys.modules.setdefault(module, main)
        else:
            importlib.import_module(module)
    _search_gin_dir_first()
    with _quiet_gin_lookups():
        gin.parse_config_files_and_bindings(
            [resolve_gin_file(f) for f in gin_files], gin_bindings,
            skip_unknown=False)


def define_flags():
    """Defines the three flags; call only under `if __name__ == '__main__'`."""
    flags.DEFINE_multi_string(
        "gin_file", [], "gin config file (repeatable); relative names are "
        "also looked up in the repository's gin/ directory.")
    flags.DEFINE_multi_string(
        "gin_bindings", [], "gin binding, e.g. \"train_stream.batch_size = 2\" "
        "(repeatable; applied after the files).")
    flags.DEFINE_string("workdir", None, "Run directory.", required=True)


def parse_flags_into_gin():
    """Parses the gin flags; returns the workdir."""
    parse_gin(flags.FLAGS.gin_file, flags.FLAGS.gin_bindings)
    return flags.FLAGS.workdir
