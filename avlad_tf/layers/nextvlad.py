"""NeXtVLAD: grouped, attention-weighted NetVLAD over time and space.

Lin, Xiao and Fan, "NeXtVLAD: An Efficient Neural Network to Aggregate
Frame-level Features for Large-scale Video Classification", ECCV 2018
workshops. Each local descriptor x (D) is expanded by a dense layer to
x~ (λ·D) and split into G groups x~_g of λ·D / G. A sigmoid gives
each group an attention att_g, a softmax per group assigns it to K clusters
(a_gk), and the residuals of all groups of all descriptors are summed:

    v_k = sum_i sum_g att_g(i) a_gk(i) (x~_g(i) - c_k),   c_k in R^{λ·D/G}

Every (t, h, w) position of a video is one descriptor, as in `NetVLAD`.
"""

import warnings

import keras
from keras import ops

from avlad_tf.layers import netvlad
from avlad_tf.layers import regularizers
from avlad_tf.layers import streaming


def _is_positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_positive_ints(**values):
    for name, value in values.items():
        if not _is_positive_int(value):
            raise ValueError(
                f"{name} must be a positive int. Received: {name}={value!r}"
            )


@keras.saving.register_keras_serializable(package="avlad_tf")
class NeXtVLAD(keras.layers.Layer):
    """NeXtVLAD pooling over all frames and positions of a video.

    The output has K·λ·D/G values instead of NetVLAD's K·D, λ/G times as
    many: with the defaults λ = 2, G = 8 a quarter (8192 rather than 32768
    for K = 64 on VGG16's 512-channel conv5_3), and so is the classifier
    after it.

    Deviations from the paper, all so that a video can be pooled chunk by
    chunk (`avlad_tf.layers.streaming`) with the same result as at once:

    - The paper batch-normalises the assignment logits and the output.
      Training-mode BatchNorm uses statistics of the whole batch, so the
      result of a chunk would depend on the other chunks. Instead, the
      assignment FC has a bias, and the output is L2-normalised after the
      intra-normalisation, as `NetVLAD` here does.
    - Descriptors are L2-normalised before the expansion, as `NetVLAD` does
      here. The paper's YouTube-8M features come PCA-whitened; CNN maps have
      any scale, and without BN on the logits nothing else would keep the
      softmax from saturating.

    What remains is a sum over descriptors, streamed as `s1 = sum w x~_g`
    `[B, K, λ·D/G]` and `s0 = sum w` `[B, K]`, w = att_g a_gk summed
    over the groups; the residual sum is `s1 - s0 c`.

    The layer always computes in float32, whatever the global dtype policy:
    normalising a zero vector in float16 gives NaN (docs/PITFALLS.md 3.9).

    Args:
        num_clusters: K, the number of clusters (64, as `NetVLAD`'s).
        expansion: λ, an int; the dense expansion's width is λ·D.
        groups: G; λ·D must be divisible by it.
        centers_initializer: initializer of the `[K, λ·D/G]` centres.
            Zeros by default: the expanded features start at a scale set by
            the expansion's initializer, and larger centres would make each
            residual point along -c_k, which intra-normalisation maps to a
            constant. From zero the descriptor starts as a soft bag of group
            features and the centres are learned.
        kernel_initializer: initializer of the three dense kernels.
        weight_decay: slim's decay·sum(w²)/2 on the three dense kernels
            (not on biases or centres), as the other learned aggregators.
        **kwargs: base `Layer` arguments (`name`, `trainable`, ...).

    Input shape:
        `(batch, time, height, width, channels)`.

    Output shape:
        `(batch, num_clusters * expansion * channels // groups)`,
        cluster-major.

    Example:
        >>> features = keras.random.normal((2, 25, 14, 14, 512))
        >>> NeXtVLAD(num_clusters=64, expansion=2, groups=8)(features).shape
        (2, 8192)
    """

    def __init__(
        self,
        *,
        num_clusters=64,
        expansion=2,
        groups=8,
        centers_initializer="zeros",
        kernel_initializer="glorot_uniform",
        weight_decay=0.0,
        **kwargs,
    ):
        _check_positive_ints(
            num_clusters=num_clusters, expansion=expansion, groups=groups
        )
        if float(weight_decay) < 0:
            raise ValueError(
                f"weight_decay must be >= 0. Received: weight_decay={weight_decay!r}"
            )
        # The pooled descriptor must stay in float32 even under mixed precision.
        kwargs["dtype"] = kwargs.get("dtype") or "float32"
        super().__init__(**kwargs)
        self.num_clusters = num_clusters
        self.expansion = expansion
        self.groups = groups
        self.centers_initializer = keras.initializers.get(centers_initializer)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.weight_decay = float(weight_decay)
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def build(self, input_shape):
        netvlad.check_video_features_shape("NeXtVLAD", input_shape)
        self.depth = input_shape[-1]
        width = self.expansion * self.depth
        if width % self.groups:
            raise ValueError(
                "expansion * channels must be divisible by groups. Received: "
                f"expansion={self.expansion}, channels={self.depth}, "
                f"groups={self.groups}"
            )
        self.group_width = width // self.groups
        self.expansion_kernel, self.expansion_bias = self._dense_weights(
            "expansion", self.depth, width
        )
        self.attention_kernel, self.attention_bias = self._dense_weights(
            "attention", width, self.groups
        )
        # One FC for all groups: each group's logits see the whole x~.
        self.assignment_kernel, self.assignment_bias = self._dense_weights(
            "assignment", width, self.groups * self.num_clusters
        )
        self.centers = self.add_weight(
            name="centers",
            shape=(self.num_clusters, self.group_width),
            initializer=self.centers_initializer,
        )

    def _dense_weights(self, name, fan_in, units):
        """A dense layer's kernel `(fan_in, units)` (decayed) and bias."""
        kernel = self.add_weight(
            name=f"{name}_kernel",
            shape=(fan_in, units),
            initializer=self.kernel_initializer,
            regularizer=regularizers.weight_decay(self.weight_decay),
        )
        bias = self.add_weight(name=f"{name}_bias", shape=(units,), initializer="zeros")
        return kernel, bias

    def _groups_and_weights(self, inputs):
        """Returns group features `(B, N, G, F)` and weights `(B, N, G, K)`.

        N = T·H·W and F = λ·D/G; the weight of group g of descriptor i
        for cluster k is att_g(i) a_gk(i).
        """
        x = netvlad.l2_normalize(ops.cast(inputs, "float32"))  # (B, T, H, W, D)
        batch = ops.shape(x)[0]
        x = ops.reshape(x, (batch, -1, self.depth))  # (B, T·H·W, D)
        expanded = ops.matmul(x, self.expansion_kernel) + self.expansion_bias
        # expanded: (B, N, λ·D), the x~ of every descriptor.
        attention = ops.sigmoid(
            ops.matmul(expanded, self.attention_kernel) + self.attention_bias
        )  # (B, N, G)
        logits = ops.matmul(expanded, self.assignment_kernel) + self.assignment_bias
        # (B, N, G·K) -> (B, N, G, K): one softmax over clusters per group.
        logits = ops.reshape(logits, (batch, -1, self.groups, self.num_clusters))
        with warnings.catch_warnings():
            # K = 1 is a legitimate ablation (see NetVLAD): silence Keras'
            # "softmax over axis of size 1" warning.
            warnings.filterwarnings("ignore", message=".*softmax over axis")
            assignments = ops.softmax(logits, axis=-1)
        weights = assignments * ops.expand_dims(attention, -1)  # (B, N, G, K)
        # (B, N, λ·D) -> (B, N, G, F): group g is a contiguous slice.
        features = ops.reshape(expanded, (batch, -1, self.groups, self.group_width))
        return features, weights

    def _sums(self, inputs, mask=None):
        """Returns `s1 = sum w x~_g` `(B, K, F)` and `s0 = sum w` `(B, K)`.

        Kept apart (rather than as residuals) so that they add up over chunks.
        """
        features, weights = self._groups_and_weights(inputs)
        if mask is not None:
            # `where`, not a product: NaN or inf in padding must not leak in,
            # and a zero frame still has a nonzero expansion (the bias).
            keep = streaming.frame_flags(mask, inputs)  # (B, t, 1, 1, 1)
            keep = ops.broadcast_to(keep, tuple(ops.shape(inputs)[:4]) + (1,))
            keep = ops.reshape(keep, (ops.shape(inputs)[0], -1, 1, 1))  # (B, N, 1, 1)
            features = ops.where(keep, features, 0.0)
            weights = ops.where(keep, weights, 0.0)
        weighted = ops.einsum("bngk,bngf->bkf", weights, features)  # (B, K, F)
        mass = ops.sum(weights, axis=(1, 2))  # (B, K)
        return weighted, mass

    def _descriptor(self, weighted, mass):
        """Normalised `(B, K·F)` descriptor from the two sums over a video."""
        vlad = weighted - ops.expand_dims(mass, -1) * ops.expand_dims(
            self.centers, 0
        )  # (B, K, F)
        vlad = netvlad.l2_normalize(vlad, axis=-1)  # intra-normalisation
        vlad = ops.reshape(vlad, (-1, self.num_clusters * self.group_width))
        return netvlad.l2_normalize(vlad, axis=-1)  # (B, K·F)

    def call(self, inputs):
        return self._descriptor(*self._sums(inputs))

    def _state_shapes(self, batch_size):
        return {
            "s1": (batch_size, self.num_clusters, self.group_width),
            "s0": (batch_size, self.num_clusters),
        }

    def initial_state(self, batch_size):
        """Zero running sums: `{"s1": (B, K, F), "s0": (B, K)}`, float32."""
        streaming.check_built(self, "initial_state")
        return {
            key: ops.zeros(shape, "float32")
            for key, shape in self._state_shapes(batch_size).items()
        }

    def update(self, state, chunk, mask=None):
        """Adds a chunk `(B, t, H, W, D)` of frames to the running sums.

        Args:
            state: as `initial_state` or a previous `update` returned it.
            chunk: the next `t >= 1` frames of each video.
            mask: optional `(B, t)`; 0 marks a padding frame to ignore.

        Returns:
            The new state; `state` itself is not modified.

        Raises:
            ValueError: if the layer is not built, or the chunk, mask or state
                has the wrong shape.
        """
        streaming.check_built(self, "update")
        streaming.check_chunk("NeXtVLAD", chunk, self.depth, mask)
        streaming.check_state("NeXtVLAD", state, self._state_shapes(chunk.shape[0]))
        weighted, mass = self._sums(chunk, mask)
        return {"s1": ops.add(state["s1"], weighted), "s0": ops.add(state["s0"], mass)}

    def finalize(self, state):
        """The `(B, K·F)` descriptor of all frames added to `state`.

        Equals `layer(video)` to float32 rounding; a video with no real frame
        gives the zero vector.
        """
        streaming.check_built(self, "finalize")
        streaming.check_state("NeXtVLAD", state, self._state_shapes(None))
        return self._descriptor(state["s1"], state["s0"])

    def compute_output_shape(self, input_shape):
        width = self.expansion * input_shape[-1] // self.groups
        return (input_shape[0], self.num_clusters * width)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_clusters": self.num_clusters,
                "expansion": self.expansion,
                "groups": self.groups,
                "centers_initializer": keras.initializers.serialize(
                    self.centers_initializer
                ),
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "weight_decay": self.weight_decay,
            }
        )
        return config
