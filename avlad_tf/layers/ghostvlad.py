"""GhostVLAD pooling: NetVLAD with ghost clusters (Zhong et al., ACCV 2018).

"GhostVLAD for set-based face recognition" adds G "ghost" clusters to the
soft assignment: the softmax runs over K + G clusters, but only the K real
clusters are aggregated and kept. A descriptor the network learns to find
uninformative can give its weight to a ghost, and then barely counts in the
descriptor. Everything else is this repository's `NetVLAD` (docs/LAYER.md):
normalised inputs, residuals against a centres variable decoupled from the
assignment, intra-normalisation and a final L2 norm, over the K real clusters
only (the ghost rows are dropped before any normalisation).
"""

import warnings

import keras
from keras import ops

from avlad_tf.layers import netvlad
from avlad_tf.layers import streaming


@keras.saving.register_keras_serializable(package="avlad_tf")
class GhostVLAD(keras.layers.Layer):
    """NetVLAD pooling over a video whose softmax also feeds ghost clusters.

    Like `NetVLAD`, the layer always computes in float32, whatever the global
    dtype policy (docs/PITFALLS.md 3.9).

    Args:
        num_clusters: K, the number of real clusters (kept in the output).
        num_ghost_clusters: G >= 0, the clusters that only take assignment
            weight. Default 1: the fewest that give descriptors somewhere
            else to go. After `set_centers` without `ghost_centers` all
            ghosts start equal and stay equal, acting as one ghost of G times
            the weight, so more only help with distinct `ghost_centers`.
            0 is NetVLAD.
        alpha: sharpness of the soft assignment derived from centres; 1000 as
            for `NetVLAD`.
        centers_initializer: initializer of `[K + G, D]` centres drawn once
            at build time: the first K start the `centers` weight, and all of
            them derive the assignment kernel and bias, so that GhostVLAD
            starts as a NetVLAD over K + G clusters with the ghost rows
            dropped. Use `set_centers` for k-means centres.
        **kwargs: base `Layer` arguments (`name`, `trainable`, ...).

    Input shape:
        `(batch, time, height, width, channels)`.

    Output shape:
        `(batch, num_clusters * channels)`, cluster-major (index k * D + d).

    Example:
        >>> features = keras.random.normal((2, 25, 14, 14, 512))
        >>> GhostVLAD(num_clusters=64, num_ghost_clusters=1)(features).shape
        (2, 32768)
    """

    def __init__(
        self,
        *,
        num_clusters=64,
        num_ghost_clusters=1,
        alpha=1000.0,
        centers_initializer="random_normal_unit",
        **kwargs,
    ):
        for name, value, least in (
            ("num_clusters", num_clusters, 1),
            ("num_ghost_clusters", num_ghost_clusters, 0),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                kind = "positive" if least else "non-negative"
                raise ValueError(
                    f"{name} must be a {kind} int. Received: {name}={value!r}"
                )
        if not float(alpha) > 0:
            raise ValueError(
                f"alpha must be a positive number. Received: alpha={alpha!r}"
            )
        # The pooled descriptor must stay in float32 even under mixed precision.
        kwargs["dtype"] = kwargs.get("dtype") or "float32"
        super().__init__(**kwargs)
        self.num_clusters = num_clusters
        self.num_ghost_clusters = num_ghost_clusters
        self.alpha = float(alpha)
        if centers_initializer == "random_normal_unit":
            self._centers_initializer = keras.initializers.RandomNormal(0.0, 1.0)
        else:
            self._centers_initializer = keras.initializers.get(centers_initializer)
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def build(self, input_shape):
        netvlad.check_video_features_shape("GhostVLAD", input_shape)
        depth = input_shape[-1]
        total = self.num_clusters + self.num_ghost_clusters
        self.centers = self.add_weight(
            name="centers", shape=(self.num_clusters, depth), initializer="zeros"
        )
        # Ghost columns last: (D, K + G) and (K + G,).
        self.assignment_kernel = self.add_weight(
            name="assignment_kernel", shape=(depth, total), initializer="zeros"
        )
        self.assignment_bias = self.add_weight(
            name="assignment_bias", shape=(total,), initializer="zeros"
        )
        # One draw for real and ghost centres: a seeded initializer called
        # twice would repeat its values and start a ghost on a real cluster.
        drawn = self._centers_initializer((total, depth), dtype="float32")
        self._assign_from_centers(
            drawn[: self.num_clusters], drawn[self.num_clusters :]
        )

    def set_centers(self, centers, *, ghost_centers=None):
        """Initialises all three weights from `[K, D]` centres (k-means).

        As `NetVLAD.set_centers`: kernel = 2 alpha c^T and bias =
        -alpha ||c||^2. The ghost columns come from `ghost_centers`, by
        default the origin (zero kernel and bias). The origin is at distance
        1 from every unit-norm descriptor, so a ghost there takes the
        descriptors that are no nearer any k-means centre than the origin,
        those like no cluster. A ghost left from the random build-time draw
        would be far from all descriptors next to k-means centres: its weight,
        and with it its gradient, would underflow to 0 for good.

        Args:
            centers: `[K, D]` real centres.
            ghost_centers: optional `[G, D]`; distinct ones let several ghosts
                learn different roles (equal ghosts get equal gradients).

        Raises:
            ValueError: if the layer is not built or a centres array has the
                wrong shape.
        """
        if not self.built:
            raise ValueError(
                "GhostVLAD.set_centers needs a built layer; call it on inputs first."
            )
        depth = self.centers.shape[-1]
        if ghost_centers is None:
            ghost_centers = ops.zeros((self.num_ghost_clusters, depth))
        for name, array, rows in (
            ("centers", centers, "num_clusters"),
            ("ghost_centers", ghost_centers, "num_ghost_clusters"),
        ):
            expected = (getattr(self, rows), depth)
            received = tuple(getattr(array, "shape", ()))
            if received != expected:
                raise ValueError(
                    f"{name} must have shape {expected} ({rows}, channels). "
                    f"Received: {name}.shape={received}"
                )
        self._assign_from_centers(centers, ghost_centers)

    def _assign_from_centers(self, centers, ghost_centers):
        centers = ops.convert_to_tensor(centers, dtype="float32")
        ghost_centers = ops.convert_to_tensor(ghost_centers, dtype="float32")
        self.centers.assign(centers)
        every = ops.concatenate([centers, ghost_centers], axis=0)  # (K + G, D)
        self.assignment_kernel.assign(2.0 * self.alpha * ops.transpose(every))
        self.assignment_bias.assign(-self.alpha * ops.sum(ops.square(every), axis=1))

    def _residual_sums(self, inputs, mask=None):
        """Returns sum_n a x `(B, K, D)`, sum_n a `(B, K)` over the real
        clusters, and the assignments `(B, N, K + G)`, ghosts last.

        N = T·H·W: time is folded into the pooling axis once, so that both
        contractions are plain batched matmuls (fast under XLA).
        """
        x = netvlad.l2_normalize(ops.cast(inputs, "float32"))  # (B, T, H, W, D)
        depth = self.centers.shape[-1]
        x = ops.reshape(x, (ops.shape(x)[0], -1, depth))  # (B, T·H·W, D)
        logits = ops.einsum("bnd,dk->bnk", x, self.assignment_kernel)
        logits = logits + self.assignment_bias  # (B, N, K + G)
        with warnings.catch_warnings():
            # K = 1 with G = 0 is allowed: the softmax is identically 1.
            warnings.filterwarnings("ignore", message=".*softmax over axis")
            assignments = ops.softmax(logits, axis=-1)
        # The ghosts' share of the softmax is what they take from the real
        # clusters; past this point they count for nothing.
        real = assignments[:, :, : self.num_clusters]  # (B, N, K)
        if mask is not None:
            # `where`, not a product, so that NaN or inf in padding frames
            # cannot leak into the sums.
            keep = streaming.frame_flags(mask, inputs)  # (B, t, 1, 1, 1)
            keep = ops.broadcast_to(keep, tuple(ops.shape(inputs)[:4]) + (1,))
            keep = ops.reshape(keep, (ops.shape(x)[0], -1, 1))  # (B, t·H·W, 1)
            x = ops.where(keep, x, 0.0)
            real = ops.where(keep, real, 0.0)
        weighted = ops.einsum("bnk,bnd->bkd", real, x)  # (B, K, D)
        return weighted, ops.sum(real, axis=1), assignments

    def _descriptor(self, weighted, mass):
        """Normalised `(B, K·D)` descriptor from the two sums over a video."""
        # V[b,k,d] = sum_n a[b,n,k] x[b,n,d] - c[k,d] sum_n a[b,n,k], k < K.
        vlad = weighted - ops.expand_dims(mass, -1) * ops.expand_dims(
            self.centers, 0
        )  # (B, K, D)
        vlad = netvlad.l2_normalize(vlad, axis=-1)  # intra-normalisation
        depth = self.centers.shape[-1]
        vlad = ops.reshape(vlad, (-1, self.num_clusters * depth))  # (B, K·D)
        return netvlad.l2_normalize(vlad, axis=-1)

    def assignments(self, inputs):
        """Soft-assignment maps `(B, T, H, W, K + G)`, ghosts last; the real
        clusters' maps sum to less than 1 where the ghosts take weight."""
        # Through __call__, not call: it builds the layer on first use.
        return self(inputs, return_assignments=True)[1]

    def call(self, inputs, return_assignments=False):
        # Summed over time and space at once, never averaged, as NetVLAD.
        weighted, mass, assignments = self._residual_sums(inputs)
        vlad = self._descriptor(weighted, mass)
        if return_assignments:
            # Unfold the pooling axis: (B, T·H·W, K + G) -> (B, T, H, W, K + G).
            total = self.num_clusters + self.num_ghost_clusters
            maps_shape = tuple(ops.shape(inputs)[:4]) + (total,)
            return vlad, ops.reshape(assignments, maps_shape)
        return vlad

    def _state_shapes(self, batch_size):
        depth = self.centers.shape[-1]
        return {
            "s1": (batch_size, self.num_clusters, depth),
            "s0": (batch_size, self.num_clusters),
        }

    def initial_state(self, batch_size):
        """Zero running sums for streaming (see `avlad_tf.layers.streaming`).

        Returns:
            `{"s1": (B, K, D), "s0": (B, K)}` float32 zeros, NetVLAD's state
            over the real clusters: the ghosts' weight is never summed.
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
                (tensors or NumPy arrays).
            chunk: the next `t >= 1` frames of each video.
            mask: optional `(B, t)`; 0 marks a padding frame to ignore.

        Returns:
            The new state; `state` itself is not modified.

        Raises:
            ValueError: if the layer is not built, or the chunk, mask or state
                has the wrong shape.
        """
        streaming.check_built(self, "update")
        streaming.check_chunk("GhostVLAD", chunk, self.centers.shape[-1], mask)
        streaming.check_state("GhostVLAD", state, self._state_shapes(chunk.shape[0]))
        weighted, mass, _ = self._residual_sums(chunk, mask)
        return {"s1": ops.add(state["s1"], weighted), "s0": ops.add(state["s0"], mass)}

    def finalize(self, state):
        """The `(B, K·D)` descriptor of all frames added to `state`.

        Equals `layer(video)` to float32 rounding; a video with no real frame
        gives the zero vector.
        """
        streaming.check_built(self, "finalize")
        streaming.check_state("GhostVLAD", state, self._state_shapes(None))
        return self._descriptor(state["s1"], state["s0"])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_clusters * input_shape[-1])

    def compute_output_spec(self, inputs, return_assignments=False):
        vlad = keras.KerasTensor(
            self.compute_output_shape(inputs.shape), dtype=self.compute_dtype
        )
        if not return_assignments:
            return vlad
        total = self.num_clusters + self.num_ghost_clusters
        maps_shape = tuple(inputs.shape[:4]) + (total,)
        return vlad, keras.KerasTensor(maps_shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_clusters": self.num_clusters,
                "num_ghost_clusters": self.num_ghost_clusters,
                "alpha": self.alpha,
                "centers_initializer": keras.initializers.serialize(
                    self._centers_initializer
                ),
            }
        )
        return config
