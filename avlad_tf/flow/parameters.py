"""TV-L1's parameters: every one of OpenCV's, and the three presets.

`Parameters` holds OpenCV's `DualTVL1OpticalFlow_create` arguments in
snake_case with the contrib CPU defaults, plus the rules in which OpenCV's
implementations differ (`pyramid`, `interpolation`, `sparse_error_check`);
docs/FLOW.md has the table.
"""

import dataclasses

# 'release' first: the default wherever a preset is not named.
PRESETS = ("release", "opencv", "opencv_cuda")
DEFAULT_PRESET = PRESETS[0]


@dataclasses.dataclass(frozen=True)
class Parameters:
    """Every parameter of OpenCV's Dual TV-L1, with the CPU defaults.

    Three rules select how OpenCV's implementations differ:
    `pyramid` ('resize': `resize` by `scale_step`, OpenCV >= 3; 'pyrdown':
    `gpu::pyrDown`, OpenCV 2.4's GPU, where `scale_step` must be 0.5),
    `interpolation` ('opencv': the CPU's bicubic warp and bilinear resize;
    'cuda': the CUDA kernels') and `sparse_error_check` (the CUDA stopping
    rule).
    """

    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    nscales: int = 5
    warps: int = 5
    epsilon: float = 0.01
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8
    gamma: float = 0.0
    median_filtering: int = 5
    pyramid: str = "resize"
    interpolation: str = "opencv"
    sparse_error_check: bool = False


_CUDA = dict(
    inner_iterations=300,
    outer_iterations=1,
    median_filtering=1,
    interpolation="cuda",
    sparse_error_check=True,
)
_PRESET_PARAMETERS = {
    # OpenCV 2.4's `gpu::OpticalFlowDual_TVL1_GPU` with its defaults, as
    # dense_flow ran it for the release's flow (docs/FLOW.md).
    "release": Parameters(scale_step=0.5, pyramid="pyrdown", **_CUDA),
    "opencv": Parameters(),
    "opencv_cuda": Parameters(**_CUDA),
}

_PYRAMIDS = ("resize", "pyrdown")
_RULES = ("opencv", "cuda")

# OpenCV's `DualTVL1OpticalFlow_create` keyword names (its typo included).
OPENCV_NAMES = {
    "tau": "tau",
    "lambda_": "lambda_",
    "theta": "theta",
    "nscales": "nscales",
    "warps": "warps",
    "epsilon": "epsilon",
    "innnerIterations": "inner_iterations",
    "outerIterations": "outer_iterations",
    "scaleStep": "scale_step",
    "gamma": "gamma",
    "medianFiltering": "median_filtering",
}


def from_opencv_names(params):
    """`(name, value)` pairs or a dict in OpenCV's keyword names -> overrides
    in `Parameters` names.

    Raises:
        ValueError: a name OpenCV's `DualTVL1OpticalFlow_create` does not take.
    """
    params = dict(params)
    unknown = sorted(set(params) - set(OPENCV_NAMES))
    if unknown:
        raise ValueError(
            f"unknown TV-L1 parameter(s) {unknown}; OpenCV's names are "
            f"{sorted(OPENCV_NAMES)}."
        )
    return {OPENCV_NAMES[name]: value for name, value in params.items()}


def resolve_parameters(preset=DEFAULT_PRESET, **overrides):
    """The preset's `Parameters` with `overrides` (snake_case names) applied.

    Raises:
        ValueError: an unknown preset or parameter, or a value OpenCV rejects.
    """
    if preset not in _PRESET_PARAMETERS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}.")
    names = {f.name for f in dataclasses.fields(Parameters)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(
            f"unknown TV-L1 parameter(s) {unknown}; the parameters are {sorted(names)}."
        )
    params = dataclasses.replace(_PRESET_PARAMETERS[preset], **overrides)
    if params.nscales < 1 or params.warps < 1:
        raise ValueError(
            f"nscales and warps must be >= 1, got {params.nscales} and {params.warps}."
        )
    if not 0.0 < params.scale_step < 1.0:
        raise ValueError(f"scale_step must be in (0, 1), got {params.scale_step}.")
    for name, allowed in (("pyramid", _PYRAMIDS), ("interpolation", _RULES)):
        if getattr(params, name) not in allowed:
            raise ValueError(
                f"{name} must be one of {allowed}, got {getattr(params, name)!r}."
            )
    if params.pyramid == "pyrdown" and params.scale_step != 0.5:
        raise ValueError(
            f"pyramid='pyrdown' halves each level, so scale_step must be 0.5, "
            f"got {params.scale_step}."
        )
    return params
