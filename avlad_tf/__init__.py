"""avlad_tf: ActionVLAD (Girdhar et al., CVPR 2017) in TensorFlow 2 / Keras 3.

Importing the package is cheap on purpose: `data_prep` imports the schema
module without pulling in Keras.
"""

__version__ = "0.1.0"
