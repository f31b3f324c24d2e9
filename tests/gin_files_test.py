"""Every shipped gin config parses strictly and builds its models.

Parameterised over `gin/**/*.gin` (files added later are picked up). Each is
parsed with `skip_unknown=False` the way `python -m avlad_tf.train` does, plus
bindings that shrink the backbone, and every stream it trains is built under
its gin scope on tiny shapes and run once.
"""

import glob
import os

from absl.testing import absltest
from absl.testing import parameterized
import gin
import numpy as np

from avlad_tf import cli
from avlad_tf.models import action_vlad
from avlad_tf.training import loop

_GIN_DIR = cli.GIN_DIR
_FILES = sorted(os.path.relpath(p, _GIN_DIR) for p in glob.glob(
    os.path.join(_GIN_DIR, "**", "*.gin"), recursive=True))
_SCOPES = ("", "rgb/", "flow/", "fused/")
# Shrink the model, in every stream scope (scoped bindings win over plain).
_TINY = [f"{scope}build_model.{name} = {value}"
         for scope in _SCOPES for name, value in (
             ("backbone", "'tiny'"), ("image_size", "16"),
             ("weights", "None"), ("flow_stack", "2"))]
_NUM_CLASSES = 3


class GinFilesTest(parameterized.TestCase):

    def setUp(self):
        super().setUp()
        gin.clear_config()

    def tearDown(self):
        gin.clear_config()
        super().tearDown()

    def test_every_row_names_its_paper_number_and_source(self):
        # Each ablation row's header gives the paper's number and where it
        # stands (table or section), and nothing is left "recalled" or
        # "unknown".
        rows = [f for f in _FILES if f.startswith("table")]
        self.assertNotEmpty(rows)
        for name in rows:
            with open(os.path.join(_GIN_DIR, name), encoding="utf-8") as f:
                header = [line for line in f if line.startswith("# Paper:")]
            self.assertLen(header, 1, name)
            self.assertRegex(header[0], r"^# Paper: \d+\.\d \((Table|Sec\.) ",
                             name)
            self.assertNotRegex(header[0].lower(), "recalled|unverified|unknown",
                                name)

    def test_files_were_found(self):
        for name in ("base.gin", "rgb.gin", "flow.gin", "late_fuse.gin",
                     "toy/late_fuse.gin"):
            self.assertIn(name, _FILES)

    def _tiny_endpoints(self):
        """InceptionV3 endpoints (`mixed*`) become the tiny net's conv5_3."""
        for scope in _SCOPES:
            try:
                endpoint = gin.query_parameter(f"{scope}build_model.endpoint")
            except ValueError:
                continue
            if isinstance(endpoint, str) and endpoint.startswith("mixed"):
                with gin.unlock_config():
                    gin.bind_parameter(f"{scope}build_model.endpoint",
                                       "conv5_3")

    @parameterized.parameters(*_FILES)
    def test_parses_and_builds(self, name):
        cli.parse_gin([name], _TINY)
        self._tiny_endpoints()
        streams = gin.query_parameter("train.streams")
        self.assertTrue(streams, name)
        self.assertTrue(gin.query_parameter("train.data_dir"), name)
        for stream in streams:
            self.assertIn(stream, loop.STREAM_MODALITIES)
            with gin.config_scope(stream):
                model = action_vlad.build_model(
                    num_classes=_NUM_CLASSES,
                    modality=loop._MODEL_MODALITY[stream])
            inputs = {t.name.split(":")[0]: np.zeros(
                (1, 2) + tuple(t.shape[2:]), np.float32)
                for t in model.inputs}
            self.assertEqual(set(inputs),
                             set(loop.STREAM_MODALITIES[stream]))
            logits = np.asarray(model(inputs))
            self.assertEqual(logits.shape, (1, _NUM_CLASSES))
            self.assertTrue(np.all(np.isfinite(logits)))


if __name__ == "__main__":
    absltest.main()
