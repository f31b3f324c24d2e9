"""The release's weight decay as a Keras regularizer, one rule for every layer."""

import keras


def weight_decay(decay):
    """slim's `l2_regularizer(decay)`, decay·Σw²/2, as Keras' L2(decay / 2)
    (which is l·Σw²; docs/RELEASE.md Sec. 12.10); None for no decay."""
    return keras.regularizers.L2(decay / 2.0) if decay else None
