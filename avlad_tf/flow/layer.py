"""`TVL1Flow`: TV-L1 optical flow as a Keras layer.

A layer puts the flow inside a model: an exported SavedModel that takes
decoded frames computes its own flow stacks (`avlad_tf.serving.saved_model`), and a
one-layer model gives every backend its compiler (`avlad_tf.flow.runner`):
XLA through `tf.function(jit_compile=True)` under TensorFlow, `jax.jit`
under JAX, without this code importing either.
"""

import dataclasses

import keras

from avlad_tf.flow import parameters as parameters_lib
from avlad_tf.flow import tvl1


@keras.saving.register_keras_serializable(package="avlad_tf")
class TVL1Flow(keras.layers.Layer):
    """Dual TV-L1 flow from `first` to `second` (`avlad_tf.flow.tvl1`).

    Args:
        preset: a `parameters.PRESETS` name: 'release' (OpenCV 2.4's GPU
            flow, the release's), 'opencv' or 'opencv_cuda'.
        parameters: overrides of the preset, `parameters.Parameters` field names,
            e.g. `{"warps": 1}`.
        **kwargs: base `Layer` arguments.

    Input shape:
        two grey frames `(batch, height, width)`, uint8 in 0..255 or float in
        [0, 1], with static height and width.

    Output shape:
        `(batch, height, width, 2)` float32, (x, y) in pixels.
    """

    def __init__(
        self, *, preset=parameters_lib.DEFAULT_PRESET, parameters=None, **kwargs
    ):
        self.parameters = dict(parameters or {})
        # Fails now, naming the parameter, rather than at the first call.
        parameters_lib.resolve_parameters(preset, **self.parameters)
        super().__init__(**kwargs)
        self.preset = preset

    @property
    def settings(self):
        """The preset and every parameter it resolves to (overrides applied)."""
        resolved = parameters_lib.resolve_parameters(self.preset, **self.parameters)
        return {"preset": self.preset, **dataclasses.asdict(resolved)}

    def call(self, first, second):
        return tvl1.flow_ops(first, second, preset=self.preset, **self.parameters)

    def compute_output_shape(self, first_shape, second_shape=None):
        return (*tuple(first_shape), 2)

    def compute_output_spec(self, first, second):
        return keras.KerasTensor((*first.shape, 2), dtype="float32")

    def get_config(self):
        return {
            **super().get_config(),
            "preset": self.preset,
            "parameters": dict(self.parameters),
        }
