"""Exact t-SNE in NumPy (van der Maaten & Hinton 2008), for Figs. 5 and 10.

The paper embeds a few hundred sub-sampled conv / fc descriptors; for that
size the exact O(N^2) algorithm is fast and needs no scikit-learn.
"""

import numpy as np

# Below this the per-point Gaussian is effectively a delta; the binary search
# on the precision stops when the entropy is this close to log(perplexity).
_ENTROPY_TOLERANCE = 1e-5
_MAX_SEARCH_STEPS = 64
# Standard schedule of the reference implementation.
_EXAGGERATION = 12.0
_EXAGGERATION_ITERS = 250
_MOMENTUM_SWITCH_ITER = 250
_MIN_GAIN = 0.01


def _squared_distances(x):
    """Pairwise squared Euclidean distances, `[N, D] -> [N, N]`."""
    sum_sq = np.sum(np.square(x), axis=1)
    distances = sum_sq[:, None] + sum_sq[None, :] - 2.0 * (x @ x.T)
    np.fill_diagonal(distances, 0.0)
    return np.maximum(distances, 0.0)


def conditional_probabilities(x, *, perplexity):
    """P(j|i) with a per-point precision found by binary search.

    Args:
        x: `[N, D]` float points.
        perplexity: target perplexity of each conditional distribution.

    Returns:
        `[N, N]` row-stochastic matrix with a zero diagonal.
    """
    distances = _squared_distances(np.asarray(x, np.float64))
    n = distances.shape[0]
    target_entropy = np.log(perplexity)
    probabilities = np.zeros((n, n))
    for i in range(n):  # one independent 1-D search per point
        row = np.delete(distances[i], i)
        beta, beta_low, beta_high = 1.0, 0.0, np.inf
        for _ in range(_MAX_SEARCH_STEPS):
            # Shifting by the minimum keeps exp() from underflowing to all 0.
            weights = np.exp(-(row - row.min()) * beta)
            total = weights.sum()
            p = weights / total
            entropy = np.log(total) + beta * np.sum((row - row.min()) * p)
            if abs(entropy - target_entropy) < _ENTROPY_TOLERANCE:
                break
            if entropy > target_entropy:  # too flat: sharpen
                beta_low = beta
                beta = beta * 2.0 if np.isinf(beta_high) else (beta + beta_high) / 2.0
            else:
                beta_high = beta
                beta = (beta + beta_low) / 2.0
        probabilities[i, np.arange(n) != i] = p
    return probabilities


def _pca(x, num_components):
    x = x - x.mean(axis=0, keepdims=True)
    if x.shape[1] <= num_components:
        return x
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[:num_components].T


def tsne(
    x,
    *,
    num_dims=2,
    perplexity=30.0,
    num_iters=1000,
    learning_rate=200.0,
    pca_dims=50,
    seed=0,
):
    """Embeds `x` in `num_dims` dimensions with exact t-SNE.

    Args:
        x: `[N, D]` points (N >= 2).
        num_dims: embedding dimension.
        perplexity: effective neighbour count; clipped to (N - 1) / 3 so that
            small sets still have a solution.
        num_iters: gradient steps (the first 250 use early exaggeration).
        learning_rate: step size of the gains-adapted gradient descent.
        pca_dims: points are first projected on this many principal axes, as
            in the reference implementation (speed, and it denoises).
        seed: seed of the initial embedding.

    Returns:
        `[N, num_dims]` float64 embedding.

    Raises:
        ValueError: if `x` is not a finite 2-D array of at least 2 points.
    """
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(
            f"tsne needs a [N, D] array with N >= 2. Received shape {x.shape}"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("tsne received non-finite features (NaN or inf)")
    n = x.shape[0]
    perplexity = float(min(perplexity, max((n - 1) / 3.0, 1.0)))
    x = _pca(x, pca_dims)
    conditional = conditional_probabilities(x, perplexity=perplexity)
    p = np.maximum((conditional + conditional.T) / (2.0 * n), 1e-12)

    rng = np.random.default_rng(seed)
    y = rng.normal(scale=1e-4, size=(n, num_dims))
    velocity = np.zeros_like(y)
    gains = np.ones_like(y)
    for it in range(num_iters):
        exaggeration = _EXAGGERATION if it < _EXAGGERATION_ITERS else 1.0
        momentum = 0.5 if it < _MOMENTUM_SWITCH_ITER else 0.8
        # Student-t kernel in the embedding: q_ij ~ 1 / (1 + |y_i - y_j|^2).
        kernel = 1.0 / (1.0 + _squared_distances(y))
        np.fill_diagonal(kernel, 0.0)
        q = np.maximum(kernel / kernel.sum(), 1e-12)
        coefficient = (exaggeration * p - q) * kernel  # [N, N]
        gradient = 4.0 * (np.diag(coefficient.sum(axis=1)) - coefficient) @ y
        same_sign = np.sign(gradient) == np.sign(velocity)
        gains = np.maximum(np.where(same_sign, gains * 0.8, gains + 0.2), _MIN_GAIN)
        velocity = momentum * velocity - learning_rate * gains * gradient
        y = y + velocity
        y = y - y.mean(axis=0, keepdims=True)
    return y


def kl_divergence(x, y, *, perplexity=30.0):
    """KL(P || Q) of an embedding `y` of `x`: lower is a better embedding."""
    n = x.shape[0]
    perplexity = float(min(perplexity, max((n - 1) / 3.0, 1.0)))
    conditional = conditional_probabilities(
        np.asarray(x, np.float64), perplexity=perplexity
    )
    p = np.maximum((conditional + conditional.T) / (2.0 * n), 1e-12)
    kernel = 1.0 / (1.0 + _squared_distances(np.asarray(y, np.float64)))
    np.fill_diagonal(kernel, 0.0)
    q = np.maximum(kernel / kernel.sum(), 1e-12)
    mask = ~np.eye(n, dtype=bool)
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))
