"""A clip backbone over N clips of T frames (`build_model.clip_length`,
`frames.FoldClips` / `UnfoldClips`): each clip runs alone, as N separate
calls of the backbone would (docs/CLIP_MODELS.md)."""

from absl.testing import absltest
import keras
import numpy as np

from avlad_tf.models import action_vlad
from avlad_tf.models import frames

T, N, S = 4, 3, 16


def _video(batch=2):
    rng = np.random.default_rng(0)
    return rng.normal(size=(batch, N * T, S, S, 3)).astype("float32")


def _model(clip_length, **kwargs):
    keras.utils.set_random_seed(0)
    return action_vlad.build_model(
        num_classes=5,
        backbone="tiny_c3d",
        image_size=S,
        clip_length=clip_length,
        **kwargs,
    )


class ClipFoldTest(absltest.TestCase):
    def test_maps_are_the_clips_maps_in_order(self):
        model = _model(T, pooling="avg")
        video = _video()
        maps = keras.Model(model.inputs, model.get_layer("rgb_unfold_clips").output)(
            {"rgb": video}
        )
        backbone = model.get_layer("rgb_backbone")
        expected = np.concatenate(
            [
                keras.ops.convert_to_numpy(backbone(video[:, i * T : (i + 1) * T]))
                for i in range(N)
            ],
            axis=1,
        )  # (B, N·T', h, w, D)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(maps), expected, rtol=1e-5, atol=1e-5
        )

    def test_alone_model_averages_the_clips_scores(self):
        # Two-stream pooling averages ReLU(fc7) over steps and the classifier
        # is linear, so N clips' logits are the mean of each clip's.
        options = dict(endpoint="fc7", pooling="two_stream")
        folded, whole = _model(T, **options), _model(None, **options)
        whole.set_weights(folded.get_weights())
        video = _video()
        per_clip = [
            keras.ops.convert_to_numpy(
                whole({"rgb": video[:, i * T : (i + 1) * T]}, training=False)
            )
            for i in range(N)
        ]
        got = keras.ops.convert_to_numpy(folded({"rgb": video}, training=False))
        np.testing.assert_allclose(got, np.mean(per_clip, 0), rtol=1e-5, atol=1e-5)

    def test_round_trip_and_errors(self):
        layer = frames.FoldClips(T)
        config = frames.FoldClips.from_config(layer.get_config()).get_config()
        self.assertEqual(config["clip_length"], T)
        self.assertEqual(layer.compute_output_shape((2, N * T, S, S, 3))[:2], (6, T))
        with self.assertRaisesRegex(ValueError, "not whole clips"):
            layer(np.zeros((1, T + 1, S, S, 3), "float32"))
        with self.assertRaisesRegex(ValueError, "is for clip backbones"):
            action_vlad.build_model(num_classes=2, backbone="tiny", clip_length=T)


if __name__ == "__main__":
    absltest.main()
