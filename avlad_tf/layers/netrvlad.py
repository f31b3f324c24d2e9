"""NetRVLAD pooling: NetVLAD without residuals (Miech et al. 2017, LOUPE).

"Learnable pooling with Context Gating for video classification" calls it
"residual-less" VLAD: the soft assignment is NetVLAD's, but each cluster sums
the descriptors themselves, V_k = sum_n a_k(x_n) x_n, not their residuals
x_n - c_k. With no residual there is no centres variable, and about half of
NetVLAD's pooling parameters go. Input normalisation, intra-normalisation and
the final L2 norm are those of this repository's `NetVLAD` (docs/LAYER.md).
"""

import warnings

import keras
from keras import ops

from avlad_tf.layers import netvlad
from avlad_tf.layers import streaming


@keras.saving.register_keras_serializable(package="avlad_tf")
class NetRVLAD(keras.layers.Layer):
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
        if (
            not isinstance(num_clusters, int)
            or isinstance(num_clusters, bool)
            or num_clusters < 1
        ):
            raise ValueError(
                "num_clusters must be a positive int. "
                f"Received: num_clusters={num_clusters!r}"
            )
        if not float(alpha) > 0:
            raise ValueError(
                f"alpha must be a positive number. Received: alpha={alpha!r}"
            )
        # The pooled descriptor must stay in float32 even under mixed precision.
        kwargs["dtype"] = kwargs.get("dtype") or "float32"
        super().__init__(**kwargs)
        self.num_clusters = num_clusters
        self.alpha = float(alpha)
        if centers_initializer == "random_normal_unit":
            self._centers_initializer = keras.initializers.RandomNormal(0.0, 1.0)
        else:
            self._centers_initializer = keras.initializers.get(centers_initializer)
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
        if not self.built:
            raise ValueError(
                "NetRVLAD.set_centers needs a built layer; call it on inputs first."
            )
        expected = (self.num_clusters, self.depth)
        received = tuple(getattr(centers, "shape", ()))
        if received != expected:
            raise ValueError(
                f"centers must have shape {expected} (num_clusters, channels). "
                f"Received: centers.shape={received}"
            )
        self._assign_from_centers(centers)

    def _assign_from_centers(self, centers):
        centers = ops.convert_to_tensor(centers, dtype="float32")
        self.assignment_kernel.assign(2.0 * self.alpha * ops.transpose(centers))
        self.assignment_bias.assign(-self.alpha * ops.sum(ops.square(centers), axis=1))

    def _weighted_sums(self, inputs, mask=None):
        """Returns sum_n a x `(B, K, D)` and the assignments `(B, N, K)`.

        N = T·H·W: time is folded into the pooling axis once, so that the
        aggregation is one batched matmul (fast under XLA).
        """
        x = netvlad.l2_normalize(ops.cast(inputs, "float32"))  # (B, T, H, W, D)
        x = ops.reshape(x, (ops.shape(x)[0], -1, self.depth))  # (B, T·H·W, D)
        logits = ops.einsum("bnd,dk->bnk", x, self.assignment_kernel)
        logits = logits + self.assignment_bias  # (B, N, K)
        with warnings.catch_warnings():
            # K = 1 is allowed: the softmax is identically 1 (see NetVLAD).
            warnings.filterwarnings("ignore", message=".*softmax over axis")
            assignments = ops.softmax(logits, axis=-1)
        if mask is not None:
            # `where`, not a product, so that NaN or inf in padding frames
            # cannot leak into the sum.
            keep = streaming.frame_flags(mask, inputs)  # (B, t, 1, 1, 1)
            keep = ops.broadcast_to(keep, tuple(ops.shape(inputs)[:4]) + (1,))
            keep = ops.reshape(keep, (ops.shape(x)[0], -1, 1))  # (B, t·H·W, 1)
            x = ops.where(keep, x, 0.0)
            assignments = ops.where(keep, assignments, 0.0)
        return ops.einsum("bnk,bnd->bkd", assignments, x), assignments

    def _descriptor(self, weighted):
        """Normalised `(B, K·D)` descriptor from the weighted sums `(B, K, D)`."""
        vlad = netvlad.l2_normalize(weighted, axis=-1)  # intra-normalisation
        vlad = ops.reshape(vlad, (-1, self.num_clusters * self.depth))  # (B, K·D)
        return netvlad.l2_normalize(vlad, axis=-1)

    def assignments(self, inputs):
        """Soft-assignment maps `(B, T, H, W, K)`, a softmax over clusters."""
        # Through __call__, not call: it builds the layer on first use.
        return self(inputs, return_assignments=True)[1]

    def call(self, inputs, return_assignments=False):
        # Summed over time and space at once, never averaged, as NetVLAD.
        weighted, assignments = self._weighted_sums(inputs)
        vlad = self._descriptor(weighted)
        if return_assignments:
            # Unfold the pooling axis: (B, T·H·W, K) -> (B, T, H, W, K).
            maps_shape = tuple(ops.shape(inputs)[:4]) + (self.num_clusters,)
            return vlad, ops.reshape(assignments, maps_shape)
        return vlad

    def _state_shapes(self, batch_size):
        return {"s1": (batch_size, self.num_clusters, self.depth)}

    def initial_state(self, batch_size):
        """Zero running sums for streaming (see `avlad_tf.layers.streaming`).

        Returns:
            `{"s1": (B, K, D)}` float32 zeros, the sum of a·x over the frames
            seen so far. Unlike NetVLAD no sum of a is needed: there is no
            centre to subtract it against.
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
        streaming.check_chunk("NetRVLAD", chunk, self.depth, mask)
        streaming.check_state("NetRVLAD", state, self._state_shapes(chunk.shape[0]))
        weighted, _ = self._weighted_sums(chunk, mask)
        return {"s1": ops.add(state["s1"], weighted)}

    def finalize(self, state):
        """The `(B, K·D)` descriptor of all frames added to `state`.

        Equals `layer(video)` to float32 rounding; a video with no real frame
        gives the zero vector.
        """
        streaming.check_built(self, "finalize")
        streaming.check_state("NetRVLAD", state, self._state_shapes(None))
        return self._descriptor(state["s1"])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_clusters * input_shape[-1])

    def compute_output_spec(self, inputs, return_assignments=False):
        vlad = keras.KerasTensor(
            self.compute_output_shape(inputs.shape), dtype=self.compute_dtype
        )
        if not return_assignments:
            return vlad
        maps_shape = tuple(inputs.shape[:4]) + (self.num_clusters,)
        return vlad, keras.KerasTensor(maps_shape, dtype=self.compute_dtype)

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
