"""Compiled TV-L1 over many frame pairs, in fixed-size batches.

`PairFlow` compiles the flow once per frame size and batch size and pads the
last batch with blank pairs, which converge at the first iteration and, since
pairs stop independently, change nothing for the others. It is what
`data_prep` (`--flow_backend=keras`) and `predict` call.
"""

import keras
import numpy as np

from avlad_tf.flow import layer as layer_lib


class PairFlow:
    """TV-L1 flow for batches of grey frame pairs of one size.

    Args:
        frame_size: (height, width) of every frame.
        preset, parameters: as `layer.TVL1Flow`.
        batch_size: pairs per compiled call; the last call is padded.
    """

    def __init__(self, frame_size, *, preset="opencv", parameters=None, batch_size=8):
        height, width = frame_size
        self.batch_size = batch_size
        flow_layer = layer_lib.TVL1Flow(preset=preset, parameters=parameters)
        first = keras.Input((height, width), batch_size=batch_size, dtype="uint8")
        second = keras.Input((height, width), batch_size=batch_size, dtype="uint8")
        self.model = keras.Model([first, second], flow_layer(first, second))
        self.model.compile(jit_compile=True)

    def __call__(self, firsts, seconds):
        """`[N, H, W]` uint8 pairs -> `[N, H, W, 2]` float32 flow."""
        firsts, seconds = np.asarray(firsts), np.asarray(seconds)
        count = len(firsts)
        padding = -count % self.batch_size
        if padding:
            blank = np.zeros((padding, *firsts.shape[1:]), np.uint8)
            firsts = np.concatenate([firsts, blank])
            seconds = np.concatenate([seconds, blank])
        flows = [
            np.asarray(
                self.model.predict_on_batch(
                    [firsts[i : i + self.batch_size], seconds[i : i + self.batch_size]]
                )
            )
            for i in range(0, len(firsts), self.batch_size)
        ]
        return np.concatenate(flows)[:count]

    def consecutive(self, greys):
        """Flow j from frame j to j + 1 of `[T, H, W]` grey frames: `[T-1, H, W, 2]`."""
        greys = np.asarray(greys)
        return self(greys[:-1], greys[1:])
