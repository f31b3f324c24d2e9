"""Converts the release's k-means pickles to avlad_tf `.npy` centres.

    python -m avlad_tf.convert_kmeans_pickle imnet_conv5_kmeans64.pkl centers.npy

The release ships its NetVLAD initial centres as pickled scikit-learn KMeans
objects (docs/RELEASE.md Sec. 8). Unpickling untrusted files can execute
code: this command uses a restricted unpickler (see
`avlad_tf.release.kmeans_pickle`) that resolves only scikit-learn's KMeans
class and numpy's array helpers, and needs no scikit-learn. Use it only on the
authors' files. The output is a plain float32 `.npy` written with
`avlad_tf.kmeans.save_centers`, which the rest of avlad_tf loads with
`allow_pickle=False`; copy it to `WORKDIR/<stream>/centers.npy` to initialise
training from the release's clustering.
"""

import sys

from absl import app
from absl import logging

from avlad_tf import cli

if __name__ == "__main__":
    cli.start_quietly()  # first: before anything imports TensorFlow

from avlad_tf import kmeans
from avlad_tf.release import kmeans_pickle

_USAGE = "usage: python -m avlad_tf.convert_kmeans_pickle IN.pkl OUT.npy"


def main(argv):
    if len(argv) != 3:
        raise app.UsageError(_USAGE)
    in_path, out_path = argv[1], argv[2]
    warning = (
        f"WARNING: {in_path} is a pickle. Unpickling can run code; this tool "
        f"allows only scikit-learn's KMeans class and numpy array helpers, "
        f"but use it only on the ActionVLAD authors' k-means files."
    )
    logging.warning(warning)
    print(warning, file=sys.stderr)
    try:
        centers = kmeans_pickle.load_kmeans_centers(in_path)
    except (OSError, ValueError, kmeans_pickle.UnsafePickleError) as error:
        sys.exit(f"convert_kmeans_pickle: error: {error}")
    kmeans.save_centers(out_path, centers)
    print(
        f"wrote {out_path}: {centers.shape[0]} centres x "
        f"{centers.shape[1]} dims (float32)"
    )


if __name__ == "__main__":
    cli.run(main)
