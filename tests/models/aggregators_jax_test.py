"""Every aggregator of the source papers runs unchanged on JAX, with
TensorFlow unimportable.

As tests/jax_backend_test.py: each backend in its own process (Keras picks
it at import time), the same NumPy weights on both, the same numbers out;
then, on JAX only, each aggregator's model takes a compiled training step.
One script for Ng et al.'s conv pooling and LSTM, VideoLSTM and STFN, so
each backend starts once.
"""

from absl.testing import absltest
import numpy as np
import pytest

from tests import testing

_SCRIPT = r"""
import gin
import json
import numpy as np
import keras
from avlad_tf.layers import conv_pooling
from avlad_tf.layers import frame_lstm
from avlad_tf.layers import res_inception
from avlad_tf.layers import stfn
from avlad_tf.layers import video_lstm
from avlad_tf.models import action_vlad
from avlad_tf.training import trainable

out = {"backend": keras.backend.backend()}


def randomized(rng, layer, *shapes):
    layer.build(*shapes)
    for w in sorted(layer.weights, key=lambda w: w.path):
        value = rng.normal(0.0, 0.5, w.shape)
        if "variance" in w.path:
            value = rng.uniform(0.5, 2.0, w.shape)
        w.assign(value.astype("float32"))
    return layer


def numpy(t):
    return keras.ops.convert_to_numpy(t).tolist()


# Ng et al.: conv pooling, the frame LSTM, the time-averaged logits.
rng = np.random.default_rng(0)
x = rng.normal(size=(2, 4, 3, 3, 6)).astype("float32")
out["conv"] = numpy(randomized(rng, conv_pooling.ConvPooling(units=(7, 5)), x.shape)(x))
lstm = randomized(rng, frame_lstm.FrameLSTM(units=3, num_layers=2, weighting="linear"),
                  x.shape)
pooled, steps = lstm(x, return_sequences=True)
out["pooled"], out["steps"] = numpy(pooled), numpy(steps)
combine = frame_lstm.TimeAveragedLogits()
out["combined"] = numpy(combine(rng.normal(0.0, 3.0, (2, 4, 5)).astype("float32")))
out["gap"] = float(keras.ops.convert_to_numpy(combine.losses[0]))

# VideoLSTM: appearance and motion attention.
rng = np.random.default_rng(1)
x = rng.normal(size=(2, 3, 4, 4, 3)).astype("float32")
flow = rng.normal(size=(2, 3, 4, 4, 4)).astype("float32")
for attention, motion in (("appearance", None), ("motion", flow)):
    layer = randomized(
        rng,
        video_lstm.ConvALSTM(units=2, dense_units=5, attention=attention),
        x.shape, None if motion is None else motion.shape,
    )
    out[attention] = [numpy(t) for t in layer(
        x, attention_inputs=motion, return_sequences=True, return_attention=True)]

# STFN: the res-inception pooling and each fusion op.
rng = np.random.default_rng(2)
x = rng.normal(size=(2, 5, 3, 3, 8)).astype("float32")
flow = rng.normal(size=(2, 5, 2, 2, 8)).astype("float32")
out["res_inception"] = numpy(
    randomized(rng, res_inception.ResInceptionPooling(), x.shape)(x))
for op in stfn.FUSION_OPS:
    layer = randomized(rng, stfn.SpatioTemporalFusion(fusion_op=op, direction="uni"),
                       x.shape, flow.shape)
    out[op] = numpy(layer(x, motion_inputs=flow))

# On JAX: each aggregator's model takes one compiled training step.
MODELS = {
    "conv_pooling": dict(modality="rgb", pooling="conv_pooling"),
    "lstm": dict(modality="rgb", pooling="lstm"),
    "videolstm": dict(modality="rgb", pooling="videolstm"),
    "motion_attention": dict(modality="rgb+flow", pooling="videolstm",
                             fusion="motion_attention"),
    "res_inception": dict(modality="rgb", pooling="res_inception"),
    "stfn": dict(modality="rgb+flow", pooling="res_inception", fusion="stfn"),
}
losses = {}
if out["backend"] == "jax":
    rng = np.random.default_rng(3)
    for name, kwargs in MODELS.items():
        keras.utils.set_random_seed(1)
        gin.clear_config()
        if name in ("lstm", "videolstm"):  # the papers' loss at every step
            gin.bind_parameter("recurrent_pooling.per_step_loss", "softmax")
        model = action_vlad.build_model(num_classes=3, backbone="tiny", image_size=16,
                                        flow_stack=2, **kwargs)
        trainable.set_stage(model, 2)
        model.compile(optimizer="adam", jit_compile=True,
                      loss=keras.losses.CategoricalCrossentropy(from_logits=True))
        inputs = {t.name.split(":")[0]: rng.normal(size=(2, 3) + tuple(t.shape[2:]))
                  .astype("float32") for t in model.inputs}
        loss = model.train_on_batch(inputs, np.eye(3)[[0, 2]])
        losses[name] = float(np.asarray(loss).ravel()[0])
out["losses"] = losses
print(json.dumps(out))
"""
# Output keys compared between backends, with their absolute tolerance, plus
# a relative 1e-5 (float32 sums of 10-100 terms in another order, or on
# another CPU's kernels, differ by a few eps times the magnitude: `conv` is
# around 5-10); VideoLSTM's are lists of (pooled, steps, maps).
_COMPARED = {
    **dict.fromkeys(("conv", "pooled", "steps", "combined", "gap"), 1e-5),
    **dict.fromkeys(("appearance", "motion"), 1e-5),
    **dict.fromkeys(("res_inception", "avg", "max", "multiply"), 1e-4),
}
_MODELS = [
    "conv_pooling",
    "lstm",
    "videolstm",
    "motion_attention",
    "res_inception",
    "stfn",
]


class AggregatorsJaxBackendTest(absltest.TestCase):
    @pytest.mark.slow
    def test_layers_match_tensorflow_and_models_train(self):
        jax_out = testing.run_on_backend(_SCRIPT, "jax")
        tf_out = testing.run_on_backend(_SCRIPT, "tensorflow")
        self.assertEqual((jax_out["backend"], tf_out["backend"]), ("jax", "tensorflow"))
        for key, atol in _COMPARED.items():
            got, want = jax_out[key], tf_out[key]
            pairs = zip(got, want) if key in ("appearance", "motion") else [(got, want)]
            for g, w in pairs:
                np.testing.assert_allclose(g, w, rtol=1e-5, atol=atol, err_msg=key)
        self.assertGreater(jax_out["gap"], 0.0)
        self.assertCountEqual(jax_out["losses"], _MODELS)
        for name, loss in jax_out["losses"].items():
            self.assertTrue(np.isfinite(loss), name)


if __name__ == "__main__":
    absltest.main()
