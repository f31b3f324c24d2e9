"""Variable names of the release's TF-slim checkpoints (docs/RELEASE.md Sec. 6).

Maps a checkpoint variable name to the avlad_tf layer and weight that holds
it. Names come in two styles (Sec. 6.2): with the stream scope
(`stream0/vgg_16/conv1/conv1_1/weights`, written by the release's own
training) or without it (`vgg_16/conv1/conv1_1/weights`, slim ImageNet style).
"""

import dataclasses
import re

from avlad_tf.models import aggregators

# Optimizer slots and counters: saved by training, meaningless to a model.
# The release trains with Adam; slim's RMSProp / Momentum slot names and
# ExponentialMovingAverage shadows are listed too so that any slim checkpoint
# is reported the same way.
_BOOKKEEPING = re.compile(
    r"(^|/)global_step$"
    r"|(^|/)beta[12]_power(_\d+)?$"
    r"|/(Adam|RMSProp|Momentum|ExponentialMovingAverage)(_\d+)?$"
)
_STREAM = re.compile(r"^stream(\d+)/(.*)$")
_VGG_CONV = re.compile(r"^vgg_16/conv(\d)/conv(\d)_(\d)/(weights|biases)$")
_VGG_FC = re.compile(r"^vgg_16/(fc[678])/(weights|biases)$")
_SLIM_PARAM = {"weights": "kernel", "biases": "bias"}
# The three NetVLAD variables (Sec. 5.1) and our NetVLAD layer's weights.
_NETVLAD = {
    "NetVLAD/centers": "centers",
    "NetVLAD/vlad_W": "assignment_kernel",
    "NetVLAD/vlad_B": "assignment_bias",
}
NETVLAD_LAYER = aggregators.get(aggregators.NETVLAD).layer_name
LOGITS_LAYER = "logits"


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a checkpoint variable goes in an avlad_tf model.

    Attributes:
        layer: layer name (docs/CONTRACTS.md), e.g. `block1_conv1`.
        weight: the weight's name inside the layer, e.g. `kernel`.
        flatten: the checkpoint holds a 1x1 conv kernel `[1, 1, D, K]` (or a
            VALID conv kernel `[h, w, C, F]`) that the model may hold as a
            matrix `[D, K]` (`[h·w·C, F]`): row-major flattening of the
            leading axes, which is how a Dense layer reads a flattened NHWC
            map.
    """

    layer: str
    weight: str
    flatten: bool = False


def is_bookkeeping(name):
    """Whether `name` is an optimizer slot, step counter or Adam power."""
    return bool(_BOOKKEEPING.search(name))


def split_stream(name):
    """Splits off a leading `stream<i>/` scope.

    Returns:
        `(i, rest)`, with `i = None` when the name has no stream scope.
    """
    match = _STREAM.match(name)
    if match:
        return int(match.group(1)), match.group(2)
    return None, name


def target_for(name):
    """The `Target` of a stream-relative checkpoint name, or None.

    Args:
        name: a variable name without its `stream<i>/` scope, e.g.
            `vgg_16/conv5/conv5_3/weights` or `NetVLAD/vlad_W`.
    """
    match = _VGG_CONV.match(name)
    if match:
        block, block_again, index, param = match.groups()
        if block != block_again:
            return None  # not a name slim's VGG writes
        return Target(f"block{block}_conv{index}", _SLIM_PARAM[param])
    match = _VGG_FC.match(name)
    if match:
        layer, param = match.groups()
        return Target(layer, _SLIM_PARAM[param], flatten=param == "weights")
    if name in _NETVLAD:
        return Target(NETVLAD_LAYER, _NETVLAD[name], flatten=name == "NetVLAD/vlad_W")
    if name == "classifier/logits/weights":
        return Target(LOGITS_LAYER, "kernel")
    if name == "classifier/logits/biases":
        return Target(LOGITS_LAYER, "bias")
    return None
