"""Timing and cost helpers of `bench/gpu.py`: a compiled JAX step's
steady time, XLA's FLOP and byte counts, and the rates and model-FLOP
utilisation derived from them. Imported after `bench/gpu.py` has chosen
Keras's JAX backend."""

import time

import jax
import numpy as np

PRECISIONS = ("mixed_bfloat16", "float32")
# Dense tensor-core FLOP/s, NVIDIA's SXM data sheets. JAX's default precision
# runs float32 convolutions and matmuls as TF32 on these chips.
PEAK_FLOPS = {
    "H200": {"mixed_bfloat16": 989e12, "float32": 494e12},
    "H100": {"mixed_bfloat16": 989e12, "float32": 494e12},
    "A100": {"mixed_bfloat16": 312e12, "float32": 156e12},
}
PEAK_BASIS = {"mixed_bfloat16": "bf16 dense", "float32": "tf32 dense"}


def memory_stat(key):
    """A JAX device memory statistic; None where there are none (CPU)."""
    return (jax.devices()[0].memory_stats() or {}).get(key)


def costs(lowered, compiled):
    """XLA's FLOP count of the lowered step (where convolutions are still
    plain HLO, not cuDNN calls) and the executable's bytes; None if unknown."""
    flops = size = None
    try:
        cost = lowered.cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost  # older JAX
        flops = float(cost["flops"]) if cost.get("flops", 0) > 0 else None
    except Exception:  # not every backend counts: then no MFU
        pass
    try:
        m = compiled.memory_analysis()
        size = m.argument_size_in_bytes + m.output_size_in_bytes
        size += m.temp_size_in_bytes - m.alias_size_in_bytes
    except Exception:  # nor measures: then the batch search starts lower
        pass
    return {"flops": flops, "compiled_bytes": size and int(size)}


def steady_seconds(call, repeats, until):
    """Median time of `call()` over `repeats` calls, fewer (never 0) past `until`."""
    times = []
    while not times or (len(times) < repeats and time.monotonic() < until):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def compile_and_time(fn, args, repeats, until):
    """Compiles `fn(*args)` and times it. `fn` returns its new first argument
    first, so that each timed call continues from the last."""
    start = time.perf_counter()
    lowered = jax.jit(fn).lower(*args)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - start
    outputs = jax.block_until_ready(compiled(*args))  # warm-up, not timed

    def call():
        nonlocal outputs
        outputs = jax.block_until_ready(compiled(outputs[0], *args[1:]))

    step_s = steady_seconds(call, repeats, until)
    return outputs, dict(compile_s=compile_s, step_s=step_s, **costs(lowered, compiled))


def with_rates(result, batch, precision):
    """Adds videos/s, model-FLOP utilisation and the memory high-water mark."""
    kind = jax.devices()[0].device_kind
    peak = next((p[precision] for k, p in PEAK_FLOPS.items() if k in kind), None)
    flop_rate = result["flops"] and result["flops"] / result["step_s"]
    return dict(
        batch=batch,
        videos_per_s=batch / result["step_s"],
        **result,
        mfu=flop_rate / peak if peak and flop_rate else None,
        peak_flops=peak,
        peak_basis=PEAK_BASIS[precision],
        peak_bytes=memory_stat("peak_bytes_in_use"),
    )
