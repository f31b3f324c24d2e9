"""Forward + backward time of ActionVLAD pooling at the paper's shape.

Compares, in one run on the same inputs:
  (a) the release's formulation (`nets/frame_pooling.py`): a Python loop over
      videos and clusters building per-cluster residual sums, run as a graph
      (tf.function without XLA, like TF 0.12's graph mode);
  (b) `avlad_tf.layers.NetVLAD` called eagerly;
  (c) `avlad_tf.layers.NetVLAD` inside `tf.function(jit_compile=True)` (XLA).
and prints each time and its speed-up over (a).

    python bench/vlad_layer.py [--videos 4 --frames 25 --size 14 --depth 512
                                --clusters 64 --repeats 5]
"""

import argparse
import time

import numpy as np
import tensorflow as tf

from avlad_tf.layers import netvlad


def release_vlad(net, centers, kernel, bias, videos_per_batch):
    """The release's looped formulation, transcribed (docs/RELEASE.md §5.1).

    net: [B·T, H, W, D] video-major; kernel [D, K]; bias [K]; centers [K, D].
    """
    net = tf.nn.l2_normalize(net, axis=3, epsilon=1e-12)
    logits = tf.nn.conv2d(net, kernel[None, None], 1, "VALID") + bias
    assignment = tf.nn.softmax(logits, axis=3)
    num_clusters = centers.shape[0]
    per_video_net = tf.split(net, videos_per_batch, axis=0)
    per_video_assignment = tf.split(assignment, videos_per_batch, axis=0)
    videos = []
    for video_net, video_assignment in zip(per_video_net, per_video_assignment):
        clusters = []
        for k in range(num_clusters):
            residual = video_net - centers[k]
            weighted = residual * video_assignment[..., k : k + 1]
            clusters.append(tf.reduce_sum(weighted, axis=[0, 1, 2]))
        videos.append(tf.stack(clusters))
    vlad = tf.stack(videos)  # [B, K, D]
    vlad = tf.nn.l2_normalize(vlad, axis=2, epsilon=1e-12)
    vlad = tf.reshape(vlad, [videos_per_batch, -1])
    return tf.nn.l2_normalize(vlad, axis=1, epsilon=1e-12)


def timed(fn, repeats):
    fn()  # warm-up: tracing and compilation are not what we measure
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--size", type=int, default=14)
    parser.add_argument("--depth", type=int, default=512)
    parser.add_argument("--clusters", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    shape = (args.videos, args.frames, args.size, args.size, args.depth)
    features = tf.constant(rng.normal(size=shape), tf.float32)
    layer = netvlad.NetVLAD(num_clusters=args.clusters)
    layer.build(shape)
    layer.set_centers(
        rng.normal(size=(args.clusters, args.depth)).astype(np.float32) * 0.05
    )
    weights = layer.trainable_weights
    folded = tf.reshape(features, (-1,) + shape[2:])  # [B·T, H, W, D]

    def grads_of(fn, inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.reduce_sum(tf.square(fn(inputs)))
        return tape.gradient(loss, [inputs] + weights)

    @tf.function
    def release_step():
        return grads_of(
            lambda x: release_vlad(
                x,
                layer.centers.value,
                layer.assignment_kernel.value,
                layer.assignment_bias.value,
                args.videos,
            ),
            folded,
        )

    @tf.function(jit_compile=True)
    def xla_step():
        return grads_of(layer, features)

    # All three compute the same thing: check before timing.
    reference = release_vlad(
        folded,
        layer.centers.value,
        layer.assignment_kernel.value,
        layer.assignment_bias.value,
        args.videos,
    )
    np.testing.assert_allclose(layer(features).numpy(), reference.numpy(), atol=1e-4)

    results = [
        (
            "(a) release loop over videos x clusters (graph)",
            timed(release_step, args.repeats),
        ),
        (
            "(b) NetVLAD layer, eager",
            timed(lambda: grads_of(layer, features), args.repeats),
        ),
        ("(c) NetVLAD layer, jit_compile=True", timed(xla_step, args.repeats)),
    ]
    print(
        f"ActionVLAD forward+backward, input {shape}, K={args.clusters}, "
        f"median of {args.repeats}"
    )
    base = results[0][1]
    for name, seconds in results:
        print(f"{name:52s} {seconds * 1e3:9.1f} ms   x{base / seconds:6.1f}")


if __name__ == "__main__":
    main()
