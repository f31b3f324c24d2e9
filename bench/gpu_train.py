"""The stage-2 training step of `bench/gpu.py` (its part 3): each stream's
model with stage 2's trainable set, the project's update, and the search for
the largest batch that trains. Imported after `bench/gpu.py` has chosen
Keras's JAX backend."""

import time

import jax
import jax.numpy as jnp
import keras

from bench.gpu_timing import PRECISIONS
from bench.gpu_timing import compile_and_time
from bench.gpu_timing import memory_stat
from bench.gpu_timing import with_rates

CLIP_NORM, LEARNING_RATE, ADAM_EPSILON = (
    5.0,
    1e-4,
    1e-4,
)  # gin/base.gin, stage 2


def modality_of(stream):
    """`rgb` or `flow`: a stream's input (`i3d_flow` reads flow)."""
    return stream.rsplit("_", 1)[-1]


def build_stream(cfg, stream, precision):
    """The project's stream model with stage 2's trainable set, and its Adam."""
    from avlad_tf.models import action_vlad  # needs gin-config: this part only
    from avlad_tf.models import inspection
    from avlad_tf.training import trainable

    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    i3d = stream.startswith("i3d")
    model = action_vlad.build_model(
        num_classes=cfg["num_classes"],
        modality=modality_of(stream),
        backbone=cfg["i3d"] if i3d else "vgg16",
        endpoint="Mixed_5c" if i3d else "conv5_3",
        pooling="netvlad",
        num_clusters=cfg["clusters"],
        image_size=cfg["image_size"],
        flow_stack=cfg["flow_stack"],
        weights=None,
    )
    trainable.set_stage(model, 2)
    optimizer = keras.optimizers.Adam(learning_rate=LEARNING_RATE, epsilon=ADAM_EPSILON)
    optimizer.build(model.trainable_variables)
    netvlad_dtype = inspection.pooling_layer(model).compute_dtype
    return model, optimizer, {"netvlad_compute_dtype": netvlad_dtype}


def train_step(model, optimizer):
    """`avlad_tf/training/step.py`'s update for one sub-batch: mean softmax
    cross-entropy + L2 losses, each gradient tensor clipped to norm 5, Adam."""

    def loss_fn(trainable, non_trainable, videos, labels):
        logits, non_trainable, losses = model.stateless_call(
            trainable, non_trainable, videos, training=True, return_losses=True
        )
        loss = keras.losses.categorical_crossentropy(labels, logits, from_logits=True)
        return jnp.mean(loss) + sum(losses), non_trainable

    def step(state, videos, labels):
        trainable, non_trainable, opt_vars, _ = state
        (loss, non_trainable), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            trainable, non_trainable, videos, labels
        )
        norms = [jnp.linalg.norm(g.ravel()) for g in grads]
        grads = [
            g * CLIP_NORM / jnp.maximum(n, CLIP_NORM) for g, n in zip(grads, norms)
        ]
        trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
        return (trainable, non_trainable, opt_vars, loss), None

    return step


def train_row(cfg, built, stream, precision, batch, until):
    """Compiles and times the step on `batch` random videos made on the device."""
    start, (model, optimizer, notes) = time.monotonic(), built
    modality = modality_of(stream)
    channels = 3 if modality == "rgb" else 2 * cfg["flow_stack"]
    shape = (batch, cfg["frames"], cfg["image_size"], cfg["image_size"], channels)
    make = jax.jit(lambda key: 50.0 * jax.random.normal(key, shape))  # one buffer
    videos = {modality: make(jax.random.key(batch))}
    labels = jax.nn.one_hot(jnp.arange(batch) % cfg["num_classes"], cfg["num_classes"])
    variables = (model.trainable_variables, model.non_trainable_variables)
    state = [[v.value for v in vs] for vs in (*variables, optimizer.variables)]
    args = ((*state, jnp.zeros(())), videos, labels)
    step = train_step(model, optimizer)
    outputs, result = compile_and_time(step, args, cfg["repeats"], until)
    row = dict(stream=stream, precision=precision, loss=float(outputs[0][3]), **notes)
    return {
        **row,
        **with_rates(result, batch, precision),
        "wall_s": time.monotonic() - start,
    }


def largest_batch(cfg, built, stream, precision, base, until):
    """The largest batch that trains: doubles the base row's batch until a try
    fails (out of memory, or a size XLA or cuDNN refuses), then bisects
    between the largest that worked and the smallest that failed; stops after
    `search_steps` tries, or when the next would pass `until`. Doublings
    that, scaled from the base row, need under half the device are skipped.
    """
    limit, per_video = memory_stat("bytes_limit"), base["compiled_bytes"] or 0
    largest, failed, batch = base["batch"], None, 2 * base["batch"]
    while limit and per_video and 2 * batch * per_video / base["batch"] < limit / 2:
        batch *= 2
    rows, stopped, last = [], "step cap", base
    for _ in range(cfg["search_steps"]):
        if time.monotonic() + 1.5 * last["wall_s"] > until:
            stopped = "time"
            break
        try:
            last = train_row(cfg, built, stream, precision, batch, until)
            largest = batch
            rows.append(last)
        except Exception as error:  # XLA's runtime error, e.g. RESOURCE_EXHAUSTED
            failed = {"batch": batch, "error": str(error)[:500]}
            rows.append(failed)
        if failed and (failed["batch"] - largest) * 8 <= largest:
            stopped = "bisected"  # to within 1/8: each try is a compile
            break
        batch = 2 * largest if failed is None else (largest + failed["batch"]) // 2
    return dict(
        stream=stream,
        precision=precision,
        largest_batch=largest,
        stopped_by=stopped,
        first_failure=failed,
        rows=rows,
    )


def bench_train(cfg, until, streams, search_stream, search_until):
    """Every stream at each precision, then each precision's batch search."""
    rows, searches, models = [], [], {}
    for precision in PRECISIONS:  # bfloat16 first: see `peak_bytes`
        for stream in streams:
            row = dict(stream=stream, precision=precision, batch=cfg["train_batch"])
            if time.monotonic() > until:
                rows.append({**row, "skipped": "time"})
                continue
            built = models[stream, precision] = build_stream(cfg, stream, precision)
            rows.append(train_row(cfg, built, stream, precision, row["batch"], until))
    for i, precision in enumerate(PRECISIONS):
        base = [r for r in rows if r["stream"] == search_stream][i]
        if "skipped" in base or time.monotonic() > search_until:
            searches.append({**base, "largest_batch": None, "skipped": "time"})
            continue
        # Each precision gets its share of the time left.
        share = time.monotonic() + (search_until - time.monotonic()) / (2 - i)
        built = models[search_stream, precision]
        searches.append(
            largest_batch(cfg, built, search_stream, precision, base, share)
        )
    keras.mixed_precision.set_global_policy("float32")
    return {"rows": rows, "largest_batch": searches}
