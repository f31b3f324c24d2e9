"""`training.schedule`: the schedule of a stream whose aggregator starts
from random weights (`from_scratch_schedule`)."""

from absl.testing import absltest

from avlad_tf.training import schedule
from tests import testing
from tests.models import action_vlad_test

_TRAIN_STREAM = dict(learning_rates=(1e-2, 1e-4), decay_steps=200)
_OVERRIDE = {
    "from_scratch_schedule.learning_rates": (3e-3, 3e-4),
    "from_scratch_schedule.decay_steps": 100000,
}


class StreamScheduleTest(absltest.TestCase):
    def test_an_aggregator_that_starts_random_takes_the_from_scratch_schedule(self):
        for pooling in ("conv_pooling", "lstm", "nextvlad"):
            model = action_vlad_test.tiny_model(pooling=pooling)
            with testing.gin_bindings(_OVERRIDE):
                got = schedule.stream_schedule(model, **_TRAIN_STREAM)
            self.assertEqual(got, ((3e-3, 3e-4), 100000), pooling)

    def test_netvlad_keeps_train_streams_schedule(self):
        model = action_vlad_test.tiny_model(pooling="netvlad")
        with testing.gin_bindings(_OVERRIDE):
            got = schedule.stream_schedule(model, **_TRAIN_STREAM)
        self.assertEqual(got, ((1e-2, 1e-4), 200))

    def test_unbound_keeps_train_streams_schedule(self):
        model = action_vlad_test.tiny_model(pooling="lstm")
        got = schedule.stream_schedule(model, **_TRAIN_STREAM)
        self.assertEqual(got, ((1e-2, 1e-4), 200))
        with testing.gin_bindings({"from_scratch_schedule.decay_steps": 7}):
            got = schedule.stream_schedule(model, **_TRAIN_STREAM)
        self.assertEqual(got, ((1e-2, 1e-4), 7))


if __name__ == "__main__":
    absltest.main()
