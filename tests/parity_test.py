"""The release's quirks (docs/RELEASE.md §11-12) default to faithful.

Each parity switch listed in docs/PARITY.md is checked twice: its code default
and the value the shipped gin configs give it (`gin/base.gin`, plus the flow
and late-fusion configs for their scoped bindings). Behaviours without a
switch are checked as constants or on a small model.
"""

import inspect
import os

from absl.testing import absltest
from absl.testing import parameterized
import gin
import numpy as np

from avlad_tf import cli
from avlad_tf import run_record
from avlad_tf.data import crop_geometry
from avlad_tf.data import preprocessing
from avlad_tf.data import video_input
from avlad_tf.evaluation import scoring
from avlad_tf.layers import netvlad
from avlad_tf.models import action_vlad
from avlad_tf.models import backbones
from avlad_tf.models import fusion
from avlad_tf.models import inspection
from avlad_tf.training import kmeans_init
from avlad_tf.training import loop

_PARITY_DOC = os.path.join(os.path.dirname(cli.GIN_DIR), "docs", "PARITY.md")
_FUNCTIONS = {
    "make_dataset": video_input.make_dataset,
    "build_model": action_vlad.build_model,
    "train_stream": loop.train_stream,
    "init_centers": kmeans_init.init_centers,
    "evaluate": scoring.evaluate,
}
# (docs/RELEASE.md section, binding, faithful values). A tuple of
# values lists equivalent spellings, e.g. None meaning "the backbone default".
SWITCHES = (
    ("11.1", "build_model.dropout_rate", [None]),
    ("11.2", "make_dataset.convert_before_resize", [True]),
    ("11.3/12.6", "make_dataset.resize_to", [(256, 340)]),
    ("12.1", "build_model.endpoint", [None, "conv5_3"]),
    ("12.2", "make_dataset.sampling_mode", ["release"]),
    ("12.2", "make_dataset.num_frames", [25]),
    ("12.2", "make_dataset.flow_stack", [10]),
    ("12.2", "make_dataset.joint_sampling", ["shared"]),
    ("12.4", "make_dataset.scale_ratios", [(1.0, 0.875, 0.75, 0.66)]),
    ("12.4", "make_dataset.release_crop_offsets", [True]),
    ("12.6", "make_dataset.half_pixel_centers", [False]),
    ("12.6", "make_dataset.bgr_means", [(104.0, 117.0, 123.0)]),
    ("12.6", "make_dataset.image_size", [224]),
    ("12.7", "build_model.alpha", [1000.0]),
    ("12.7", "build_model.num_clusters", [64]),
    ("12.10", "build_model.weight_decay", [4e-5]),
    ("4.1", "build_model.fc_dropout_rate", [0.8]),
    ("4.2", "build_model.backbone", ["vgg16"]),
    ("12.11", "train_stream.clip_norm", [5.0]),
    ("12.13", "train_stream.learning_rates", [(1e-2, 1e-4)]),
    ("12.13", "train_stream.stage_steps", [(10000, 8000)]),
    ("12.13", "train_stream.decay_steps", [5000]),
    ("12.13", "train_stream.decay_rate", [0.1]),
    ("12.14", "train_stream.adam_epsilon", [1e-4]),
    ("7.2", "train_stream.adam_beta_1", [0.9]),
    ("7.2", "train_stream.adam_beta_2", [0.999]),
    ("12.15", "init_centers.num_random_frames", [5000]),
    ("12.15", "init_centers.num_init", [10]),
    ("12.15", "init_centers.max_descriptors", [None]),
    # None: the run's crops as recorded, `run_record.DEFAULT_NUM_CROPS` (1)
    # unless bound (test_recorded_defaults).
    ("12.16", "evaluate.num_crops", [1, None]),
)
# Scoped bindings of the stream configs: (gin file, binding, faithful value).
SCOPED = (
    ("flow.gin", "flow/evaluate.num_crops", 5),  # 12.16: flow uses 5 crops
    ("late_fuse.gin", "flow/evaluate.num_crops", 5),
    ("late_fuse.gin", "train.fuse_weights", (1, 2)),  # 12.17: RGB:flow 1:2
)


def _same(value, faithful):
    if isinstance(faithful, tuple):
        return (
            isinstance(value, (tuple, list))
            and len(value) == len(faithful)
            and all(_same(v, f) for v, f in zip(value, faithful))
        )
    if isinstance(faithful, float):
        return isinstance(value, (int, float)) and np.isclose(value, faithful)
    return value == faithful and type(value) is type(faithful)


def _code_default(binding):
    function_name, parameter = binding.split(".")
    function = inspect.unwrap(_FUNCTIONS[function_name])
    parameters = inspect.signature(function).parameters
    if parameter not in parameters:
        raise AssertionError(f"parity switch {binding} does not exist")
    return parameters[parameter].default


def _parse(gin_file):
    gin.clear_config()
    cli.parse_gin([gin_file], [])


def _effective(binding):
    """The value under the parsed config: its binding, else the default."""
    try:
        value = gin.query_parameter(binding)
    except ValueError:
        return _code_default(binding)
    if (
        isinstance(value, gin.config.ConfigurableReference)
        and value.selector == "gin.macro"
    ):
        value = value.scoped_configurable_fn()  # a macro such as %NUM_FRAMES
    return value


class ParityDefaultsTest(parameterized.TestCase):
    def tearDown(self):
        gin.clear_config()
        super().tearDown()

    @parameterized.named_parameters(
        (f"{section}_{binding}", binding, faithful)
        for section, binding, faithful in SWITCHES
    )
    def test_code_default_is_faithful(self, binding, faithful):
        default = _code_default(binding)
        self.assertTrue(
            any(_same(default, f) for f in faithful),
            f"{binding} defaults to {default!r}; the release's behaviour is {faithful}",
        )

    def test_base_gin_keeps_faithful_values(self):
        _parse("base.gin")
        for _, binding, faithful in SWITCHES:
            value = _effective(binding)
            self.assertTrue(
                any(_same(value, f) for f in faithful),
                f"base.gin gives {binding} = {value!r}; the "
                f"release's behaviour is {faithful}",
            )

    @parameterized.parameters(*SCOPED)
    def test_stream_configs(self, gin_file, binding, faithful):
        _parse(gin_file)
        self.assertTrue(
            _same(gin.query_parameter(binding), faithful),
            f"{gin_file}: {binding} = "
            f"{gin.query_parameter(binding)!r}, expected "
            f"{faithful!r}",
        )

    def test_every_switch_is_documented(self):
        with open(_PARITY_DOC, encoding="utf-8") as f:
            doc = f.read()
        for _, binding, _ in SWITCHES:
            self.assertIn(f"`{binding} = ", doc)


class FixedBehaviourTest(absltest.TestCase):
    """Quirks reproduced without a switch (docs/PARITY.md, status 'fixed')."""

    def test_constants(self):
        self.assertEqual(netvlad.SQUARED_NORM_EPSILON, 1e-12)  # 12.8
        self.assertEqual(preprocessing.FLOW_MEAN, 128.0)  # 12.3
        self.assertEqual(crop_geometry.crop_sizes(224), (224, 196, 168, 147))  # 12.4
        self.assertEqual(fusion.FUSION_DROPOUT_RATE, 0.5)  # 5.4
        np.testing.assert_allclose(fusion.DEFAULT_LATE_WEIGHTS, (1 / 3, 2 / 3))  # 12.17
        self.assertEqual(run_record.DEFAULT_NUM_CROPS, 1)  # 12.16
        self.assertEqual(backbones.DEFAULT_ENDPOINTS["vgg16"], "conv5_3")

    def test_release_crop_offsets(self):  # 12.4
        offsets = crop_geometry.eval_crop_offsets(
            resize_to=(256, 340), image_size=224, num_crops=5
        )
        self.assertEqual(offsets, ((0, 0), (0, 115), (31, 0), (31, 115), (16, 60)))
        self.assertEqual(
            crop_geometry.eval_crop_offsets(
                resize_to=(256, 340), image_size=224, num_crops=1
            ),
            ((16, 60),),
        )

    def test_pre_relu_endpoints_and_slim_weight_decay(self):  # 12.1, 12.10
        model = action_vlad.build_model(
            num_classes=3, backbone="vgg16", num_clusters=2, image_size=32
        )
        for name in ("block4_conv3", "block5_conv3"):
            layer = inspection.find_layer(model, name)
            self.assertEqual(layer.activation.__name__, "linear", name)
        self.assertEqual(
            inspection.find_layer(model, "block5_conv2").activation.__name__, "relu"
        )
        logits = inspection.find_layer(model, "logits")
        self.assertAlmostEqual(float(logits.kernel_regularizer.l2), 2e-5)
        self.assertIsNone(logits.bias_regularizer)
        vlad = inspection.find_layer(model, "netvlad")
        self.assertEqual(vlad.losses, [])  # 12.9: no decay on NetVLAD
        self.assertEqual(
            inspection.find_layer(model, "pooled_dropout").rate, 0.0
        )  # 11.1


if __name__ == "__main__":
    absltest.main()
