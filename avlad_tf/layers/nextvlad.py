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

import keras
from keras import ops

from avlad_tf.layers import netvlad
from avlad_tf.layers import regularizers
from avlad_tf.layers import soft_assignment


@keras.saving.register_keras_serializable(package="avlad_tf")
class NeXtVLAD(soft_assignment.StreamedSums, keras.layers.Layer):
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
        for name, value in (
            ("num_clusters", num_clusters),
            ("expansion", expansion),
            ("groups", groups),
        ):
            soft_assignment.check_count(name, value)
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
        x = soft_assignment.l2_normalize(ops.cast(inputs, "float32"))  # (B, T, H, W, D)
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
        assignments = soft_assignment.cluster_softmax(logits)  # K = 1 allowed
        weights = assignments * ops.expand_dims(attention, -1)  # (B, N, G, K)
        # (B, N, λ·D) -> (B, N, G, F): group g is a contiguous slice.
        features = ops.reshape(expanded, (batch, -1, self.groups, self.group_width))
        return features, weights

    def _sums(self, inputs, mask=None):
        """Returns `{"s1": sum w x~_g (B, K, F), "s0": sum w (B, K)}` and the
        weights `(B, N, G, K)`.

        Kept apart (rather than as residuals) so that they add up over chunks.
        """
        features, weights = self._groups_and_weights(inputs)
        if mask is not None:
            # `where`, not a product: NaN or inf in padding must not leak in,
            # and a zero frame still has a nonzero expansion (the bias).
            keep = soft_assignment.keep_flags(mask, inputs, rank=4)  # (B, N, 1, 1)
            features = ops.where(keep, features, 0.0)
            weights = ops.where(keep, weights, 0.0)
        sums = {
            "s1": ops.einsum("bngk,bngf->bkf", weights, features),  # (B, K, F)
            "s0": ops.sum(weights, axis=(1, 2)),  # (B, K)
        }
        return sums, weights

    def _descriptor(self, sums):
        """Normalised `(B, K·F)` descriptor from the two sums over a video."""
        vlad = soft_assignment.residuals(sums, self.centers)  # (B, K, F)
        return soft_assignment.normalized_descriptor(
            vlad, self.num_clusters * self.group_width
        )

    def call(self, inputs):
        return self._descriptor(self._sums(inputs)[0])

    def _state_shapes(self, batch_size):
        return {
            "s1": (batch_size, self.num_clusters, self.group_width),
            "s0": (batch_size, self.num_clusters),
        }

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
