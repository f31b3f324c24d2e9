"""k-means initialisation of the NetVLAD centres (docs/RELEASE.md Sec. 8).

The release dumps the pooled layer's **pre-ReLU** features (conv5_3) of one
random frame (or one random flow stack) per video visit, with the evaluation
centre crop, for 6400 visits of the training split, keeps the first 5000
frames, L2-normalises every descriptor and runs k-means with K = 64. Here the
visits are whole passes over the training split (a new random frame per
video and pass) and `num_random_frames` of them are kept by reservoir sampling, so
every video is equally likely to contribute; the descriptors go through
`avlad_tf.kmeans.fit_centers` and the centres are saved as
`<workdir>/<stream>/centers.npy`, which later runs reuse.

`init_stream_centers` does this for one stream of `loop.train_stream`; in a
multi-worker job the chief computes the centres and the others take them.
"""

import time

from absl import logging
import numpy as np

from avlad_tf import kmeans
from avlad_tf import progress
from avlad_tf import settings
from avlad_tf import storage
from avlad_tf.models import aggregators
from avlad_tf.models import inspection
from avlad_tf.training import distribution

CENTERS_FILE = "centers.npy"


def centers_layer(model):
    """The pooling layer that k-means centres initialise
    (`Aggregator.takes_centers`) in `model` or a nested model, or None."""
    names = aggregators.layer_names(takes_centers=True)
    return next(
        (layer for layer in inspection.walk_layers(model) if layer.name in names), None
    )


def _add_to_reservoir(reservoir, seen, frames, rng):
    """Uniform reservoir sampling (Algorithm R) of `frames` into `reservoir`.

    Args:
        reservoir: `[num_random_frames, h, w, D]`, filled in place.
        seen: frames offered so far.
        frames: `[N, h, w, D]` new frames.
        rng: NumPy generator.

    Returns:
        The new number of frames offered.
    """
    for frame in frames:
        slot = seen if seen < len(reservoir) else rng.integers(seen + 1)
        if slot < len(reservoir):
            reservoir[slot] = frame
        seen += 1
    return seen


def collect_descriptors(*, feature_fn, dataset_fn, num_random_frames, seed):
    """Pre-ReLU descriptors of `num_random_frames` randomly chosen video visits.

    Whole passes over the training split are made (pass p with seed + p, so
    each pass draws new random frames) until at least `num_random_frames` visits
    were seen; every visit is equally likely to be kept.

    Args:
        feature_fn: maps a batch of dataset features to `[B, 1, h, w, D]`
            (a clip backbone's: `[B, T', h, w, D]`, each of whose T' maps
            counts as a frame).
        dataset_fn: `dataset_fn(seed)` -> one pass over the training split
            with one random frame per video (T = 1; a clip backbone's: the
            evaluation's T) and the evaluation crop.
        num_random_frames: frames to keep.
        seed: seeds the passes and the sampling.

    Returns:
        float32 `[num_random_frames * h * w, D]`.

    Raises:
        ValueError: if a pass yields no frames.
    """
    rng = np.random.default_rng(seed)
    reservoir, seen, passes = None, 0, 0
    bar = progress.Progress(num_random_frames, what="k-means", unit="frames")
    while seen < num_random_frames:
        for features, _ in dataset_fn(seed + passes):
            maps = np.asarray(feature_fn(features))  # (B, 1 or T', h, w, D)
            frames = maps.reshape((-1,) + maps.shape[2:])  # (B·T', h, w, D)
            if reservoir is None:
                reservoir = np.empty(
                    (num_random_frames,) + frames.shape[1:], np.float32
                )
            seen = _add_to_reservoir(reservoir, seen, frames, rng)
            bar.update(done=min(seen, num_random_frames))
        passes += 1
        if seen == 0:
            raise ValueError(
                "The k-means dataset yielded no frames; is the training split empty?"
            )
    return reservoir.reshape(-1, reservoir.shape[-1])  # (N·h·w, D)


@settings.configurable(
    setting=("num_random_frames", "num_init", "max_descriptors", "seed"),
    call=("model", "directory", "feature_fn", "dataset_fn"),
)
def init_centers(
    *,
    model,
    directory,
    feature_fn,
    dataset_fn,
    num_random_frames=5000,
    num_init=10,
    max_descriptors=None,
    seed=0,
):
    """Sets the model's NetVLAD centres from k-means, computing them if needed.

    Args:
        model: the stream model; its layer `netvlad` (possibly nested) gets
            `set_centers`. Models without one are left alone.
        directory: where `centers.npy` lives (`<workdir>/<stream>`); an
            existing file is loaded (shape-checked) instead of recomputed.
        feature_fn, dataset_fn: see `collect_descriptors`.
        num_random_frames: video visits whose descriptors are clustered (the
            release's 5000 frames).
        num_init: k-means restarts (scikit-learn's n_init, 10 in the release).
        max_descriptors: if set, a random subset of this many descriptors is
            clustered (faster; not in the release).
        seed: frame sampling, subset and k-means++ seed.

    Returns:
        The `[K, D]` centres, or None without a layer that takes them.
    """
    layer = centers_layer(model)
    if layer is None:
        return None
    # assignment_kernel is [D, K] (GhostVLAD: [D, K + G], its real K first).
    num_clusters, depth = layer.num_clusters, int(layer.assignment_kernel.shape[0])
    path = storage.join(directory, CENTERS_FILE)
    if storage.exists(path):
        logging.info("Reusing k-means centres %s", path)
        centers = kmeans.load_centers(path, num_clusters=num_clusters, depth=depth)
    else:
        logging.info("k-means: collecting descriptors of %d frames", num_random_frames)
        descriptors = collect_descriptors(
            feature_fn=feature_fn,
            dataset_fn=dataset_fn,
            num_random_frames=num_random_frames,
            seed=seed,
        )
        if max_descriptors and len(descriptors) > max_descriptors:
            rng = np.random.default_rng(seed)
            keep = rng.choice(len(descriptors), max_descriptors, replace=False)
            descriptors = descriptors[np.sort(keep)]
        start = time.time()
        centers = kmeans.fit_centers(
            descriptors, num_clusters=num_clusters, num_init=num_init, seed=seed
        )
        logging.info(
            "k-means: %d centres from %d descriptors in %.0f s",
            num_clusters,
            len(descriptors),
            time.time() - start,
        )
        kmeans.save_centers(path, centers)
    layer.set_centers(centers)
    return centers


def init_stream_centers(
    model,
    *,
    strategy,
    stream_dir,
    dataset_fn,
    modalities,
    batch_size,
    seed,
):
    """k-means on pre-ReLU pooled-layer features of random frames (Sec. 8).

    `dataset_fn`: `make_dataset_fn` bound to the training split and
    `modalities`. In a multi-worker job the chief computes the centres and
    the others take its NetVLAD weights, bit for bit.
    """
    layer = centers_layer(model)
    if layer is None:
        return  # an aggregator without centres: nothing to initialise
    features = inspection.feature_model(model)

    # One random frame (or flow stack) per video, evaluation crop; a clip
    # backbone sees the evaluation's T frames, as its maps depend on them.
    frames = {} if inspection.mixes_frames(model) else {"num_frames": 1}

    def pass_dataset_fn(pass_seed):
        return dataset_fn(
            training=False, batch_size=batch_size, seed=pass_seed, **frames
        )

    def feature_fn(batch):
        inputs = {name: batch[name] for name in modalities}
        return features(inputs, training=False)

    if distribution.is_chief(strategy):
        init_centers(
            model=model,
            directory=stream_dir,
            feature_fn=feature_fn,
            dataset_fn=pass_dataset_fn,
            seed=seed,
        )
    distribution.sync_from_chief(strategy, layer.variables)
