"""Two-stage ActionVLAD training (docs/RELEASE.md Sec. 7 and 8).

`experiment.train` is the gin-configurable driver behind
`python -m avlad_tf.train` (records the run, trains every stream with
`loop.train_stream`, evaluates, fuses, exports); `step` holds the optimizer update (accumulation, per-tensor clipping,
tf.distribute), `sync_batch_norm` batch norm synchronized across replicas,
`distribution` the choice of strategy (one device, several
GPUs, several machines) and where each worker writes, `checkpointing`
exact-resume checkpoints, `summaries` TensorBoard output and `kmeans_init`
the k-means initialisation of NetVLAD.
"""
