"""K-means initialisation of the ActionVLAD centres (docs/RELEASE.md Sec. 8).

The release clusters L2-normalised pre-ReLU conv5_3 descriptors with
scikit-learn 0.17 `KMeans(n_clusters=64)` (k-means++ seeding, n_init 10,
max_iter 300, tol 1e-4) and does not renormalise the centres. This is a NumPy
transcription of that algorithm with a fixed seed, so centres are reproducible.
Centres are stored as plain `.npy` files; the loader refuses pickles.
"""

import numpy as np

from avlad_tf import storage

# Rows per distance block: bounds memory at ~chunk x K floats.
_CHUNK_ROWS = 65536


def l2_normalize_rows(descriptors):
    """Row-wise L2 normalisation, as sklearn.preprocessing.normalize."""
    descriptors = np.asarray(descriptors, dtype=np.float32)
    norms = np.linalg.norm(descriptors, axis=1, keepdims=True)
    return descriptors / np.maximum(norms, 1e-12)


def _squared_distances(x, x_sq, centers):
    """`(N, K)` squared distances, computed blockwise with one matmul each."""
    c_sq = np.sum(centers * centers, axis=1)
    return np.maximum(x_sq[:, None] - 2.0 * x @ centers.T + c_sq[None], 0.0)


def _assign(x, x_sq, centers):
    labels = np.empty(len(x), dtype=np.int64)
    inertia = 0.0
    for start in range(0, len(x), _CHUNK_ROWS):
        block = slice(start, start + _CHUNK_ROWS)
        d = _squared_distances(x[block], x_sq[block], centers)
        labels[block] = np.argmin(d, axis=1)
        inertia += float(np.sum(np.min(d, axis=1)))
    return labels, inertia


def _kmeans_plus_plus(x, x_sq, num_clusters, rng):
    """k-means++ seeding with 2 + log(K) local trials, as scikit-learn."""
    num_trials = 2 + int(np.log(num_clusters))
    centers = np.empty((num_clusters, x.shape[1]), dtype=x.dtype)
    centers[0] = x[rng.integers(len(x))]
    closest = _squared_distances(x, x_sq, centers[:1])[:, 0]
    for k in range(1, num_clusters):
        probs = closest / closest.sum() if closest.sum() > 0 else None
        candidates = rng.choice(len(x), size=num_trials, p=probs)
        cand_d = _squared_distances(x, x_sq, x[candidates])  # (N, trials)
        new_closest = np.minimum(closest[:, None], cand_d)
        best = int(np.argmin(new_closest.sum(axis=0)))
        centers[k] = x[candidates[best]]
        closest = new_closest[:, best]
    return centers


def _lloyd(x, x_sq, centers, max_iter, tol):
    for _ in range(max_iter):
        labels, _ = _assign(x, x_sq, centers)
        counts = np.bincount(labels, minlength=len(centers))
        sums = np.zeros_like(centers, dtype=np.float64)
        np.add.at(sums, labels, x)
        new = centers.copy()
        filled = counts > 0
        new[filled] = (sums[filled] / counts[filled, None]).astype(x.dtype)
        shift = float(np.sum((new - centers) ** 2))
        centers = new
        if shift <= tol:
            break
    labels, inertia = _assign(x, x_sq, centers)
    return centers, inertia


def fit_centers(
    descriptors,
    *,
    num_clusters=64,
    num_init=10,
    max_iter=300,
    tol=1e-4,
    seed=0,
    normalize=True,
):
    """Clusters descriptors into `num_clusters` centres.

    Args:
        descriptors: `(N, D)` array of conv descriptors (pre-ReLU).
        num_clusters: K.
        num_init: independent k-means++ runs; the lowest inertia wins
            (scikit-learn's n_init, 10 by default as in the release).
        max_iter: Lloyd iterations per run.
        tol: relative tolerance, scaled by the mean per-dimension variance of
            the data as scikit-learn does.
        seed: seed of the k-means++ sampling; fixed for reproducibility (the
            release's run was unseeded).
        normalize: L2-normalise each descriptor first (the release's "V.IMP"
            step); the centres are not renormalised.

    Returns:
        `(num_clusters, D)` float32 centres.

    Raises:
        ValueError: if there are fewer descriptors than clusters.
    """
    x = np.asarray(descriptors, dtype=np.float32)
    if x.ndim != 2 or len(x) < num_clusters:
        raise ValueError(
            f"fit_centers needs a 2-D array with at least {num_clusters} rows. "
            f"Received: shape={x.shape}"
        )
    if normalize:
        x = l2_normalize_rows(x)
    x_sq = np.sum(x * x, axis=1)
    scaled_tol = tol * float(np.mean(np.var(x, axis=0)))
    rng = np.random.default_rng(seed)
    best_centers, best_inertia = None, np.inf
    for _ in range(num_init):
        seeds = _kmeans_plus_plus(x, x_sq, num_clusters, rng)
        centers, inertia = _lloyd(x, x_sq, seeds, max_iter, scaled_tol)
        if inertia < best_inertia:
            best_centers, best_inertia = centers, inertia
    return best_centers.astype(np.float32)


def save_centers(path, centers):
    """Writes centres as a plain float32 `.npy` file (no pickle)."""
    centers = np.asarray(centers, dtype=np.float32)
    storage.make_parent(path)
    # NumPy writes local files only; the name ends in .npy, or np.save
    # would add it.
    with storage.local_output(path, suffix=".npy") as local:
        np.save(local, centers, allow_pickle=False)


def load_centers(path, *, num_clusters=None, depth=None):
    """Loads centres saved by `save_centers`, refusing anything unsafe.

    Raises:
        ValueError: for a pickle or object array, a shape other than
            `(num_clusters, depth)` where those are given, or non-finite values.
    """
    try:
        with storage.local_input(path) as local:
            centers = np.load(local, allow_pickle=False)
    except ValueError as error:
        raise ValueError(
            f"{path}: not a plain numeric .npy file; pickles and object "
            f"arrays are refused ({error})."
        ) from error
    if not isinstance(centers, np.ndarray) or centers.dtype.kind not in "fiu":
        raise ValueError(
            f"{path}: centres must be a numeric array. "
            f"Received: dtype={getattr(centers, 'dtype', type(centers))}"
        )
    expected = (
        num_clusters or centers.shape[0],
        depth or (centers.shape[-1] if centers.ndim else None),
    )
    if centers.ndim != 2 or tuple(centers.shape) != expected:
        raise ValueError(
            f"{path}: centres must have shape {expected} (num_clusters, "
            f"channels). Received: shape={centers.shape}"
        )
    if not np.all(np.isfinite(centers)):
        raise ValueError(f"{path}: centres contain NaN or inf values.")
    return centers.astype(np.float32)
