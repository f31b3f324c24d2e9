"""NetRVLAD pooling: NetVLAD without residuals (Miech et al. 2017, LOUPE).

"Learnable pooling with Context Gating for video classification" calls it
"residual-less" VLAD: the soft assignment is NetVLAD's, but each cluster sums
the descriptors themselves, V_k = sum_n a_k(x_n) x_n, not their residuals
x_n - c_k. With no residual there is no centres variable, and about half of
NetVLAD's pooling parameters go. Input normalisation, intra-normalisation and
the final L2 norm are those of this repository's `NetVLAD` (docs/LAYER.md).
"""

import keras

from avlad_tf.layers import netvlad
from avlad_tf.layers import soft_assignment


@keras.saving.register_keras_serializable(package="avlad_tf")
class NetRVLAD(soft_assignment.AssignedSums, keras.layers.Layer):
    """Residual-less NetVLAD pooling over all frames and positions of a video.

    Like `NetVLAD`, the layer always computes in float32, whatever the global
    dtype policy (docs/PITFALLS.md 3.9).

    Args:
        num_clusters: K, the number of clusters.
        alpha: sharpness of the soft assignment derived from centres; 1000 as
            for `NetVLAD`.
        centers_initializer: initializer of `[K, D]` centres drawn once at
            build time to derive the assignment kernel and bias, as `NetVLAD`
            does; the centres themselves are not kept. Use `set_centers` for
            k-means centres.
        **kwargs: base `Layer` arguments (`name`, `trainable`, ...).

    Input shape:
        `(batch, time, height, width, channels)`.

    Output shape:
        `(batch, num_clusters * channels)`, cluster-major (index k * D + d).

    Streaming state (`initial_state` / `update` / `finalize`):
        `{"s1": (B, K, D)}`, the sum of a·x over the frames seen so far.
        Unlike NetVLAD no sum of a is needed: there is no centre to subtract
        it against.

    Example:
        >>> features = keras.random.normal((2, 25, 14, 14, 512))
        >>> NetRVLAD(num_clusters=64)(features).shape
        (2, 32768)
    """

    def __init__(
        self,
        *,
        num_clusters=64,
        alpha=1000.0,
        centers_initializer="random_normal_unit",
        **kwargs,
    ):
        soft_assignment.check_count("num_clusters", num_clusters)
        soft_assignment.check_alpha(alpha)
        # The pooled descriptor must stay in float32 even under mixed precision.
        kwargs["dtype"] = kwargs.get("dtype") or "float32"
        super().__init__(**kwargs)
        self.num_clusters = num_clusters
        self.alpha = float(alpha)
        self._centers_initializer = soft_assignment.centers_initializer(
            centers_initializer
        )
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def build(self, input_shape):
        netvlad.check_video_features_shape("NetRVLAD", input_shape)
        depth = input_shape[-1]
        self.assignment_kernel = self.add_weight(
            name="assignment_kernel",
            shape=(depth, self.num_clusters),
            initializer="zeros",
        )
        self.assignment_bias = self.add_weight(
            name="assignment_bias",
            shape=(self.num_clusters,),
            initializer="zeros",
        )
        # The same starting assignment as a NetVLAD with these centres.
        shape = (self.num_clusters, depth)
        self._assign_from_centers(self._centers_initializer(shape, dtype="float32"))

    @property
    def depth(self):
        """D, the channels of the input descriptors (known once built)."""
        return self.assignment_kernel.shape[0]

    def set_centers(self, centers):
        """Initialises the assignment from `[K, D]` centres (k-means).

        kernel = 2 alpha c^T and bias = -alpha ||c||^2, so that at
        initialisation the softmax equals that of -alpha ||x - c_k||^2, as
        in `NetVLAD.set_centers`. The centres are not stored: NetRVLAD has
        no residual to take against them.

        Raises:
            ValueError: if the layer is not built or `centers` has the wrong
                shape.
        """
        soft_assignment.check_centers(self, "centers", centers, "num_clusters")
        self._assign_from_centers(centers)

    def _assign_from_centers(self, centers):
        soft_assignment.assign_from_centers(
            self.assignment_kernel, self.assignment_bias, centers, self.alpha
        )

    def _sums(self, inputs, mask=None):
        """Returns `{"s1": sum_n a x (B, K, D)}` and the assignments `(B, N, K)`,
        N = T·H·W."""
        x, assignments = soft_assignment.soft_assign(
            inputs, self.assignment_kernel, self.assignment_bias
        )
        sums = soft_assignment.weighted_sums(
            inputs, x, assignments, mask, with_mass=False
        )
        return sums, assignments

    def _descriptor(self, sums):
        """Normalised `(B, K·D)` descriptor from the weighted sums `(B, K, D)`."""
        return soft_assignment.normalized_descriptor(
            sums["s1"], self.num_clusters * self.depth
        )

    def assignments(self, inputs):
        """Soft-assignment maps `(B, T, H, W, K)`, a softmax over clusters."""
        # Through __call__, not call: it builds the layer on first use.
        return self(inputs, return_assignments=True)[1]

    def _state_shapes(self, batch_size):
        return {"s1": (batch_size, self.num_clusters, self.depth)}

    def compute_output_spec(self, inputs, return_assignments=False):
        return soft_assignment.output_spec(
            self, inputs, return_assignments, self.num_clusters
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_clusters": self.num_clusters,
                "alpha": self.alpha,
                "centers_initializer": keras.initializers.serialize(
                    self._centers_initializer
                ),
            }
        )
        return config
