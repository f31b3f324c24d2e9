"""GPU throughput in one run: TV-L1 flow, the ActionVLAD layer, the stage-2 step.

    python bench/gpu.py [--output=gpu_bench.json] [--budget_s=400]
        [--streams=rgb,flow,i3d_rgb,i3d_flow] [--search_stream=flow] [--smoke]

For a GPU machine with JAX and no TensorFlow: it forces Keras's JAX backend
and imports only keras.ops code (`tests/bench_gpu_test.py` runs it with
TensorFlow unimportable). It measures:

1. TV-L1 flow (`avlad_tf.flow.runner.PairFlow`), frame pairs/s at 256x340
   for 1, 8, 32 and 64 pairs a call, every preset ('release' first), on
   `avlad_tf.flow.synthetic.panning_blobs` scenes with a known flow (the
   median end-point error against it is a sanity check). Compile time is the first
   call minus a steady call.
2. `NetVLAD` (K = 64) forward + backward (weights and input) under jax.jit
   at the paper's shape, videos x 25 frames x 14x14x512.
3. The stage-2 training step of each VGG16 stream (RGB 3 channels, flow 20)
   and of ActionVLAD over I3D (`i3d_rgb`, `i3d_flow`: its Mixed_5c map, the
   25 frames or stacks as one clip, docs/I3D.md):
   25 frames of 224x224, ActionVLAD K = 64 on conv5_3, HMDB51's 51 classes,
   conv5 + ActionVLAD + classifier trainable (`trainable.set_stage`), the
   update of `avlad_tf/training/step.py` for one sub-batch; float32 and
   mixed_bfloat16 (NetVLAD keeps its own float32 policy: the JSON records its
   compute dtype). Videos/s, compile time, memory, model-FLOP utilisation
   (XLA's FLOP count of the lowered step / step time / the device's dense
   peak in `gpu_timing.PEAK_FLOPS`) and the largest batch that trains
   (doubling until out of memory, then bisecting; `gpu_train.py`).

Each part stops at its share of --budget_s (what it skips says "time"); the
JSON is rewritten after each part. `peak_bytes` is JAX's high-water mark for
the process so far (hence bfloat16 before float32); `compiled_bytes` is one
step's own footprint. --smoke shrinks every size, same code, for a CPU.
"""

import argparse
import json
import os
import sys
import time
import traceback

# Before JAX loads. Its default of 75 % would stop the batch search short.
os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.95")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import jax.numpy as jnp
import keras
import numpy as np

from avlad_tf.flow import parameters as flow_parameters
from avlad_tf.flow import runner
from avlad_tf.flow import synthetic
from avlad_tf.layers import netvlad
from bench.gpu_timing import compile_and_time
from bench.gpu_timing import memory_stat
from bench.gpu_timing import steady_seconds
from bench.gpu_timing import with_rates
from bench.gpu_train import bench_train

# name: (the real run's size, --smoke's)
SIZES = {
    "frame_size": ((256, 340), (32, 43)),
    "flow_batches": ((1, 8, 32, 64), (1, 2)),
    "vlad_batches": ((4, 32), (2,)),
    "frames": (25, 2),
    "feature_size": (14, 4),
    "depth": (512, 16),
    "clusters": (64, 4),
    "image_size": (224, 16),
    "flow_stack": (10, 2),
    "num_classes": (51, 5),
    "train_batch": (4, 2),  # the release's sub-batch (gin/base.gin)
    "repeats": (5, 1),
    "search_steps": (8, 2),
    "i3d": ("i3d", "tiny_i3d"),  # the backbone of the `i3d_*` streams
}


def frame_pairs(count, size):
    """`count` grey pairs `[N, H, W]` uint8 and their known flow `[N, H, W, 2]`:
    `synthetic.panning_blobs` scenes (4 distinct ones, repeated)."""
    scenes = [
        synthetic.panning_blobs(*size, seed=seed) for seed in range(min(count, 4))
    ]
    firsts, seconds, flows = zip(*(scenes[i % len(scenes)] for i in range(count)))
    return np.stack(firsts), np.stack(seconds), np.stack(flows)


def flow_row(cfg, preset, batch, until):
    firsts, seconds, truth = frame_pairs(batch, cfg["frame_size"])
    start = time.perf_counter()
    pair_flow = runner.PairFlow(cfg["frame_size"], preset=preset, batch_size=batch)
    flows = pair_flow(firsts, seconds)  # compiles
    first_s = time.perf_counter() - start
    step_s = steady_seconds(lambda: pair_flow(firsts, seconds), cfg["repeats"], until)
    edge = min(8, min(cfg["frame_size"]) // 8)  # border pixels have no true match
    error = (flows - truth)[:, edge:-edge, edge:-edge]
    return dict(
        preset=preset,
        batch=batch,
        pairs_per_s=batch / step_s,
        step_s=step_s,
        compile_s=max(first_s - step_s, 0.0),
        finite=bool(np.isfinite(flows).all()),
        median_endpoint_error_px=float(np.median(np.linalg.norm(error, axis=-1))),
        peak_bytes=memory_stat("peak_bytes_in_use"),
    )


def bench_flow(cfg, until):
    """Every preset at each batch size, smallest first, while time allows."""
    rows, last = [], {}
    for batch in cfg["flow_batches"]:
        for preset in flow_parameters.PRESETS:
            prev = last.get(preset, {"compile_s": 0, "step_s": 0, "batch": 1})
            need = prev["compile_s"] + 3 * prev["step_s"] * batch / prev["batch"]
            if time.monotonic() + need > until:
                rows.append({"preset": preset, "batch": batch, "skipped": "time"})
                continue
            last[preset] = flow_row(cfg, preset, batch, until)
            rows.append(last[preset])
    return {"frame_size": cfg["frame_size"], "rows": rows}


def vlad_step(layer):
    """Gradients of a scalar of the descriptor for the weights and the input."""

    def loss(features, weights):
        return jnp.sum(jnp.square(layer.stateless_call(weights, [], features)[0]))

    def step(features, weights):
        grads = jax.grad(loss, argnums=(0, 1))(features, weights)
        return features + 1e-3 * grads[0], grads[1]

    return step


def bench_vlad(cfg, until):
    keras.mixed_precision.set_global_policy("float32")
    size, depth, rows = cfg["feature_size"], cfg["depth"], []
    for batch in cfg["vlad_batches"]:
        if rows and time.monotonic() > until:
            rows.append({"batch": batch, "skipped": "time"})
            continue
        shape = (batch, cfg["frames"], size, size, depth)
        layer = netvlad.NetVLAD(num_clusters=cfg["clusters"])
        layer.build(shape)
        weights = [v.value for v in layer.trainable_variables]
        args = jax.random.normal(jax.random.key(0), shape), weights
        _, result = compile_and_time(vlad_step(layer), args, cfg["repeats"], until)
        rows.append(with_rates(result, batch, "float32"))
    shape = (cfg["frames"], size, size, depth)
    return {"shape": shape, "clusters": cfg["clusters"], "rows": rows}


COLUMNS = ("batch", "per s", "step ms", "compile s", "peak MB", "MFU")


def cell(value):
    return f"{value:.4g}" if isinstance(value, (int, float)) and value else value or "-"


def table(report):
    """One line per measurement, then the largest batches."""
    train = report.get("train", {})
    rows = [("flow " + r["preset"], r) for r in report.get("flow", {}).get("rows", [])]
    rows += [("vlad float32", r) for r in report.get("vlad", {}).get("rows", [])]
    rows += [(f"{r['stream']} {r['precision']}", r) for r in train.get("rows", [])]
    for s in train.get("largest_batch", []):
        rows += [(f"{s['stream']} {s['precision']} try", r) for r in s.get("rows", [])]
    lines = [f"{'measure':<34}" + "".join(f"{c:>10}" for c in COLUMNS)]
    for name, r in rows:
        rate = r.get("pairs_per_s", r.get("videos_per_s")) or r.get("skipped", "failed")
        step_ms, peak_mb = r.get("step_s", 0) * 1e3, (r.get("peak_bytes") or 0) / 2**20
        cells = (r["batch"], rate, step_ms, r.get("compile_s"), peak_mb, r.get("mfu"))
        lines.append(f"{name:<34}" + "".join(f"{cell(c):>10}" for c in cells))
    for s in train.get("largest_batch", []):
        why = s.get("stopped_by", s.get("skipped"))
        lines.append(
            f"largest batch, {s['stream']} {s['precision']}: {s['largest_batch']} ({why})"
        )
    return "\n".join(lines)


def main():
    args = parse_args()
    cfg = {name: sizes[args.smoke] for name, sizes in SIZES.items()}
    start, device = time.monotonic(), jax.devices()[0]
    until = lambda share: start + share * args.budget_s  # noqa: E731
    parts = {
        "flow": lambda: bench_flow(cfg, until(0.35)),
        "vlad": lambda: bench_vlad(cfg, until(0.42)),
        "train": lambda: bench_train(
            cfg, until(0.72), args.streams, args.search_stream, until(1.0)
        ),
    }
    report = {
        "settings": dict(
            device_kind=device.device_kind,
            platform=device.platform,
            jax=jax.__version__,
            keras=keras.__version__,
            backend=keras.backend.backend(),
            matmul_precision=getattr(jax.config, "jax_default_matmul_precision", None),
            mem_fraction=os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"],
            bytes_limit=memory_stat("bytes_limit"),
            **vars(args),
            **cfg,
        ),
        "part_wall_s": {},
    }
    failed = []
    for name, part in parts.items():
        print(f"{name} ...", file=sys.stderr, flush=True)
        part_start = time.monotonic()
        try:
            report[name] = part()
        except Exception:  # keep the other parts' numbers; fail at the end
            report[name] = {"error": traceback.format_exc()[-3000:]}
            failed.append(name)
        report["part_wall_s"][name] = time.monotonic() - part_start
        report["wall_s"] = time.monotonic() - start
        report["tensorflow_imported"] = "tensorflow" in sys.modules
        with open(args.output, "w") as f:
            json.dump(report, f, indent=1)
    print(table(report))
    print(f"{device.device_kind}: {report['wall_s']:.0f} s; JSON in {args.output}")
    if failed:
        sys.exit(f"failed parts: {failed}; tracebacks in {args.output}")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="gpu_bench.json")
    parser.add_argument("--budget_s", type=float, default=400.0)
    parser.add_argument("--streams", default="rgb,flow,i3d_rgb,i3d_flow")
    parser.add_argument("--search_stream", default="flow")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CPU")
    args = parser.parse_args()
    args.streams = args.streams.split(",")
    if args.search_stream not in args.streams:
        parser.error(f"--search_stream must be one of --streams {args.streams}")
    return args


if __name__ == "__main__":
    main()
