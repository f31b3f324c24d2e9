"""A trained model streamed chunk by chunk gives its one-shot outputs."""

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np

from avlad_tf.models import action_vlad
from avlad_tf.models import inspection
from avlad_tf.models import streamed


def _model(pooling):
    keras.utils.set_random_seed(0)
    return action_vlad.build_model(
        num_classes=3,
        backbone="tiny",
        image_size=16,
        num_clusters=4,
        pooling=pooling,
        weights=None,
    )


class StreamedModelTest(parameterized.TestCase):
    @parameterized.parameters("netvlad", "avg", "max", "two_stream")
    def test_chunks_give_the_one_shot_outputs(self, pooling):
        model = _model(pooling)
        crops = (
            np.random.default_rng(0).normal(size=(2, 7, 16, 16, 3)).astype("float32")
        )
        expected = inspection.endpoints_model(model)({"rgb": crops})
        stream = streamed.StreamedModel(model)
        for chunk in (1, 3, 7):
            state = stream.initial_state(2)
            for start in range(0, 7, chunk):
                piece = crops[:, start : start + chunk]
                padded = np.zeros((2, chunk) + crops.shape[2:], "float32")
                padded[:, : piece.shape[1]] = piece
                mask = np.zeros((2, chunk), "float32")
                mask[:, : piece.shape[1]] = 1
                state = stream.update(state, padded, mask)
            descriptor, logits = stream.finish(state)
            np.testing.assert_allclose(descriptor, expected["descriptor"], atol=1e-5)
            np.testing.assert_allclose(logits, expected["logits"], atol=1e-5)

    def test_an_aggregator_without_state_is_named(self):
        with self.assertRaisesRegex(ValueError, "'lstm_pool' pooling has no streaming"):
            streamed.StreamedModel(_model("lstm"))


if __name__ == "__main__":
    absltest.main()
