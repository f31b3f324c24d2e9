"""avlad_tf: ActionVLAD (Girdhar et al., CVPR 2017) in TensorFlow 2 / Keras 3.

Importing the package is cheap on purpose: `data_prep` imports the schema
module without pulling in Keras.
"""

import os

__version__ = "0.1.0"

# TensorFlow's CPU allocator returns large buffers to the system, so every
# float pass of the input pipeline (100-500 MB per flow video) pays page
# faults anew; only its oneDNN builds on CPUs with AVX-512 VNNI or AMX pool
# them. The pooling allocator halves the pipeline's float work elsewhere
# (docs/PERFORMANCE.md, "CPU allocator"). TensorFlow reads this once, at its
# first allocation, so it counts only when avlad_tf is imported first, as the
# programs do; set it to false to keep TensorFlow's default.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
