"""Every shipped gin config parses strictly and builds its models.

Parameterised over `gin/**/*.gin` (files added later are picked up). Each is
parsed with `skip_unknown=False` the way `python -m avlad_tf.train` does, plus
bindings that shrink the backbone, and every stream it trains is built under
its gin scope on tiny shapes and run once. An overlay (a file that includes
nothing, e.g. `toy/shrink.gin`) is parsed on top of `base.gin`.

The rows (`gin/table*.gin`, `gin/aggregators_*.gin` and the toy's
`gin/toy/clips_*.gin`, one file per row; experiments/rows.py) hold each experiment
once: no two rows are the same statements, and every statement of a row
changes its config; a row that only includes another config is the base row
of its tables, at most one per table.
"""

import glob
import os
import re
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import gin
import numpy as np

from avlad_tf import cli
from avlad_tf.models import action_vlad
from avlad_tf.models import backbones
from avlad_tf.models import frames
from avlad_tf.models import inspection
from avlad_tf.training import loop
from avlad_tf.training import stream_model

_GIN_DIR = cli.GIN_DIR
_FILES = sorted(
    os.path.relpath(p, _GIN_DIR)
    for p in glob.glob(os.path.join(_GIN_DIR, "**", "*.gin"), recursive=True)
)
_SCOPES = ("", "rgb/", "flow/", "fused/")
# Shrink the model, in every stream scope (scoped bindings win over plain).
_TINY = [
    f"{scope}build_model.{name} = {value}"
    for scope in _SCOPES
    for name, value in (
        ("backbone", "'tiny'"),
        ("image_size", "16"),
        ("weights", "None"),
        ("flow_stack", "2"),
    )
]
_NUM_CLASSES = 3
# Stand-ins whose frames must be larger than `_TINY`'s (Karpathy et al.'s
# networks read at least 32 px).
_LARGER_FRAMES = tuple(
    name for name in backbones.DEFAULT_ENDPOINTS if name.endswith("_fusion")
) + ("tiny_single_frame",)
_INCLUDE = re.compile(r"^\s*include\s")
_TABLES = re.compile(r"^# Table ([\w/]+), row \d+:", re.MULTILINE)


def _is_row(name):
    with open(os.path.join(_GIN_DIR, name), encoding="utf-8") as f:
        return bool(_TABLES.search(f.read()))


# The paper's rows (table*.gin), the aggregator table's (aggregators_*) and
# the toy table of clip models' (toy/clips_*).
_ROWS = [f for f in _FILES if _is_row(f)]


def _statements(name):
    """A gin file's statements, comments and blank lines stripped."""
    with open(os.path.join(_GIN_DIR, name), encoding="utf-8") as f:
        lines = [re.sub(r"\s+#.*$", "", line).strip() for line in f]
    return [line for line in lines if line and not line.startswith("#")]


def _is_overlay(name):
    return name != "base.gin" and not any(
        _INCLUDE.match(line) for line in _statements(name)
    )


def _tables(name):
    with open(os.path.join(_GIN_DIR, name), encoding="utf-8") as f:
        return _TABLES.search(f.read()).group(1).split("/")


def _config(path):
    gin.clear_config()
    cli.parse_gin([path], [])
    return gin.config_str()


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
        rows = [f for f in _ROWS if f.startswith("table")]
        self.assertNotEmpty(rows)
        for name in rows:
            with open(os.path.join(_GIN_DIR, name), encoding="utf-8") as f:
                header = [line for line in f if line.startswith("# Paper:")]
            self.assertLen(header, 1, name)
            self.assertRegex(header[0], r"^# Paper: \d+\.\d \((Table|Sec\.) ", name)
            self.assertNotRegex(header[0].lower(), "recalled|unverified|unknown", name)

    def test_files_were_found(self):
        for name in (
            "base.gin",
            "rgb.gin",
            "flow.gin",
            "late_fuse.gin",
            "toy/late_fuse.gin",
        ):
            self.assertIn(name, _FILES)

    def _tiny_endpoints(self, stand_ins):
        """InceptionV3 endpoints (`mixed*`) become the tiny net's conv5_3;
        a backbone with a tiny stand-in (I3D, C3D, Karpathy et al.'s
        networks: `stand_ins`, by scope) keeps its endpoint on it."""
        for scope in _SCOPES:
            try:
                endpoint = gin.query_parameter(f"{scope}build_model.endpoint")
            except ValueError:
                continue
            if isinstance(endpoint, str) and endpoint.startswith("mixed"):
                with gin.unlock_config():
                    gin.bind_parameter(f"{scope}build_model.endpoint", "conv5_3")
        with gin.unlock_config():  # every scope: `_TINY` binds each
            for scope, backbone in stand_ins.items():
                gin.bind_parameter(f"{scope}build_model.backbone", backbone)
                if backbone in _LARGER_FRAMES:
                    gin.bind_parameter(f"{scope}build_model.image_size", 32)

    def _stand_ins(self, files):
        """{scope: tiny stand-in} of the backbones `files` bind (before
        `_TINY` replaces them), for those that have one."""
        cli.parse_gin(files, [])
        stand_ins = {}
        for scope in _SCOPES:
            try:
                backbone = gin.query_parameter(f"{scope}build_model.backbone")
            except ValueError:
                backbone = gin.query_parameter("build_model.backbone")
            tiny = backbone if backbone.startswith("tiny_") else f"tiny_{backbone}"
            if tiny in backbones.DEFAULT_ENDPOINTS:
                stand_ins[scope] = tiny
        gin.clear_config()
        return stand_ins

    def test_no_two_rows_are_the_same_experiment(self):
        # Rows with the same statements would train the same model twice;
        # only base rows (a bare include) of different tables may match.
        by_body = {}
        for name in _ROWS:
            by_body.setdefault(tuple(_statements(name)), []).append(name)
        for body, names in by_body.items():
            if len(names) > 1:
                self.assertLen(body, 1, f"{names} are the same row")
                self.assertTrue(_INCLUDE.match(body[0]), names)
                tables = [t for n in names for t in _tables(n)]
                self.assertCountEqual(tables, set(tables), names)

    def test_each_table_has_at_most_one_base_row(self):
        base_rows = {}
        for name in _ROWS:
            if all(_INCLUDE.match(line) for line in _statements(name)):
                for table in _tables(name):
                    base_rows.setdefault(table, []).append(name)
        for table, names in base_rows.items():
            self.assertLen(names, 1, f"Table {table}: {names} change nothing")
        self.assertEqual(base_rows["1"], ["table1_actionvlad_rgb.gin"])
        self.assertEqual(base_rows["4"], ["table4_hmdb51.gin"])

    @parameterized.parameters(*_ROWS)
    def test_every_statement_of_a_row_changes_it(self, name):
        # A binding that repeats what the row includes changes nothing (a
        # base row is a bare include; see the test above).
        with open(os.path.join(_GIN_DIR, name), encoding="utf-8") as f:
            lines = f.read().splitlines(keepends=True)
        config = _config(os.path.join(_GIN_DIR, name))
        with tempfile.TemporaryDirectory() as tmp:
            for i, line in enumerate(lines):
                if (
                    not line.strip()
                    or line.lstrip().startswith("#")
                    or _INCLUDE.match(line)
                ):
                    continue
                path = os.path.join(tmp, os.path.basename(name))
                with open(path, "w", encoding="utf-8") as f:
                    f.writelines(lines[:i] + lines[i + 1 :])
                self.assertTrue(
                    _config(path) != config, f"{name}: {line.strip()!r} changes nothing"
                )

    def test_toy_base_is_base_and_the_shrink(self):
        # One toy shrink: toy/base.gin applies toy/shrink.gin (the table
        # runner's toy overlay) to base.gin and adds only the toy's K.
        self.assertTrue(_is_overlay("toy/shrink.gin"))
        self.assertEqual(
            _statements("toy/base.gin"),
            [
                "include 'base.gin'",
                "include 'toy/shrink.gin'",
                "build_model.num_clusters = 16",
            ],
        )

    @parameterized.parameters(*_FILES)
    def test_parses_and_builds(self, name):
        files = ["base.gin", name] if _is_overlay(name) else [name]
        stand_ins = self._stand_ins(files)
        cli.parse_gin(files, _TINY)
        self._tiny_endpoints(stand_ins)
        streams = gin.query_parameter("train.streams")
        self.assertTrue(streams, name)
        self.assertTrue(gin.query_parameter("train.data_dir"), name)
        for stream in streams:
            self.assertIn(stream, loop.STREAM_MODALITIES)
            with gin.config_scope(stream):
                model = action_vlad.build_model(
                    num_classes=_NUM_CLASSES,
                    modality=stream_model.MODEL_MODALITY[stream],
                )
            # A clip backbone reads its window (slow fusion: 10 frames), or
            # two clips of its `clip_length`.
            clips = [
                layer.clip_length
                for layer in inspection.walk_layers(model)
                if isinstance(layer, frames.FoldClips)
            ]
            num_frames = 16 if inspection.mixes_frames(model) else 2
            num_frames = 2 * clips[0] if clips else num_frames
            inputs = {
                t.name.split(":")[0]: np.zeros(
                    (1, num_frames) + tuple(t.shape[2:]), np.float32
                )
                for t in model.inputs
            }
            self.assertEqual(set(inputs), set(loop.STREAM_MODALITIES[stream]))
            logits = np.asarray(model(inputs))
            self.assertEqual(logits.shape, (1, _NUM_CLASSES))
            self.assertTrue(np.all(np.isfinite(logits)))


if __name__ == "__main__":
    absltest.main()
