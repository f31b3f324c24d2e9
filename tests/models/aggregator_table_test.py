"""`models.aggregators`: one table of poolings whose traits match their layers."""

import ast
import pathlib

from absl.testing import absltest
from absl.testing import parameterized
import keras
import numpy as np

from avlad_tf.models import action_vlad
from avlad_tf.models import aggregators
from avlad_tf.models import fusion
from avlad_tf.models import inspection
from avlad_tf.models import poolings
from avlad_tf.models import streamed
from tests import testing
from tests.models import action_vlad_test

# String constants equal to a pooling name that mean something else.
_OTHER_MEANINGS = {
    ("avlad_tf/models/fusion.py", "avg"),  # STFN's fusion op default
    # The export config's kind of model: 'single', 'late' or 'fused'.
    ("avlad_tf/serving/graph.py", "late"),
    ("avlad_tf/serving/saved_model.py", "late"),
    ("avlad_tf/serving/streaming.py", "late"),
}


class TableTest(parameterized.TestCase):
    @parameterized.parameters(*sorted(aggregators.AGGREGATORS))
    def test_each_row_builds_a_layer_with_the_traits_it_declares(self, pooling):
        aggregator = aggregators.get(pooling)
        endpoint = "fc7" if pooling == "two_stream" else None
        model = action_vlad_test.tiny_model(pooling=pooling, endpoint=endpoint)
        layer = inspection.pooling_layer(model)
        self.assertEqual(layer.name, aggregator.layer_name)
        self.assertIs(aggregators.of_layer(layer), aggregator)
        self.assertEqual(aggregator.takes_centers, hasattr(layer, "set_centers"))
        self.assertEqual(aggregator.streams, hasattr(layer, "update"))
        if aggregator.clusters:
            self.assertEqual(layer.num_clusters, 4)
        inputs = action_vlad_test.video_inputs(model)
        outputs = inspection.endpoints_model(model)(inputs)
        self.assertIn("descriptor", outputs)
        self.assertEqual(outputs["descriptor"].shape[0], 2)
        if aggregator.streams:
            self.assert_streams_as_the_model(model, inputs)

    def assert_streams_as_the_model(self, model, inputs):
        """Two chunks through `StreamedModel` give the whole video's logits."""
        streamed_model = streamed.StreamedModel(model)
        ((name, video),) = inputs.items()
        state = streamed_model.initial_state(2)
        for chunk in (video[:, :2], video[:, 2:]):
            mask = np.ones(chunk.shape[:2], "float32")
            state = streamed_model.update(state, chunk, mask)
        _, logits = streamed_model.finish(state)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(logits),
            keras.ops.convert_to_numpy(model(inputs, training=False)),
            atol=1e-4,
        )

    def test_context_gating_after_any_pooling(self):
        for pooling in ("netvlad", "nextvlad"):
            model = action_vlad_test.tiny_model(
                pooling=pooling, options={"context_gating.enabled": True}
            )
            gate = model.get_layer(aggregators.GATING_LAYER)
            descriptor = inspection.endpoints_model(model).output["descriptor"]
            self.assertEqual(gate.input.shape, descriptor.shape)
            self.assert_streams_as_the_model(
                model, action_vlad_test.video_inputs(model)
            )
        plain = action_vlad_test.tiny_model(pooling="netvlad")
        self.assertNotIn(
            aggregators.GATING_LAYER, [layer.name for layer in plain.layers]
        )

    def test_layer_names_by_trait(self):
        self.assertEqual(
            aggregators.layer_names(takes_centers=True),
            {"netvlad", "netrvlad", "ghostvlad"},
        )
        self.assertIn("conv_pool", aggregators.layer_names(from_scratch=True))
        self.assertNotIn("netvlad", aggregators.layer_names(from_scratch=True))

    def test_option_builders_are_the_chosen_aggregators_and_heads(self):
        self.assertEqual(
            action_vlad.option_builders("lstm", "late"), [poolings.recurrent_pooling]
        )
        self.assertEqual(
            action_vlad.option_builders("res_inception", "stfn"), [fusion.stfn_fusion]
        )
        self.assertEqual(action_vlad.option_builders("netvlad", None), [])

    def test_conv_pooling_fc_dropout_defaults_to_the_backbones(self):
        default = action_vlad_test.tiny_model(pooling="conv_pooling")
        self.assertEqual(inspection.pooling_layer(default).dropout_rate, 0.8)
        bound = action_vlad_test.tiny_model(
            pooling="conv_pooling", options={"conv_pooling_fc.dropout_rate": 0.0}
        )
        self.assertEqual(inspection.pooling_layer(bound).dropout_rate, 0.0)

    def test_recurrent_pooling_frame_pooling_reaches_the_lstm(self):
        model = action_vlad_test.tiny_model(
            pooling="lstm", options={"recurrent_pooling.frame_pooling": "max"}
        )
        self.assertEqual(inspection.pooling_layer(model).frame_pooling, "max")

    def test_unknown_pooling_lists_the_known_ones(self):
        with self.assertRaisesRegex(ValueError, r"Unknown pooling 'vlad'.*'netvlad'"):
            aggregators.get("vlad")

    def _literals(self, names, home):
        """`path:line 'name'` of each string constant in `names` outside
        `home`, the layers and `_OTHER_MEANINGS`."""
        found = []
        for path in sorted((pathlib.Path(testing.REPO) / "avlad_tf").rglob("*.py")):
            relative = path.relative_to(testing.REPO).as_posix()
            if relative == home or "/layers/" in relative:
                continue  # the table, and the layers' own internal names
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and node.value in names:
                    if (relative, node.value) not in _OTHER_MEANINGS:
                        found.append(f"{relative}:{node.lineno} {node.value!r}")
        return found

    def test_a_pooling_name_is_written_in_the_table_only(self):
        # Elsewhere the library refers to the table (its constants and traits),
        # so adding an aggregator touches its layer file and one row.
        names = set(aggregators.AGGREGATORS)
        self.assertEqual(self._literals(names, "avlad_tf/models/aggregators.py"), [])

    def test_a_fusion_name_is_written_in_the_fusion_module_only(self):
        names = set(fusion.FUSIONS)
        self.assertEqual(self._literals(names, "avlad_tf/models/fusion.py"), [])


if __name__ == "__main__":
    absltest.main()
