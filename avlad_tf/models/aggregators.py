"""The aggregators: every `build_model.pooling` name, its builder and traits.

One table, `AGGREGATORS`, maps each pooling name to an `Aggregator`: how to
build its layer on `[B, T, h, w, D]` features and what the rest of the
project needs to know about it, so that no other module branches on a
pooling name:

- `layer_name`: the pooling layer's name in a built model
  (docs/CONTRACTS.md), which `models.inspection` finds;
- `takes_centers`: k-means centres initialise it (Sec. 8,
  `training.kmeans_init`); such a layer has `centers` `[K, D]` and
  `set_centers`;
- `clusters`: it has K clusters (`build_model.num_clusters`, checked);
- `from_scratch`: its weights start random, so it trains from stage 1 on
  (`training.trainable`); the others train from stage 2;
- `recurrent`: it has an output per time step, so it can take a loss at
  every step (`recurrent_pooling.per_step_loss`);
- `endpoints`: its outputs for the visualiser (`inspection.endpoints_model`);
- `streams`: it keeps a running state (`layers.streaming`), so a trained
  model classifies videos of any length chunk by chunk (`models.streamed`);
- `options`: the configurable that holds its own settings (gin binds e.g.
  `recurrent_pooling.per_step_loss`), never more `build_model` arguments;
  a run records the chosen aggregator's (`training.experiment`).

The builders and option configurables are `models.poolings`'. Adding an
aggregator is its layer file, its builder there, one row here, its gin row
and its tests.
"""

from collections.abc import Callable
import dataclasses

from avlad_tf import settings
from avlad_tf.layers import context_gating as gating_layer
from avlad_tf.models import poolings

# The names other modules refer to (a pooling name is written here only).
NETVLAD = "netvlad"
LSTM = "lstm"
VIDEOLSTM = "videolstm"
RES_INCEPTION = "res_inception"


def _descriptor(output):
    """The pooled descriptor of a layer that returns it alone or first."""
    first = output[0] if isinstance(output, (list, tuple)) else output
    return {"descriptor": first}


def _netvlad_endpoints(output):
    descriptor, assignments = output  # (B, K·D), (B, T, h, w, K)
    return {"descriptor": descriptor, "assignments": assignments}


def _videolstm_endpoints(output):
    # (descriptor, [per-step outputs,] attention maps (B, T, h', w'))
    return {"descriptor": output[0], "attention": output[-1]}


@dataclasses.dataclass(frozen=True)
class Aggregator:
    """One pooling choice (module docstring).

    `build(features, *, name, num_clusters, alpha, fc_dropout_rate,
    weight_decay)` returns the descriptor `[B, D']`; a builder reads the
    settings it needs and ignores the others.
    """

    layer_name: str
    build: Callable
    takes_centers: bool = False
    clusters: bool = False
    from_scratch: bool = False
    recurrent: bool = False
    endpoints: Callable = _descriptor
    streams: bool = False
    options: Callable = None


AGGREGATORS = {
    NETVLAD: Aggregator(
        "netvlad",
        poolings.build_netvlad,
        takes_centers=True,
        clusters=True,
        endpoints=_netvlad_endpoints,
        streams=True,
    ),
    "netrvlad": Aggregator(
        "netrvlad",
        poolings.build_netrvlad,
        takes_centers=True,
        clusters=True,
        endpoints=_netvlad_endpoints,
        streams=True,
    ),
    "ghostvlad": Aggregator(
        "ghostvlad",
        poolings.build_ghostvlad,
        takes_centers=True,
        clusters=True,
        endpoints=_netvlad_endpoints,
        streams=True,
        options=poolings.ghostvlad_pooling,
    ),
    "nextvlad": Aggregator(
        "nextvlad",
        poolings.build_nextvlad,
        clusters=True,
        from_scratch=True,
        streams=True,
        options=poolings.nextvlad_pooling,
    ),
    "avg": Aggregator("avg_pool", poolings.build_avg, streams=True),
    "max": Aggregator("max_pool", poolings.build_max, streams=True),
    "two_stream": Aggregator(
        "two_stream_pool", poolings.build_two_stream, streams=True
    ),
    "conv_pooling": Aggregator(
        "conv_pool",
        poolings.build_conv_pooling,
        from_scratch=True,
        options=poolings.conv_pooling_fc,
    ),
    LSTM: Aggregator(
        "lstm_pool",
        poolings.build_lstm,
        from_scratch=True,
        recurrent=True,
        options=poolings.recurrent_pooling,
    ),
    VIDEOLSTM: Aggregator(
        "videolstm_pool",
        poolings.build_videolstm,
        from_scratch=True,
        recurrent=True,
        endpoints=_videolstm_endpoints,
        options=poolings.recurrent_pooling,
    ),
    RES_INCEPTION: Aggregator(
        "res_inception_pool", poolings.build_res_inception, from_scratch=True
    ),
}


@settings.configurable(setting=("enabled",))
def context_gating(*, enabled=False):
    """Context gating (Miech et al. 2017, LOUPE) after any pooling:
    y = sigmoid(W·x + b) * x on the descriptor, before the classifier
    (`layers.ContextGating`, a D' x D' kernel). A run records it only when
    it is on, so the records of runs without it stay as they were."""
    return {"enabled": enabled}


GATING_LAYER = "context_gating"


def gated(descriptor, *, weight_decay):
    """`descriptor` through context gating when `context_gating.enabled`."""
    if not context_gating()["enabled"]:
        return descriptor
    return gating_layer.ContextGating(weight_decay=weight_decay, name=GATING_LAYER)(
        descriptor
    )  # (B, D')


def get(pooling):
    """The `Aggregator` of a pooling name.

    Raises:
        ValueError: an unknown name, listing the known ones.
    """
    if pooling not in AGGREGATORS:
        raise ValueError(
            f"Unknown pooling {pooling!r}; expected one of {sorted(AGGREGATORS)}."
        )
    return AGGREGATORS[pooling]


def layer_names(**traits):
    """The pooling layers' names, of the aggregators with all `traits`
    (e.g. `from_scratch=True`)."""
    return {
        a.layer_name
        for a in AGGREGATORS.values()
        if all(getattr(a, k) == v for k, v in traits.items())
    }


def of_layer(layer):
    """The `Aggregator` whose pooling layer `layer` is (by its name)."""
    return next(a for a in AGGREGATORS.values() if a.layer_name == layer.name)
