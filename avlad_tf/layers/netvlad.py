"""ActionVLAD pooling: NetVLAD over time and space (Girdhar et al. 2017, Sec. 3.1).

Semantics follow the original release's `nets/frame_pooling.py`
(docs/RELEASE.md Sec. 5.1): descriptors are L2-normalised, softly assigned
to K "action words" by a 1x1 projection with its own kernel and bias, and their
residuals against a *separate* centres variable are summed over every frame and
position of a video. The sum is intra-normalised per cluster, flattened
cluster-major and L2-normalised again.
"""

import warnings

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


def check_video_features_shape(layer_name, input_shape):
    """Raises ValueError unless `input_shape` is `(B, T, H, W, D)` with known D."""
    if len(input_shape) != 5:
        raise ValueError(
            f"{layer_name} expects inputs of rank 5 "
            f"[batch, time, height, width, channels]. "
            f"Received: input_shape={tuple(input_shape)}"
        )
    if input_shape[-1] is None:
        raise ValueError(
            f"{layer_name} needs a known channel dimension. "
            f"Received: input_shape={tuple(input_shape)}"
        )


@keras.saving.register_keras_serializable(package="avlad_tf")
class NetVLAD(keras.layers.Layer):
    """ActionVLAD: NetVLAD pooling over all frames and positions of a video.

    The layer always computes in float32, whatever the global dtype policy:
    normalising a zero vector in float16 gives NaN (docs/PITFALLS.md 3.9).

    Args:
        num_clusters: K, the number of action words (64 in the paper).
        alpha: sharpness of the soft assignment at initialisation; 1000 as in
            the release's `--netvlad_alpha`.
        centers_initializer: initializer of the `[K, D]` centres; the
            assignment kernel and bias are derived from the centres at build
            time. Defaults to a standard normal, the release's behaviour when
            no k-means file is given. Use `set_centers` for k-means centres.
        **kwargs: base `Layer` arguments (`name`, `trainable`, ...).

    Input shape:
        `(batch, time, height, width, channels)`; fc features arrive with
        height = width = 1.

    Output shape:
        `(batch, num_clusters * channels)`, cluster-major (index k * D + d).

    Example:
        >>> features = keras.random.normal((2, 25, 14, 14, 512))
        >>> NetVLAD(num_clusters=64)(features).shape
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
        check_video_features_shape("NetVLAD", input_shape)
        depth = input_shape[-1]
        self.centers = self.add_weight(
            name="centers",
            shape=(self.num_clusters, depth),
            initializer=self._centers_initializer,
        )
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
        self._assign_from_centers(ops.convert_to_numpy(self.centers))

    def set_centers(self, centers):
        """Initialises all three weights from `[K, D]` centres (k-means).

        kernel = 2 alpha c^T and bias = -alpha ||c||^2, so that at
        initialisation the softmax equals that of -alpha ||x - c_k||^2.

        Raises:
            ValueError: if the layer is not built or `centers` has the wrong
                shape.
        """
        if not self.built:
            raise ValueError(
                "NetVLAD.set_centers needs a built layer; call it on inputs first."
            )
        expected = tuple(self.centers.shape)
        received = tuple(getattr(centers, "shape", ()))
        if received != expected:
            raise ValueError(
                f"centers must have shape {expected} (num_clusters, channels). "
                f"Received: centers.shape={received}"
            )
        self._assign_from_centers(centers)

    def _assign_from_centers(self, centers):
        centers = ops.convert_to_tensor(centers, dtype="float32")
        self.centers.assign(centers)
        self.assignment_kernel.assign(2.0 * self.alpha * ops.transpose(centers))
        self.assignment_bias.assign(-self.alpha * ops.sum(ops.square(centers), axis=1))

    def _normalize_and_assign(self, inputs):
        """Returns descriptors `(B, N, D)` and assignments `(B, N, K)`.

        N = T·H·W: time is folded into the pooling axis once, so that both
        contractions below are plain batched matmuls (fast under XLA).
        """
        x = l2_normalize(ops.cast(inputs, "float32"))  # (B, T, H, W, D)
        batch, depth = ops.shape(x)[0], self.centers.shape[-1]
        x = ops.reshape(x, (batch, -1, depth))  # (B, T·H·W, D)
        logits = ops.einsum("bnd,dk->bnk", x, self.assignment_kernel)
        logits = logits + self.assignment_bias  # (B, N, K)
        with warnings.catch_warnings():
            # The K = 1 ablation is deliberate: a softmax over one cluster is
            # identically 1 with a zero (not a missing) gradient, so keep it
            # and silence Keras' "axis has size 1" warning.
            warnings.filterwarnings("ignore", message=".*softmax over axis")
            return x, ops.softmax(logits, axis=-1)

    def assignments(self, inputs):
        """Soft-assignment maps `(B, T, H, W, K)`, a softmax over clusters."""
        return self.call(inputs, return_assignments=True)[1]

    def _residual_sums(self, inputs, mask=None):
        """Returns sum_n a x `(B, K, D)`, sum_n a `(B, K)` and a `(B, N, K)`.

        The residual sum is `weighted - mass * centers`; keeping the two sums
        apart is what lets a video be pooled chunk by chunk (`update`).
        """
        x, assignments = self._normalize_and_assign(inputs)
        if mask is not None:
            # A padding frame contributes nothing; `where`, not a product, so
            # that NaN or inf in padding cannot leak into the sums.
            keep = streaming.frame_flags(mask, inputs)  # (B, t, 1, 1, 1)
            keep = ops.broadcast_to(keep, tuple(ops.shape(inputs)[:4]) + (1,))
            keep = ops.reshape(keep, (ops.shape(x)[0], -1, 1))  # (B, t·H·W, 1)
            x = ops.where(keep, x, 0.0)
            assignments = ops.where(keep, assignments, 0.0)
        weighted = ops.einsum("bnk,bnd->bkd", assignments, x)  # (B, K, D)
        mass = ops.sum(assignments, axis=1)  # (B, K)
        return weighted, mass, assignments

    def _descriptor(self, weighted, mass):
        """Normalised `(B, K·D)` descriptor from the two sums over a video."""
        # V[b,k,d] = sum_n a[b,n,k] x[b,n,d] - c[k,d] sum_n a[b,n,k].
        vlad = weighted - ops.expand_dims(mass, -1) * ops.expand_dims(
            self.centers, 0
        )  # (B, K, D)
        vlad = l2_normalize(vlad, axis=-1)  # intra-normalisation per cluster
        depth = self.centers.shape[-1]
        vlad = ops.reshape(vlad, (-1, self.num_clusters * depth))  # (B, K·D)
        return l2_normalize(vlad, axis=-1)

    def call(self, inputs, return_assignments=False):
        # Sum over time and space at once, never averaged (release Sec. 5.1).
        weighted, mass, assignments = self._residual_sums(inputs)
        vlad = self._descriptor(weighted, mass)
        if return_assignments:
            # Unfold the pooling axis: (B, T·H·W, K) -> (B, T, H, W, K).
            maps_shape = tuple(ops.shape(inputs)[:4]) + (self.num_clusters,)
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
            `{"s1": (B, K, D), "s0": (B, K)}` float32 zeros: sum of a·x and
            sum of a over the frames seen so far.
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
        streaming.check_chunk("NetVLAD", chunk, self.centers.shape[-1], mask)
        streaming.check_state("NetVLAD", state, self._state_shapes(chunk.shape[0]))
        weighted, mass, _ = self._residual_sums(chunk, mask)
        return {"s1": ops.add(state["s1"], weighted), "s0": ops.add(state["s0"], mass)}

    def finalize(self, state):
        """The `(B, K·D)` descriptor of all frames added to `state`.

        Equals `layer(video)` to float32 rounding. A video with no real frame
        (all masked) gives the zero vector, as the normalisation's clamp does.
        """
        streaming.check_built(self, "finalize")
        streaming.check_state("NetVLAD", state, self._state_shapes(None))
        return self._descriptor(state["s1"], state["s0"])

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
