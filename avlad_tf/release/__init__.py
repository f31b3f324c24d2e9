"""Import the original release's checkpoints and k-means files.

- `importer`: TF-slim checkpoints (V1 files, V2 prefixes) -> avlad_tf models.
- `checkpoint_reader`: opening V1 / V2 checkpoints with actionable errors.
- `names`: the release's variable names and where they go.
- `kmeans_pickle`: a restricted reader for the release's KMeans pickles.
- `workdir`: a release checkpoint as an evaluable avlad_tf workdir.

Command-line tools: `python -m avlad_tf.import_release` and
`python -m avlad_tf.convert_kmeans_pickle` (docs/RELEASE_MODELS.md).
"""
