"""How a program reports an error: in one line, not a traceback.

`one_line_errors` wraps a program's `main` (`cli.run` applies it): a
configuration, input or usage error, one from the operating system or from
TensorFlow's runtime, and Ctrl-C each print one line that says what to do.
`--verbosity=1` or `AVLAD_TRACEBACK=1` shows the traceback instead, and
`--verbosity` brings back the library logs that a program otherwise keeps
quiet. Importing this module imports no TensorFlow: programs import it
(through `cli`) before `cli.start_quietly` starts TensorFlow.
"""

import errno
import logging
import os
import re
import sys
import warnings

from absl import flags
from absl import logging as absl_logging

# Shows tracebacks (as `--verbosity=1` does).
TRACEBACK_ENV = "AVLAD_TRACEBACK"


def verbose():
    """Whether `--verbosity` is given or `AVLAD_TRACEBACK` set: library logs
    are then not held back."""
    return flags.FLAGS["verbosity"].present or os.environ.get(TRACEBACK_ENV)


def _quiet_libraries():
    """By default a program shows its progress and results, not library
    chatter: absl INFO logs, TensorFlow's Python warnings and deprecation
    notes. `--verbosity=0` or more brings them back."""
    if verbose():
        return
    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    # Beam warns of the options it leaves to the program, which names an
    # unknown one itself.
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning)


def one_line(error):
    """An exception's message on one line (gin adds indented context lines:
    the file, line and binding text)."""
    lines = [line.strip() for line in str(error).splitlines()]
    # gin appends where the call came from, which says nothing to the user.
    return " ".join(
        line for line in lines if line and not line.startswith("In call to")
    )


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
