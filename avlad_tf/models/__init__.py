"""ActionVLAD models: backbones, stream models and fusion (pure keras.ops)."""
