"""Reads the release's k-means pickles without scikit-learn (docs/RELEASE.md Sec. 8).

The release stores its NetVLAD initial centres as a whole scikit-learn 0.17
`KMeans` object, pickled by Python 2 `cPickle` with protocol 0
(`imnet_conv5_kmeans64.pkl`, `flow_conv5_kmeans64.pkl`). Unpickling can run
arbitrary code, so this reader resolves only an allow-list of globals:

- scikit-learn's `KMeans` / `MiniBatchKMeans` classes become `KMeansStub`, a
  plain object that just keeps the pickled `__dict__`;
- numpy's array, dtype and scalar reconstruction helpers;
- `copy_reg._reconstructor` (Python 2's way of rebuilding a new-style object),
  replaced by a version that only creates `KMeansStub` objects;
- `_codecs.encode(text, 'latin1')`, which Python 3 protocol-0 pickles use for
  byte strings.

Anything else (`os.system`, `builtins.eval`, ...) raises `UnsafePickleError`.
Even so, only convert files that come from the authors' release.
"""

import _codecs
import pickle

import numpy as np

from avlad_tf.release import safe_pickle

# Modules under which scikit-learn has defined KMeans over the years.
_SKLEARN_KMEANS_MODULES = (
    "sklearn.cluster.k_means_",  # 0.17 .. 0.21, the release's version
    "sklearn.cluster._kmeans",  # 0.22 and later
    "sklearn.cluster",
)
_SKLEARN_KMEANS_CLASSES = ("KMeans", "MiniBatchKMeans")
UnsafePickleError = safe_pickle.UnsafePickleError
_NUMPY_GLOBALS = {**safe_pickle.ARRAY_GLOBALS, **safe_pickle.SCALAR_GLOBALS}


class KMeansStub:
    """Stands in for scikit-learn's KMeans; holds the pickled attributes."""

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise UnsafePickleError(
                f"KMeans state must be a dict of attributes. Received: "
                f"{type(state).__name__}"
            )
        self.__dict__.update(state)


def _reconstructor(cls, base, state):
    """Python 2 `copy_reg._reconstructor`, restricted to `KMeansStub`."""
    if cls is not KMeansStub or base is not object or state is not None:
        raise UnsafePickleError(
            f"refusing to reconstruct {cls!r} from base {base!r}; only the "
            f"KMeans object itself is expected in a k-means pickle"
        )
    return object.__new__(KMeansStub)


def _latin1_encode(text, encoding="utf-8"):
    """`_codecs.encode` as used by protocol-0 pickles for bytes: latin-1 only."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise UnsafePickleError(f"refusing _codecs.encode with encoding {encoding!r}")
    return _codecs.encode(text, encoding)


class KMeansUnpickler(pickle.Unpickler):
    """Unpickler that only resolves the globals a KMeans pickle needs."""

    def find_class(self, module, name):
        if module in _SKLEARN_KMEANS_MODULES and name in _SKLEARN_KMEANS_CLASSES:
            return KMeansStub
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return _reconstructor
        if module in ("__builtin__", "builtins") and name == "object":
            return object
        if module == "_codecs" and name == "encode":
            return _latin1_encode
        if (module, name) in _NUMPY_GLOBALS:
            return _NUMPY_GLOBALS[(module, name)]
        raise UnsafePickleError(
            f"refusing to load global {module}.{name}: a k-means pickle only "
            f"needs scikit-learn's KMeans class and numpy array helpers"
        )


def load_kmeans_centers(path):
    """Returns the `cluster_centers_` of a pickled scikit-learn KMeans.

    Args:
        path: a `.pkl` file written by the release's `vlad_utils/cluster_feats.py`
            (Python 2, protocol 0) or any later KMeans pickle.

    Returns:
        `(K, D)` float32 centres, as stored (not renormalised).

    Raises:
        UnsafePickleError: if the pickle references anything outside the
            allow-list (the file is then not a k-means pickle, or malicious).
        ValueError: if the file holds no usable `cluster_centers_`.
    """
    # latin1 maps Python 2 byte strings (numpy's raw buffers) 1:1 to str.
    obj = safe_pickle.load(path, KMeansUnpickler, encoding="latin1")
    if not isinstance(obj, KMeansStub):
        raise ValueError(
            f"{path}: expected a pickled scikit-learn KMeans object. "
            f"Received: {type(obj).__name__}"
        )
    centers = obj.__dict__.get("cluster_centers_")
    if (
        not isinstance(centers, np.ndarray)
        or centers.ndim != 2
        or centers.dtype.kind not in "fiu"
    ):
        raise ValueError(
            f"{path}: the KMeans object has no 2-D numeric cluster_centers_ "
            f"(was it fitted?). Received: {type(centers).__name__} "
            f"{getattr(centers, 'shape', '')}"
        )
    if not np.all(np.isfinite(centers)):
        raise ValueError(f"{path}: cluster_centers_ contains NaN or inf.")
    return centers.astype(np.float32)
