"""ActionVLAD pooling: NetVLAD over time and space (Girdhar et al. 2017, Sec. 3.1).

Semantics follow the original release's `nets/frame_pooling.py`
(docs/RELEASE.md Sec. 5.1): descriptors are L2-normalised, softly assigned
to K "action words" by a 1x1 projection with its own kernel and bias, and their
residuals against a *separate* centres variable are summed over every frame and
position of a video. The sum is intra-normalised per cluster, flattened
cluster-major and L2-normalised again.
"""

import keras
from keras import ops

from avlad_tf.layers import soft_assignment

# One implementation in soft_assignment; other layers and the parity tests
# name them here.
SQUARED_NORM_EPSILON = soft_assignment.SQUARED_NORM_EPSILON
l2_normalize = soft_assignment.l2_normalize


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
class NetVLAD(soft_assignment.AssignedSums, keras.layers.Layer):
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

    Streaming state (`initial_state` / `update` / `finalize`):
        `{"s1": (B, K, D), "s0": (B, K)}`, the sums of a·x and of a over the
        frames seen so far.

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

    @property
    def depth(self):
        """D, the channels of the input descriptors (known once built)."""
        return self.centers.shape[-1]

    def set_centers(self, centers):
        """Initialises all three weights from `[K, D]` centres (k-means).

        kernel = 2 alpha c^T and bias = -alpha ||c||^2, so that at
        initialisation the softmax equals that of -alpha ||x - c_k||^2.

        Raises:
            ValueError: if the layer is not built or `centers` has the wrong
                shape.
        """
        soft_assignment.check_centers(self, "centers", centers, "num_clusters")
        self._assign_from_centers(centers)

    def _assign_from_centers(self, centers):
        centers = ops.convert_to_tensor(centers, dtype="float32")
        self.centers.assign(centers)
        soft_assignment.assign_from_centers(
            self.assignment_kernel, self.assignment_bias, centers, self.alpha
        )

    def assignments(self, inputs):
        """Soft-assignment maps `(B, T, H, W, K)`, a softmax over clusters."""
        return self.call(inputs, return_assignments=True)[1]

    def _sums(self, inputs, mask=None):
        """Returns `{"s1": sum_n a x (B, K, D), "s0": sum_n a (B, K)}` and the
        assignments `(B, N, K)`, N = T·H·W."""
        x, assignments = soft_assignment.soft_assign(
            inputs, self.assignment_kernel, self.assignment_bias
        )
        return soft_assignment.weighted_sums(inputs, x, assignments, mask), assignments

    def _descriptor(self, sums):
        """Normalised `(B, K·D)` descriptor from the two sums over a video."""
        vlad = soft_assignment.residuals(sums, self.centers)  # (B, K, D)
        return soft_assignment.normalized_descriptor(
            vlad, self.num_clusters * self.depth
        )

    def _state_shapes(self, batch_size):
        # Sum of a·x and sum of a over the frames seen so far.
        return {
            "s1": (batch_size, self.num_clusters, self.depth),
            "s0": (batch_size, self.num_clusters),
        }

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
