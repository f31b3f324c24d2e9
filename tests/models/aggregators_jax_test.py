"""Ng et al.'s aggregators run unchanged on JAX, with TensorFlow unimportable.

As tests/jax_backend_test.py: each backend in its own process (Keras picks
it at import time), the same weights on both, the same numbers out.
"""

from absl.testing import absltest
import numpy as np

from tests import testing

_SCRIPT = r"""
import json
import numpy as np
import keras
from avlad_tf.layers import conv_pooling
from avlad_tf.layers import frame_lstm
from avlad_tf.models import action_vlad

rng = np.random.default_rng(0)
x = rng.normal(size=(2, 4, 3, 3, 6)).astype("float32")


def with_numpy_weights(layer):
    layer.build(x.shape)
    layer.set_weights(
        [rng.normal(0.0, 0.5, w.shape).astype("float32") for w in layer.weights]
    )
    return layer


conv = with_numpy_weights(conv_pooling.ConvPooling(units=(7, 5)))
lstm = with_numpy_weights(
    frame_lstm.FrameLSTM(units=3, num_layers=2, weighting="linear")
)
pooled, steps = lstm(x, return_sequences=True)
combine = frame_lstm.TimeAveragedLogits()
per_step = rng.normal(0.0, 3.0, size=(2, 4, 5)).astype("float32")
combined = combine(per_step)

losses = {}
for pooling in ("conv_pooling", "lstm"):
    keras.utils.set_random_seed(1)
    model = action_vlad.build_model(num_classes=3, backbone="tiny",
                                    image_size=16, pooling=pooling)
    model.compile(optimizer="adam", jit_compile=True,
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    frames = rng.normal(size=(2, 3, 16, 16, 3)).astype("float32")
    loss = model.train_on_batch({"rgb": frames}, np.eye(3)[[0, 2]])
    losses[pooling] = float(np.asarray(loss).ravel()[0])

# The per-step loss wired as stream.build_stream_model would, fitted under XLA.
inputs = keras.Input((None, 3, 3, 6))
_, sequence = frame_lstm.FrameLSTM(units=4, num_layers=2)(
    inputs, return_sequences=True)
logits = frame_lstm.TimeAveragedLogits()(keras.layers.Dense(3)(sequence))
wired = keras.Model(inputs, logits)
wired.compile(optimizer="adam", jit_compile=True,
              loss=keras.losses.CategoricalCrossentropy(from_logits=True))
wired_loss = wired.train_on_batch(x, np.eye(3)[[1, 2]])
losses["wired"] = float(np.asarray(wired_loss).ravel()[0])

print(json.dumps({
    "backend": keras.backend.backend(),
    "conv": keras.ops.convert_to_numpy(conv(x)).tolist(),
    "pooled": keras.ops.convert_to_numpy(pooled).tolist(),
    "steps": keras.ops.convert_to_numpy(steps).tolist(),
    "combined": keras.ops.convert_to_numpy(combined).tolist(),
    "gap": float(keras.ops.convert_to_numpy(combine.losses[0])),
    "losses": losses,
}))
"""


class AggregatorsJaxBackendTest(absltest.TestCase):
    def test_layers_match_tensorflow_and_models_train(self):
        jax_out = testing.run_on_backend(_SCRIPT, "jax")
        tf_out = testing.run_on_backend(_SCRIPT, "tensorflow")
        self.assertEqual(jax_out["backend"], "jax")
        self.assertEqual(tf_out["backend"], "tensorflow")
        for key in ("conv", "pooled", "steps", "combined", "gap"):
            np.testing.assert_allclose(
                jax_out[key], tf_out[key], atol=1e-5, err_msg=key
            )
        self.assertGreater(jax_out["gap"], 0.0)
        for name, loss in jax_out["losses"].items():
            self.assertTrue(np.isfinite(loss), name)


if __name__ == "__main__":
    absltest.main()
