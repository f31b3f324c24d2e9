"""Input side of avlad_tf: the TFRecord schema and tf.data pipelines."""
