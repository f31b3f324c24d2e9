"""Two-stage ActionVLAD training (docs/RELEASE.md Sec. 7 and 8).

`loop.train` is the gin-configurable driver behind `python -m avlad_tf.train`;
`step` holds the optimizer update (accumulation, per-tensor clipping,
tf.distribute), `checkpointing` exact-resume checkpoints, `summaries`
TensorBoard output and `kmeans_init` the k-means initialisation of NetVLAD.
"""
