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

import collections
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


def absolute(path):
    """`os.path.abspath` of a local path; a URL as it is (already absolute)."""
    return os.path.abspath(_local(path)) if is_local(path) else os.fspath(path)


def make_parent(path):
    """Makes the folder that will hold file `path`, if it has one."""
    makedirs(dirname(absolute(path)))


def exists(path):
    return os.path.exists(_local(path)) if is_local(path) else _gfile(path).exists(path)


def isdir(path):
    return os.path.isdir(_local(path)) if is_local(path) else _gfile(path).isdir(path)


def isfile(path):
    return exists(path) and not isdir(path)


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


def walk(top):
    """`(folder, subfolders, files)` of `top` and every folder under it, top
    down, names sorted, as `os.walk`."""
    if is_local(top):
        walked = os.walk(_local(top))
    else:
        walked = _gfile(top).walk(top)
    for folder, subfolders, files in walked:
        subfolders.sort()  # in place: os.walk descends in this order
        yield folder, subfolders, sorted(files)


def size(path):
    """The size of file `path` in bytes."""
    if is_local(path):
        return os.path.getsize(_local(path))
    return _gfile(path).stat(path).length


Stat = collections.namedtuple("Stat", ["size", "mtime_ns", "is_directory"])


def stat(path):
    """`Stat` of `path` (`ram://` keeps no times: 0); FileNotFoundError if
    it does not exist, whether local or a URL."""
    if is_local(path):
        result = os.stat(_local(path))
        return Stat(result.st_size, result.st_mtime_ns, os.path.isdir(_local(path)))
    gfile = _gfile(path)
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    try:
        result = gfile.stat(path)
    except tf.errors.NotFoundError as e:
        raise FileNotFoundError(f"{path}: no such file or folder") from e
    return Stat(result.length, result.mtime_nsec, result.is_directory)


def process_local(path):
    """True for `ram://`, whose files only the process that wrote them sees."""
    return os.fspath(path).startswith("ram://")


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
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        try:
            _gfile(path).rmtree(path)
        except tf.errors.NotFoundError:
            # ram:// matches names by prefix: it raises after deleting when
            # a sibling's name begins with this one's (`run`, `run2`).
            if _gfile(path).glob(join(path, "*")):
                raise


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


def write_text(path, text):
    """Writes `text` (UTF-8) at `path` whole (`replacing`)."""
    with replacing(path) as tmp, open_file(tmp, "w") as f:
        f.write(text)


def extensions(path):
    """Every extension of `path`'s name: '.weights.h5' for 'rgb.weights.h5',
    which Keras reads differently from '.h5'."""
    name = posixpath.basename(os.fspath(path))
    dot = name.find(".", 1)
    return name[dot:] if dot > 0 else ""


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
def replacing_directory(path):
    """Yields a temporary directory beside `path` to fill, which then takes
    `path`'s place: locally by renames (never seen half written); on a URL
    (no directory rename) file by file, deepest first, so a top-level index
    (a SavedModel's `saved_model.pb`) comes last. On an error the temporary
    directory is removed and `path` is left as it was."""
    # A hidden name that does not begin with `path`'s (ram://, above).
    hidden = join(dirname(path), "." + posixpath.basename(os.fspath(path)))
    tmp = temporary_name(hidden)
    try:
        yield tmp
        if is_local(path):
            old = temporary_name(hidden) if exists(path) else None
            if old:
                os.replace(_local(path), _local(old))
            os.replace(_local(tmp), _local(path))
            if old:
                rmtree(old)
            return
        moves = []
        for folder, _, files in walk(tmp):
            inside = folder[len(tmp) :].strip("/")
            moves += [(inside.count("/") + bool(inside), inside, f) for f in files]
        rmtree(path)
        for _, inside, name in sorted(moves, key=lambda m: -m[0]):
            makedirs(join(path, inside))
            rename(join(tmp, inside, name), join(path, inside, name))
        rmtree(tmp)
    except BaseException:
        rmtree(tmp)
        raise


@contextlib.contextmanager
def local_input(path, *, suffix=None):
    """Yields a local path with the contents of `path`: `path` itself when
    local, else a temporary copy (with `path`'s extensions, which decoders
    read), removed when the block ends."""
    if is_local(path):
        yield _local(path)
        return
    suffix = extensions(path) if suffix is None else suffix
    with tempfile.TemporaryDirectory(prefix="avlad_tf-") as folder:
        local = os.path.join(folder, "input" + suffix)
        copy(path, local)
        yield local


@contextlib.contextmanager
def local_output(path, *, suffix=None):
    """Yields a local path to write; when the block ends its file replaces
    `path` whole (`replacing`), whether `path` is local or a URL."""
    suffix = extensions(path) if suffix is None else suffix
    if is_local(path):
        with replacing(path, suffix=suffix) as tmp:
            yield tmp
        return
    with tempfile.TemporaryDirectory(prefix="avlad_tf-") as folder:
        local = os.path.join(folder, "output" + suffix)
        yield local
        with replacing(path, suffix=suffix) as tmp:
            copy(local, tmp)
