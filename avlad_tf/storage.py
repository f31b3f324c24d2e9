"""Files at any path: a local path or a URL (`gs://`, `s3://`, `hdfs://`,
TensorFlow's in-memory `ram://`), read and written one way everywhere
(docs/STORAGE.md).

A local path goes through `os` and `open`, as before; a URL through
`tf.io.gfile`, imported only then, so code that never meets a URL runs
without TensorFlow (the JAX machine, tests/no_tensorflow/). Libraries that
can only take a local file (OpenCV, h5py, NumPy's `.npy`) get one from
`local_input` and `local_output`, which stage a URL through a local temporary
file and remove it after use.

Writes are never seen half done: `replacing` writes a temporary file with a
name of its own (per process and attempt, so two attempts at one file, as a
speculative or retried runner makes, never interleave) and renames it over
the final name once complete. On POSIX and `ram://` the rename is atomic; on
an object store it is a server-side copy, and an object appears only whole,
so the final name again never holds part of a file; a run killed between the
copy and the delete leaves a stray temporary file, never a wrong final one.
"""

import contextlib
import os
import posixpath
import shutil
import tempfile
import uuid

TEMPORARY = ".tmp"  # every temporary name holds this before its own suffix


def is_local(path):
    """True for a local path (no scheme, or `file://`)."""
    path = os.fspath(path)
    return "://" not in path or path.startswith("file://")


def _local(path):
    path = os.fspath(path)
    return path[len("file://") :] if path.startswith("file://") else path


def _gfile(path):
    try:
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
    except ImportError as e:
        raise RuntimeError(
            f"{path}: paths that are URLs are read through TensorFlow's "
            f"tf.io.gfile; install tensorflow to use them, or give a local path."
        ) from e
    return tf.io.gfile


def join(path, *parts):
    """`os.path.join` for local paths; '/'-joined for URLs."""
    if is_local(path):
        return os.path.join(path, *parts)
    return posixpath.join(os.fspath(path), *parts)


def dirname(path):
    return os.path.dirname(path) if is_local(path) else posixpath.dirname(path)


def exists(path):
    return os.path.exists(_local(path)) if is_local(path) else _gfile(path).exists(path)


def isdir(path):
    return os.path.isdir(_local(path)) if is_local(path) else _gfile(path).isdir(path)


def makedirs(path):
    """Makes `path` and its parents; nothing if it exists."""
    if is_local(path):
        os.makedirs(_local(path), exist_ok=True)
    else:
        _gfile(path).makedirs(path)


def listdir(path):
    """The names in directory `path`, sorted, without trailing '/'."""
    if is_local(path):
        return sorted(os.listdir(_local(path)))
    return sorted(name.rstrip("/") for name in _gfile(path).listdir(path))


def glob(pattern):
    """The paths matching `pattern`, sorted."""
    if is_local(pattern):
        import glob as globbing  # pylint: disable=import-outside-toplevel

        return sorted(globbing.glob(_local(pattern)))
    return sorted(_gfile(pattern).glob(pattern))


def size(path):
    """The size of file `path` in bytes."""
    if is_local(path):
        return os.path.getsize(_local(path))
    return _gfile(path).stat(path).length


def remove(path):
    """Removes file `path`; nothing if it does not exist."""
    if is_local(path):
        with contextlib.suppress(FileNotFoundError):
            os.remove(_local(path))
    elif _gfile(path).exists(path):
        _gfile(path).remove(path)


def rmtree(path):
    """Removes directory `path` and everything under it, if it exists."""
    if is_local(path):
        shutil.rmtree(_local(path), ignore_errors=True)
    elif _gfile(path).exists(path):
        _gfile(path).rmtree(path)


def rename(source, target):
    """Moves `source` over `target` (replacing it)."""
    if is_local(source) and is_local(target):
        os.replace(_local(source), _local(target))
    else:
        _gfile(target).rename(source, target, overwrite=True)


def copy(source, target):
    """Copies file `source` to `target` (replacing it), either local or a URL."""
    if is_local(source) and is_local(target):
        shutil.copyfile(_local(source), _local(target))
    else:
        _gfile(target).copy(source, target, overwrite=True)


def open_file(path, mode="r", *, encoding=None):
    """A file object for `path`; text modes are UTF-8 unless told."""
    if is_local(path):
        if "b" not in mode:
            encoding = encoding or "utf-8"
        return open(_local(path), mode, encoding=encoding)  # noqa: SIM115
    return _gfile(path).GFile(path, mode)


def read_bytes(path):
    with open_file(path, "rb") as f:
        return f.read()


def read_text(path):
    with open_file(path) as f:
        return f.read()


def temporary_name(path, suffix=""):
    """A name beside `path` that no other process or attempt uses."""
    token = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    return f"{os.fspath(path)}{TEMPORARY}-{token}{suffix}"


@contextlib.contextmanager
def replacing(path, *, suffix=""):
    """Yields a temporary path beside `path` (`temporary_name`, ending in
    `suffix`) to write; once the block ends it replaces `path` by a rename, so
    no reader sees half a file. On an error the temporary file is removed and
    `path` is left as it was."""
    tmp = temporary_name(path, suffix)
    try:
        yield tmp
        rename(tmp, path)
    except BaseException:
        remove(tmp)
        raise


@contextlib.contextmanager
def local_input(path, *, suffix=None):
    """Yields a local path with the contents of `path`: `path` itself when
    local, else a temporary copy (with `path`'s extension, which decoders
    read), removed when the block ends."""
    if is_local(path):
        yield _local(path)
        return
    suffix = posixpath.splitext(path)[1] if suffix is None else suffix
    with tempfile.TemporaryDirectory(prefix="avlad_tf-") as folder:
        local = os.path.join(folder, "input" + suffix)
        copy(path, local)
        yield local


@contextlib.contextmanager
def local_output(path, *, suffix=None):
    """Yields a local path to write; when the block ends its file replaces
    `path` whole (`replacing`), whether `path` is local or a URL."""
    suffix = posixpath.splitext(path)[1] if suffix is None else suffix
    if is_local(path):
        with replacing(path, suffix=suffix) as tmp:
            yield tmp
        return
    with tempfile.TemporaryDirectory(prefix="avlad_tf-") as folder:
        local = os.path.join(folder, "output" + suffix)
        yield local
        with replacing(path, suffix=suffix) as tmp:
            copy(local, tmp)
