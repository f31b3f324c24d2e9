"""What the gin programs (train, evaluate, export) share: flags, parsing, errors.

Each of them takes exactly `--gin_file` (repeatable), `--gin_bindings`
(repeatable) and `--workdir`; everything else is a gin binding. The flags are
defined only when a module runs as a program. The configurables live in
library modules (`training.loop`, `evaluation.scoring`,
`serving.saved_model`, ...), which the `import` lines of `gin/base.gin` and
the programs themselves register.
"""

import contextlib
import errno
import functools
import io
import logging
import os
import re
import sys
import tokenize
import warnings

from absl import flags
from absl import logging as absl_logging
import gin

# Shows tracebacks (as `--verbosity=1` does).
TRACEBACK_ENV = "AVLAD_TRACEBACK"


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


def _verbose():
    return flags.FLAGS["verbosity"].present or os.environ.get(TRACEBACK_ENV)


def _quiet_libraries():
    """By default a program shows its progress and results, not library
    chatter: absl INFO logs, TensorFlow's Python warnings and deprecation
    notes. `--verbosity=0` or more brings them back."""
    if _verbose():
        return
    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    # Beam warns of the options it leaves to the program, which names an
    # unknown one itself.
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning)


@contextlib.contextmanager
def root_log_level(level):
    """The root logger at `level` or above inside the block, unless
    `--verbosity` is given (`_quiet_libraries`)."""
    root = logging.getLogger()
    previous = root.level
    if not _verbose():
        root.setLevel(max(level, previous))
    try:
        yield
    finally:
        root.setLevel(previous)


def one_line(error):
    """An exception's message on one line (gin adds indented context lines:
    the file, line and binding text)."""
    lines = [line.strip() for line in str(error).splitlines()]
    # gin appends where the call came from, which says nothing to the user.
    return " ".join(
        line for line in lines if line and not line.startswith("In call to")
    )


def run(main, *, pass_unknown=False):
    """`app.run` of a program's `main` with `one_line_errors`; `--help`
    lists the program's flags and exits 0 (absl exits 1). With
    `pass_unknown`, flags the program does not define reach `main` in `argv`
    (for another library's options, e.g. Beam's) instead of failing."""
    from absl import app  # pylint: disable=import-outside-toplevel

    parser = app.parse_flags_with_usage
    if pass_unknown:
        parser = functools.partial(flags.FLAGS, known_only=True)
    try:
        app.run(one_line_errors(main), flags_parser=parser)
    except SystemExit as exit_:
        helps = ("--help", "-h", "-?", "--helpshort", "--helpfull")
        if exit_.code == 1 and any(arg in helps for arg in sys.argv[1:]):
            raise SystemExit(0) from None
        raise


# What to do about an operating-system error, by errno.
_OS_HINTS = {
    errno.EACCES: "; check that the directory is writable",
    errno.EPERM: "; check that the directory is writable",
    errno.EROFS: "; the filesystem is read-only: choose a writable directory",
    errno.ENOSPC: "; the disk is full: free space (or choose another disk) and rerun",
}


def _os_hint(error):
    return _OS_HINTS.get(getattr(error, "errno", None), "")


# Lines of a TensorFlow runtime error that locate it in the graph, which
# says nothing to the user.
_GRAPH_CONTEXT = (
    "Graph execution error",
    "Detected at node",
    "<stack traces",
    "[[",
    'File "',
)
# A multi-worker job whose other worker died: what to do.
_LOST_WORKER = (
    "; a worker of the multi-worker job stopped: start the same command on "
    "every worker again, and they resume from the chief's last checkpoint"
)


def tensorflow_message(error):
    """The one line of a TensorFlow runtime error (`tf.errors.OpError`: a
    shard's count check, a full disk while saving a checkpoint), or None
    for any other exception. TensorFlow is not imported here: the programs
    that run on JAX share this module."""
    if not any(
        c.__name__ == "OpError" and c.__module__.startswith("tensorflow")
        for c in type(error).__mro__
    ):
        return None
    message = getattr(error, "message", "") or str(error)
    # A failed `tf.debugging.Assert` holds the project's own message.
    asserted = re.search(r"assertion failed: \[(.*?)\](?:\n| \[|$)", message, re.S)
    if asserted:
        return asserted.group(1).replace('\\"', '"')
    lines = [line.strip() for line in message.splitlines()]
    text = " ".join(l for l in lines if l and not l.startswith(_GRAPH_CONTEXT))
    text = re.sub(r"\s*\[Op:[^\]]*\]$", "", text)
    text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", text)
    if "No space left on device" in text:
        text += _OS_HINTS[errno.ENOSPC]
    if "/job:worker" in text:  # a collective op lost a worker of the job
        text += _LOST_WORKER
    return text


def one_line_errors(main):
    """Wraps a program's `main`: errors and Ctrl-C are one line each.

    A configuration, input or usage error, or one from the operating system
    (a read-only or full disk) or TensorFlow's runtime (a corrupt shard, a
    full disk while saving), prints `<program>: error: <message>` (exit
    1; a usage error points to `--help` instead of printing every flag);
    Ctrl-C prints where the work stopped and that the same command resumes
    (exit 130). The traceback is printed too with `--verbosity=1` or
    more, or with the environment variable `AVLAD_TRACEBACK=1`. Library logs
    are quiet unless `--verbosity` is given (`_quiet_libraries`).
    """

    def wrapped(argv):
        from absl import app  # pylint: disable=import-outside-toplevel

        _quiet_libraries()
        program = os.path.basename(sys.argv[0]).removesuffix(".py")
        show = flags.FLAGS.verbosity >= 1 or os.environ.get(TRACEBACK_ENV)
        try:
            return main(argv)
        except KeyboardInterrupt as interrupt:
            if show:
                raise
            where = f" ({interrupt})" if str(interrupt) else ""
            print(
                f"\n{program}: interrupted{where}; run the same command again "
                f"to resume.",
                file=sys.stderr,
            )
            sys.exit(130)
        except app.UsageError as error:
            # absl would print the whole flag list before the message.
            sys.exit(f"{program}: error: {one_line(error)} (see --help)")
        except (ValueError, OSError) as error:
            if show:
                raise
            sys.exit(f"{program}: error: {one_line(error)}{_os_hint(error)}")
        except Exception as error:  # pylint: disable=broad-except
            message = tensorflow_message(error)
            if show or message is None:
                raise
            sys.exit(f"{program}: error: {message}")

    return wrapped
