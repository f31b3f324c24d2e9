"""C3D and Karpathy et al.'s networks run unchanged on JAX, with TensorFlow
unimportable (as tests/jax_backend_test.py: one process per backend, the
same NumPy weights on both, the same numbers out), and take a compiled
training step there under ActionVLAD."""

from absl.testing import absltest
import numpy as np
import pytest

from tests import testing

_SCRIPT = r"""
import json
import numpy as np
import keras
from avlad_tf.models import action_vlad

out = {"backend": keras.backend.backend()}
rng = np.random.default_rng(0)
for backbone, endpoint, frames in (
    ("tiny_c3d", "conv5b", 16),
    ("tiny_c3d", "fc7", 16),
    ("tiny_slow_fusion", "conv5", 18),
    ("tiny_late_fusion", "fc7", 16),
    ("tiny_single_frame", "conv5", 2),
):
    pooling = "two_stream" if endpoint == "fc7" else "netvlad"
    model = action_vlad.build_model(
        num_classes=3, backbone=backbone, endpoint=endpoint, pooling=pooling,
        image_size=32, num_clusters=4, weights=None)
    for w in sorted(model.weights, key=lambda w: w.path):
        fan_in = np.prod(w.shape[:-1]) if len(w.shape) > 1 else 100.0
        w.assign(rng.normal(0.0, fan_in ** -0.5, w.shape).astype("float32"))
    video = rng.normal(0.0, 1.0, (2, frames, 32, 32, 3)).astype("float32")
    key = f"{backbone}/{endpoint}"
    out[key] = keras.ops.convert_to_numpy(model({"rgb": video})).tolist()
    if keras.backend.backend() == "jax" and endpoint != "fc7":
        model.compile(optimizer="adam", loss="categorical_crossentropy",
                      jit_compile=True)
        loss = model.train_on_batch({"rgb": video}, np.eye(3)[[0, 2]])
        out[key + "/loss"] = float(np.asarray(loss).ravel()[0])
print(json.dumps(out))
"""


class ClipModelsJaxTest(absltest.TestCase):
    @pytest.mark.slow
    def test_jax_matches_tensorflow_and_trains(self):
        jax_out = testing.run_on_backend(_SCRIPT, "jax")
        tf_out = testing.run_on_backend(_SCRIPT, "tensorflow")
        self.assertEqual(jax_out.pop("backend"), "jax")
        self.assertEqual(tf_out.pop("backend"), "tensorflow")
        losses = {k: jax_out.pop(k) for k in list(jax_out) if k.endswith("/loss")}
        self.assertLen(losses, 3)
        self.assertTrue(all(np.isfinite(v) for v in losses.values()), losses)
        self.assertEqual(set(jax_out), set(tf_out))
        for key, logits in jax_out.items():
            np.testing.assert_allclose(logits, tf_out[key], rtol=1e-4, atol=1e-4)


if __name__ == "__main__":
    absltest.main()
