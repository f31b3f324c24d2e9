"""Placed first on sys.path by jax_backend_test: importing TensorFlow fails.

Keras on the JAX backend never needs TensorFlow, and neither may avlad_tf's
layers and models (the GPU machine has JAX but no TensorFlow).
"""

raise ImportError("tensorflow is deliberately unavailable in this test")
