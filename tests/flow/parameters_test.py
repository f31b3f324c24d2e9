"""Tests for avlad_tf.flow.parameters: TV-L1's parameters and presets."""

import dataclasses

from absl.testing import absltest
from absl.testing import parameterized

from avlad_tf.flow import parameters

# OpenCV contrib's CPU defaults of `DualTVL1OpticalFlow_create` (docs/FLOW.md).
_OPENCV_DEFAULTS = {
    "tau": 0.25,
    "lambda_": 0.15,
    "theta": 0.3,
    "nscales": 5,
    "warps": 5,
    "epsilon": 0.01,
    "inner_iterations": 30,
    "outer_iterations": 10,
    "scale_step": 0.8,
    "gamma": 0.0,
    "median_filtering": 5,
}


class PresetsTest(absltest.TestCase):
    def test_opencv_preset_is_the_cpu_defaults(self):
        params = parameters.resolve_parameters("opencv")
        self.assertEqual(params, parameters.Parameters())
        for name, value in _OPENCV_DEFAULTS.items():
            self.assertEqual(getattr(params, name), value, name)
        self.assertEqual(params.interpolation, "opencv")
        self.assertFalse(params.sparse_error_check)

    def test_cuda_preset_differs_only_in_its_rules(self):
        cpu = dataclasses.asdict(parameters.resolve_parameters("opencv"))
        cuda = dataclasses.asdict(parameters.resolve_parameters("opencv_cuda"))
        differing = {k: cuda[k] for k in cpu if cpu[k] != cuda[k]}
        self.assertEqual(
            differing,
            {
                "inner_iterations": 300,
                "outer_iterations": 1,
                "median_filtering": 1,
                "interpolation": "cuda",
                "sparse_error_check": True,
            },
        )

    def test_every_preset_resolves(self):
        self.assertEqual(parameters.PRESETS, ("release", "opencv", "opencv_cuda"))
        for preset in parameters.PRESETS:
            self.assertIsInstance(
                parameters.resolve_parameters(preset), parameters.Parameters
            )

    def test_parameters_are_frozen(self):
        with self.assertRaises(dataclasses.FrozenInstanceError):
            parameters.Parameters().warps = 3


class ResolveTest(parameterized.TestCase):
    def test_overrides_apply_on_top_of_the_preset(self):
        params = parameters.resolve_parameters("opencv_cuda", warps=3, tau=0.2)
        self.assertEqual((params.warps, params.tau), (3, 0.2))
        self.assertEqual(params.inner_iterations, 300)  # the preset's
        # The preset itself is untouched.
        self.assertEqual(parameters.resolve_parameters("opencv_cuda").warps, 5)

    def test_unknown_preset(self):
        with self.assertRaisesRegex(
            ValueError,
            r"preset must be one of \('release', 'opencv', 'opencv_cuda'\), "
            r"got 'cuda'\.",
        ):
            parameters.resolve_parameters("cuda")

    def test_unknown_parameter_names_it_and_the_known_ones(self):
        with self.assertRaisesRegex(
            ValueError, r"unknown TV-L1 parameter\(s\) \['iterations'\]; .*'warps'"
        ):
            parameters.resolve_parameters(iterations=3)

    @parameterized.named_parameters(
        ("no_scales", {"nscales": 0}, "nscales and warps must be >= 1, got 0 and 5"),
        ("no_warps", {"warps": 0}, "nscales and warps must be >= 1, got 5 and 0"),
        ("scale_step_one", {"scale_step": 1.0}, r"scale_step must be in \(0, 1\)"),
        ("scale_step_zero", {"scale_step": 0.0}, r"got 0\.0"),
    )
    def test_values_opencv_rejects(self, overrides, message):
        with self.assertRaisesRegex(ValueError, message):
            parameters.resolve_parameters(**overrides)

    def test_edge_values_opencv_takes(self):
        params = parameters.resolve_parameters(nscales=1, warps=1, scale_step=0.5)
        self.assertEqual((params.nscales, params.warps), (1, 1))


class OpenCVNamesTest(absltest.TestCase):
    def test_every_opencv_name_maps_to_a_parameter(self):
        fields = {f.name for f in dataclasses.fields(parameters.Parameters)}
        self.assertEqual(
            set(parameters.OPENCV_NAMES.values()),
            fields - {"pyramid", "interpolation", "sparse_error_check"},
        )
        self.assertLen(set(parameters.OPENCV_NAMES.values()), 11)

    def test_from_opencv_names_takes_pairs_or_a_dict(self):
        expected = {"inner_iterations": 50, "scale_step": 0.5, "lambda_": 0.1}
        pairs = (("innnerIterations", 50), ("scaleStep", 0.5), ("lambda_", 0.1))
        self.assertEqual(parameters.from_opencv_names(pairs), expected)
        self.assertEqual(parameters.from_opencv_names(dict(pairs)), expected)
        self.assertEqual(parameters.from_opencv_names(()), {})
        # The overrides resolve.
        params = parameters.resolve_parameters(**parameters.from_opencv_names(pairs))
        self.assertEqual(params.inner_iterations, 50)

    def test_a_name_opencv_does_not_take(self):
        # The snake_case name is not OpenCV's (which keeps its typo).
        with self.assertRaisesRegex(
            ValueError, r"unknown TV-L1 parameter\(s\) \['inner_iterations'\]"
        ):
            parameters.from_opencv_names({"inner_iterations": 3})


if __name__ == "__main__":
    absltest.main()
