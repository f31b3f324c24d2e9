"""The model code runs unchanged on the JAX backend (KERAS_BACKEND=jax).

The layers and models use keras.ops only, so the GPU machine (JAX, no
TensorFlow) can run them under XLA. Each backend is a separate process because
Keras picks its backend at import time; both must give the same numbers.
"""

from absl.testing import absltest
import numpy as np
import pytest

from tests import testing

_SCRIPT = r"""
import json, sys
import numpy as np
import keras
from avlad_tf.layers import netvlad
from avlad_tf.layers import pixels
from avlad_tf.models import action_vlad

rng = np.random.default_rng(0)
x = rng.normal(size=(2, 3, 4, 4, 8)).astype("float32")
layer = netvlad.NetVLAD(num_clusters=5)
layer.build(x.shape)
layer.set_centers(rng.normal(size=(5, 8)).astype("float32"))
vlad, maps = layer(x, return_assignments=True)

keras.utils.set_random_seed(1)
model = action_vlad.build_model(num_classes=3, backbone="tiny",
                                image_size=16, num_clusters=4, weights=None)
frames = rng.normal(size=(2, 2, 16, 16, 3)).astype("float32")
model.compile(optimizer="adam", loss="categorical_crossentropy",
              jit_compile=True)
loss = model.train_on_batch({"rgb": frames}, np.eye(3)[[0, 2]])
# Every uint8 value through the on-device pixel arithmetic, under XLA.
raw = (np.arange(2 * 3 * 6 * 8 * 8) % 256).astype("uint8").reshape(2, 3, 6, 8, 8)
pixel_outputs = {}
for modality, shape in (("flow", (3, 6, 8, 8)), ("rgb", (3, 8, 16, 3))):
    pixel_model = keras.Sequential([keras.Input(shape, dtype="uint8"),
                                    pixels.ReleasePixels(modality)])
    pixel_model.compile(jit_compile=True)
    pixel_outputs[modality] = pixel_model.predict(
        raw.reshape((2,) + shape), verbose=0).tolist()

print(json.dumps({
    "backend": keras.backend.backend(),
    "pixels": pixel_outputs,
    "vlad": keras.ops.convert_to_numpy(vlad).tolist(),
    "maps": keras.ops.convert_to_numpy(maps).tolist(),
    "loss": float(np.asarray(loss).ravel()[0]),
}))
"""


class JaxBackendTest(absltest.TestCase):
    @pytest.mark.slow
    def test_layer_and_model_match_tensorflow(self):
        jax_out = testing.run_on_backend(_SCRIPT, "jax")
        tf_out = testing.run_on_backend(_SCRIPT, "tensorflow")
        self.assertEqual(jax_out["backend"], "jax")
        self.assertEqual(tf_out["backend"], "tensorflow")
        np.testing.assert_allclose(jax_out["vlad"], tf_out["vlad"], atol=1e-5)
        np.testing.assert_allclose(jax_out["maps"], tf_out["maps"], atol=1e-5)
        self.assertTrue(np.isfinite(jax_out["loss"]))
        # Bit-identical: the host pipeline's float32 operations, in order.
        for modality in ("rgb", "flow"):
            np.testing.assert_array_equal(
                jax_out["pixels"][modality], tf_out["pixels"][modality]
            )


if __name__ == "__main__":
    absltest.main()
