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

import keras
from keras import ops

from avlad_tf.layers import netvlad
from avlad_tf.layers import soft_assignment


@keras.saving.register_keras_serializable(package="avlad_tf")
class GhostVLAD(soft_assignment.AssignedSums, keras.layers.Layer):
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

    Streaming state (`initial_state` / `update` / `finalize`):
        `{"s1": (B, K, D), "s0": (B, K)}`, NetVLAD's state over the real
        clusters: the ghosts' weight is never summed.

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
        soft_assignment.check_count("num_clusters", num_clusters)
        soft_assignment.check_count("num_ghost_clusters", num_ghost_clusters, 0)
        soft_assignment.check_alpha(alpha)
        # The pooled descriptor must stay in float32 even under mixed precision.
        kwargs["dtype"] = kwargs.get("dtype") or "float32"
        super().__init__(**kwargs)
        self.num_clusters = num_clusters
        self.num_ghost_clusters = num_ghost_clusters
        self.alpha = float(alpha)
        self._centers_initializer = soft_assignment.centers_initializer(
            centers_initializer
        )
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
        soft_assignment.check_centers(self, "centers", centers, "num_clusters")
        if ghost_centers is None:
            ghost_centers = ops.zeros((self.num_ghost_clusters, self.depth))
        soft_assignment.check_centers(
            self, "ghost_centers", ghost_centers, "num_ghost_clusters"
        )
        self._assign_from_centers(centers, ghost_centers)

    @property
    def depth(self):
        """D, the channels of the input descriptors (known once built)."""
        return self.centers.shape[-1]

    def _assign_from_centers(self, centers, ghost_centers):
        centers = ops.convert_to_tensor(centers, dtype="float32")
        ghost_centers = ops.convert_to_tensor(ghost_centers, dtype="float32")
        self.centers.assign(centers)
        every = ops.concatenate([centers, ghost_centers], axis=0)  # (K + G, D)
        soft_assignment.assign_from_centers(
            self.assignment_kernel, self.assignment_bias, every, self.alpha
        )

    def _sums(self, inputs, mask=None):
        """Returns `{"s1": sum_n a x (B, K, D), "s0": sum_n a (B, K)}` over the
        real clusters, and the assignments `(B, N, K + G)`, ghosts last."""
        x, assignments = soft_assignment.soft_assign(
            inputs, self.assignment_kernel, self.assignment_bias
        )
        # The ghosts' share of the softmax is what they take from the real
        # clusters; past this point they count for nothing.
        real = assignments[:, :, : self.num_clusters]  # (B, N, K)
        return soft_assignment.weighted_sums(inputs, x, real, mask), assignments

    def _descriptor(self, sums):
        """Normalised `(B, K·D)` descriptor from the two sums over a video."""
        vlad = soft_assignment.residuals(sums, self.centers)  # (B, K, D), k < K
        return soft_assignment.normalized_descriptor(
            vlad, self.num_clusters * self.depth
        )

    def assignments(self, inputs):
        """Soft-assignment maps `(B, T, H, W, K + G)`, ghosts last; the real
        clusters' maps sum to less than 1 where the ghosts take weight."""
        # Through __call__, not call: it builds the layer on first use.
        return self(inputs, return_assignments=True)[1]

    def _state_shapes(self, batch_size):
        return {
            "s1": (batch_size, self.num_clusters, self.depth),
            "s0": (batch_size, self.num_clusters),
        }

    def compute_output_spec(self, inputs, return_assignments=False):
        total = self.num_clusters + self.num_ghost_clusters
        return soft_assignment.output_spec(self, inputs, return_assignments, total)

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
