"""What the NetVLAD family shares, written once so the layers cannot drift.

NetVLAD, NetRVLAD and GhostVLAD L2-normalise descriptors, assign them softly
to clusters by a 1x1 projection derived from centres, and pool sums of the
assignment-weighted descriptors. NeXtVLAD shares the masking, the final
normalisations and the chunk-by-chunk streaming (`avlad_tf.layers.streaming`).
"""

import keras
from keras import ops

from avlad_tf.layers import streaming

# TF's l2_normalize clamps the *squared* norm at 1e-12 (a norm floor of 1e-6).
# keras.ops.normalize uses a different rule, so we clamp ourselves
# (docs/RELEASE.md Sec. 12.8).
SQUARED_NORM_EPSILON = 1e-12


def l2_normalize(x, axis=-1):
    """L2-normalises `x` along `axis` with the release's epsilon rule."""
    squared_norm = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x * ops.rsqrt(ops.maximum(squared_norm, SQUARED_NORM_EPSILON))


def check_count(name, value, least=1):
    """Raises ValueError unless `value` is an int (not a bool) >= `least`."""
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        kind = "positive" if least else "non-negative"
        raise ValueError(f"{name} must be a {kind} int. Received: {name}={value!r}")


def check_alpha(alpha):
    if not float(alpha) > 0:
        raise ValueError(f"alpha must be a positive number. Received: alpha={alpha!r}")


def centers_initializer(identifier):
    """`"random_normal_unit"` is N(0, 1): the release's centres without k-means."""
    if identifier == "random_normal_unit":
        return keras.initializers.RandomNormal(0.0, 1.0)
    return keras.initializers.get(identifier)


def check_centers(layer, name, array, rows):
    """Raises ValueError unless `layer` is built and `array` is `(rows, D)`.

    `rows` names the layer attribute that counts the rows, as the message does.
    """
    if not layer.built:
        raise ValueError(
            f"{type(layer).__name__}.set_centers needs a built layer; "
            "call it on inputs first."
        )
    expected = (getattr(layer, rows), layer.depth)
    received = tuple(getattr(array, "shape", ()))
    if received != expected:
        raise ValueError(
            f"{name} must have shape {expected} ({rows}, channels). "
            f"Received: {name}.shape={received}"
        )


def assign_from_centers(kernel, bias, centers, alpha):
    """kernel = 2 alpha c^T and bias = -alpha ||c||^2: at initialisation the
    softmax then equals that of -alpha ||x - c_k||^2 over unit-norm x."""
    centers = ops.convert_to_tensor(centers, dtype="float32")
    kernel.assign(2.0 * alpha * ops.transpose(centers))
    bias.assign(-alpha * ops.sum(ops.square(centers), axis=1))


def soft_assign(inputs, kernel, bias):
    """Returns descriptors `(B, N, D)` and assignments `(B, N, K)`.

    N = T·H·W: time is folded into the pooling axis once, so that the
    contractions after this are plain batched matmuls (fast under XLA).
    """
    x = l2_normalize(ops.cast(inputs, "float32"))  # (B, T, H, W, D)
    x = ops.reshape(x, (ops.shape(x)[0], -1, kernel.shape[0]))  # (B, T·H·W, D)
    logits = ops.einsum("bnd,dk->bnk", x, kernel) + bias  # (B, N, K)
    return x, cluster_softmax(logits)


def cluster_softmax(logits):
    """Softmax over the last (cluster) axis."""
    if logits.shape[-1] == 1:
        # The K = 1 ablation is deliberate: a softmax over one cluster is
        # identically 1 with a zero (not a missing) gradient. Written so, it
        # is exactly that on every CPU; a softmax kernel may round 1 - 1 in
        # its gradient to 1e-8.
        return 1.0 + 0.0 * logits
    return ops.softmax(logits, axis=-1)


def keep_flags(mask, inputs, rank=3):
    """Per-descriptor keep flags `(B, N, 1, ...)` of `rank` for a `(B, t)` mask."""
    keep = streaming.frame_flags(mask, inputs)  # (B, t, 1, 1, 1)
    keep = ops.broadcast_to(keep, tuple(ops.shape(inputs)[:4]) + (1,))
    return ops.reshape(keep, (ops.shape(inputs)[0], -1) + (1,) * (rank - 2))


def weighted_sums(inputs, x, assignments, mask=None, with_mass=True):
    """`{"s1": sum_n a x (B, K, D), "s0": sum_n a (B, K)}` over the descriptors.

    The residual sum is `s1 - s0 * centers`; keeping the two sums apart is
    what lets a video be pooled chunk by chunk. `with_mass=False` leaves out
    s0, for a layer with no centre to subtract.
    """
    if mask is not None:
        # A padding frame contributes nothing; `where`, not a product, so
        # that NaN or inf in padding cannot leak into the sums.
        keep = keep_flags(mask, inputs)  # (B, t·H·W, 1)
        x = ops.where(keep, x, 0.0)
        assignments = ops.where(keep, assignments, 0.0)
    sums = {"s1": ops.einsum("bnk,bnd->bkd", assignments, x)}
    if with_mass:
        sums["s0"] = ops.sum(assignments, axis=1)
    return sums


def residuals(sums, centers):
    """V[b,k,d] = sum_n a[b,n,k] x[b,n,d] - c[k,d] sum_n a[b,n,k]."""
    s1, s0 = sums["s1"], sums["s0"]
    return s1 - ops.expand_dims(s0, -1) * ops.expand_dims(centers, 0)


def normalized_descriptor(vlad, size):
    """Intra-normalises `(B, K, F)` per cluster, flattens cluster-major to
    `(B, size)` and L2-normalises the result, as the release does."""
    vlad = l2_normalize(vlad, axis=-1)
    return l2_normalize(ops.reshape(vlad, (-1, size)), axis=-1)


def assignment_maps(assignments, inputs):
    """Unfolds the pooling axis: `(B, T·H·W, K)` -> `(B, T, H, W, K)`."""
    maps_shape = tuple(ops.shape(inputs)[:4]) + (assignments.shape[-1],)
    return ops.reshape(assignments, maps_shape)


def output_spec(layer, inputs, return_assignments, num_maps):
    """`compute_output_spec` of a layer whose call may also return maps."""
    vlad = keras.KerasTensor(
        layer.compute_output_shape(inputs.shape), dtype=layer.compute_dtype
    )
    if not return_assignments:
        return vlad
    maps_shape = tuple(inputs.shape[:4]) + (num_maps,)
    return vlad, keras.KerasTensor(maps_shape, dtype=layer.compute_dtype)


class StreamedSums:
    """Streaming for a layer whose output is a function of running sums.

    The layer defines `depth` (its input channels), `_state_shapes(batch)`,
    `_sums(inputs, mask)` returning the sums (a dict with the state's keys)
    and a second, layer-specific value, and `_descriptor(sums)`.
    """

    def initial_state(self, batch_size):
        """Zero running sums for streaming (see `avlad_tf.layers.streaming`).

        Returns:
            A dict of float32 zeros, one per running sum, as the layer's
            class docstring lists them.
        """
        streaming.check_built(self, "initial_state")
        return {
            key: ops.zeros(shape, "float32")
            for key, shape in self._state_shapes(batch_size).items()
        }

    def update(self, state, chunk, mask=None):
        """Adds a chunk `(B, t, H, W, D)` of frames to the running sums.

        Args:
            state: as `initial_state` or a previous `update` returned it
                (tensors or NumPy arrays, e.g. reloaded from `np.savez`).
            chunk: the next `t >= 1` frames of each video.
            mask: optional `(B, t)`; 0 marks a padding frame to ignore.

        Returns:
            The new state; `state` itself is not modified.

        Raises:
            ValueError: if the layer is not built, or the chunk, mask or state
                has the wrong shape.
        """
        streaming.check_built(self, "update")
        name = type(self).__name__
        streaming.check_chunk(name, chunk, self.depth, mask)
        streaming.check_state(name, state, self._state_shapes(chunk.shape[0]))
        sums, _ = self._sums(chunk, mask)
        return {key: ops.add(state[key], sums[key]) for key in sums}

    def finalize(self, state):
        """The descriptor of all frames added to `state`.

        Equals `layer(video)` to float32 rounding. A video with no real frame
        (all masked) gives the zero vector, as the normalisation's clamp does.
        """
        streaming.check_built(self, "finalize")
        streaming.check_state(type(self).__name__, state, self._state_shapes(None))
        return self._descriptor(state)


class AssignedSums(StreamedSums):
    """`StreamedSums` plus the `call` of NetVLAD, NetRVLAD and GhostVLAD,
    whose `_sums` returns the soft assignments `(B, N, K')` second."""

    def call(self, inputs, return_assignments=False):
        # Sum over time and space at once, never averaged (release Sec. 5.1).
        sums, assignments = self._sums(inputs)
        vlad = self._descriptor(sums)
        if return_assignments:
            return vlad, assignment_maps(assignments, inputs)
        return vlad

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_clusters * input_shape[-1])
