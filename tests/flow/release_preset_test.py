"""The 'release' preset: OpenCV 2.4's GPU Dual TV-L1, as dense_flow ran it.

OpenCV 2.4's GPU module cannot run here, so the preset is checked in parts
against what its sources do (docs/FLOW.md): its defaults and pyramid sizes
directly; `pyrDown` and the CUDA resize in tests/flow/image_ops_test.py; the
CUDA warp and stopping rules in tests/flow/tvl1_test.py; and the coarse-to-
fine scheme here, against OpenCV's own CPU solver run one level at a time on
a `cv2.pyrDown` pyramid with the flow resized and doubled between levels.
Then the preset must recover fast motion that OpenCV >= 3's x0.8 pyramid
loses.
"""

import dataclasses

from absl.testing import absltest
import cv2
import numpy as np
import pytest

from avlad_tf.flow import parameters
from avlad_tf.flow import runner
from avlad_tf.flow import synthetic
from avlad_tf.flow import tvl1

SIZE = (256, 340)
BORDER = 32  # beyond the largest motion: every interior pixel stays in view


def _interior(x):
    return x[BORDER:-BORDER, BORDER:-BORDER]


def _endpoint(a, b):
    return np.linalg.norm(a - b, axis=-1)


def _opencv_by_levels(first, second, *, nscales=5):
    """OpenCV's CPU TV-L1 (300 iterations, no median) on each level of a
    `cv2.pyrDown` pyramid, coarsest first, the flow resized and doubled in
    between: the 2.4 GPU scheme with the CPU's warp and stopping rules."""
    levels = [(first.astype(np.float32), second.astype(np.float32))]
    while len(levels) < nscales:
        down = tuple(cv2.pyrDown(image) for image in levels[-1])
        if min(down[0].shape) < 16:
            break
        levels.append(down)
    solver = cv2.optflow.DualTVL1OpticalFlow_create(
        nscales=1,
        innnerIterations=300,
        outerIterations=1,
        medianFiltering=1,
        useInitialFlow=True,
    )
    flow = np.zeros((*levels[-1][0].shape, 2), np.float32)
    for level, (a, b) in enumerate(reversed(levels)):
        if level:
            height, width = a.shape
            flow = 2.0 * cv2.resize(
                flow, (width, height), interpolation=cv2.INTER_LINEAR
            )
        flow = solver.calc(a / 255.0, b / 255.0, flow)
    return flow


class DefinitionTest(absltest.TestCase):
    def test_the_release_preset_is_the_24_gpu_defaults(self):
        params = parameters.resolve_parameters("release")
        self.assertEqual(
            dataclasses.asdict(params),
            {
                "tau": 0.25,
                "lambda_": 0.15,
                "theta": 0.3,
                "nscales": 5,
                "warps": 5,
                "epsilon": 0.01,
                "inner_iterations": 300,
                "outer_iterations": 1,
                "scale_step": 0.5,
                "gamma": 0.0,
                "median_filtering": 1,
                "pyramid": "pyrdown",
                "interpolation": "cuda",
                "sparse_error_check": True,
            },
        )

    def test_it_is_the_default_preset(self):
        self.assertEqual(parameters.DEFAULT_PRESET, "release")
        self.assertEqual(
            parameters.resolve_parameters(), parameters.resolve_parameters("release")
        )

    def test_pyramid_stops_before_a_side_under_16(self):
        release = parameters.resolve_parameters("release")
        # 256 x 340: five levels, the coarsest 1/16; UCF101's native 240 x
        # 320: four, since a fifth would be 15 x 20.
        self.assertEqual(
            tvl1._pyramid_sizes(SIZE, release),
            [(256, 340), (128, 170), (64, 85), (32, 43), (16, 22)],
        )
        self.assertEqual(
            tvl1._pyramid_sizes((240, 320), release),
            [(240, 320), (120, 160), (60, 80), (30, 40)],
        )
        opencv = parameters.resolve_parameters("opencv")
        self.assertEqual(tvl1._pyramid_sizes(SIZE, opencv)[-1], (105, 139))

    def test_a_halving_pyramid_needs_a_scale_step_of_one_half(self):
        with self.assertRaisesRegex(ValueError, "scale_step must be 0.5"):
            parameters.resolve_parameters("release", scale_step=0.8)

    def test_unknown_rules(self):
        with self.assertRaisesRegex(ValueError, "pyramid must be one of"):
            parameters.resolve_parameters("release", pyramid="gaussian")
        with self.assertRaisesRegex(ValueError, "interpolation must be one of"):
            parameters.resolve_parameters("release", interpolation="cubic")


@pytest.mark.slow
class CoarseToFineTest(absltest.TestCase):
    def test_the_scheme_is_opencvs_solver_on_a_pyrdown_pyramid(self):
        scenes = [
            synthetic.smooth_motion(*SIZE),
            synthetic.large_motion(*SIZE, magnitude=10, kind="warp"),
        ]
        firsts = np.stack([s[0] for s in scenes])
        seconds = np.stack([s[1] for s in scenes])
        # The release preset with the CPU's warp, resize and stopping rules.
        ours = runner.tvl1_flow(
            firsts,
            seconds,
            preset="release",
            interpolation="opencv",
            sparse_error_check=False,
        )
        for (first, second, _), flow in zip(scenes, ours):
            error = _endpoint(flow, _opencv_by_levels(first, second))
            self.assertLessEqual(error.mean(), 0.02)
            self.assertGreaterEqual((_interior(error) <= 0.1).mean(), 0.99)


@pytest.mark.slow
class LargeMotionTest(absltest.TestCase):
    CASES = [(k, m) for k in ("translation", "warp") for m in (4, 10, 16, 24)]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.scenes = [
            synthetic.large_motion(*SIZE, magnitude=m, kind=k) for k, m in cls.CASES
        ]
        # A texture without coarse structure, 10 px to the right.
        cls.fine = synthetic.large_motion(*SIZE, magnitude=10, texture="fine")
        pairs = [*cls.scenes, cls.fine]
        cls.flows = runner.PairFlow(SIZE, preset="release", batch_size=len(pairs))(
            np.stack([s[0] for s in pairs]), np.stack([s[1] for s in pairs])
        )

    def test_the_release_preset_recovers_fast_motion(self):
        for (kind, magnitude), (_, _, truth), flow in zip(
            self.CASES, self.scenes, self.flows
        ):
            error = _interior(_endpoint(flow, truth)).mean()
            self.assertLess(error, 0.5, f"{kind} {magnitude} px: {error:.2f} px")

    def test_where_the_opencv_preset_loses_the_motion(self):
        # OpenCV's x0.8 pyramid (its coarsest level 0.41) loses the fine
        # texture's 10 px; 2.4's halving pyramid (1/16) does not.
        first, second, truth = self.fine
        opencv = cv2.optflow.DualTVL1OpticalFlow_create().calc(first, second, None)
        self.assertGreater(_interior(_endpoint(opencv, truth)).mean(), 2.0)
        self.assertLess(_interior(_endpoint(self.flows[-1], truth)).mean(), 0.5)


if __name__ == "__main__":
    absltest.main()
