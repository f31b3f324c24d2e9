"""Per-frame application of a 2-D backbone to video tensors, the clip
layout of a backbone that convolves over time (`ClipFrames`), and the frame
pairs a late-fusion network merges (`FramePairs`).

The release reshapes a `[B, T', H, W, C]` batch to `[B·T', H, W, C]`,
video-major, before the backbone (docs/RELEASE.md Sec. 4.1). These two
layers do that fold and its inverse with one `ops.reshape` each, so the
backbone runs on all frames in one call (no loop over frames) and the number
of frames may differ between calls (25 for training, 125 for 5-crop tests).
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="avlad_tf")
class FoldFrames(keras.layers.Layer):
    """Merges the batch and time axes of a video batch.

    Input shape: `(batch, time, height, width, channels)`.
    Output shape: `(batch * time, height, width, channels)`, video-major.

    Example:
        >>> frames = FoldFrames()(keras.ops.zeros((2, 25, 32, 32, 3)))
        >>> frames.shape
        (50, 32, 32, 3)
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.input_spec = keras.layers.InputSpec(min_ndim=3)

    def call(self, video):
        return ops.reshape(video, (-1,) + tuple(video.shape[2:]))  # (B·T, ...)

    def compute_output_shape(self, input_shape):
        batch, time = input_shape[:2]
        folded = None if batch is None or time is None else batch * time
        return (folded,) + tuple(input_shape[2:])


@keras.saving.register_keras_serializable(package="avlad_tf")
class UnfoldFrames(keras.layers.Layer):
    """Splits per-frame features back into `(batch, time, ...)`.

    Called as `UnfoldFrames()(features, video)`: `video` is the tensor that was
    folded and only provides the (dynamic) batch and time sizes.

    Input shapes: features `(batch * time, h, w, d)`; video
        `(batch, time, ...)`.
    Output shape: `(batch, time, h, w, d)`.
    """

    def call(self, features, video):
        video_shape = ops.shape(video)
        new_shape = (video_shape[0], video_shape[1]) + tuple(features.shape[1:])
        return ops.reshape(features, new_shape)  # (B, T, h, w, d)

    def compute_output_shape(self, features_shape, video_shape):
        return tuple(video_shape[:2]) + tuple(features_shape[1:])


@keras.saving.register_keras_serializable(package="avlad_tf")
class ClipFrames(keras.layers.Layer):
    """A video batch as one clip per video, for a backbone that convolves
    over time (`backbones.CLIP_BACKBONES`).

    RGB frames pass as they are. A flow stack's 2·L channels, interleaved
    x1, y1, ..., xL, yL, are L consecutive flow fields, so they unfold into
    L time steps of 2 channels: T stacks become T·L fields, in order.

    A model holding this layer mixes frames over time, so its features of a
    chunk of frames are not the whole video's (`inspection.mixes_frames`).

    Args:
        channels: channels per time step of the clip (3 RGB, 2 flow).
        min_steps: the fewest time steps the backbone reads (a network
            whose first layers convolve over 10 frames without padding
            needs 10); fewer, when known at call time, raise ValueError.

    Input shape: `(batch, time, height, width, channels·L)`.
    Output shape: `(batch, time·L, height, width, channels)`.
    """

    def __init__(self, channels, *, min_steps=1, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.min_steps = int(min_steps)

    def call(self, video):
        frames, per_frame = video.shape[1], video.shape[-1] // self.channels
        if frames is not None and frames * per_frame < self.min_steps:
            raise ValueError(
                f"{self.name}: the backbone reads clips of at least "
                f"{self.min_steps} time steps; received {frames} frames of "
                f"{per_frame} step(s) each. Sample more frames "
                "(make_dataset.num_frames)."
            )
        shape = ops.shape(video)
        new_shape = (shape[0], -1) + tuple(video.shape[2:4]) + (self.channels,)
        # (B, T, S, S, L·c) -> (B, T, S, S, L, c) -> (B, T, L, S, S, c)
        fields = ops.reshape(video, tuple(shape[:4]) + (-1, self.channels))
        fields = ops.transpose(fields, (0, 1, 4, 2, 3, 5))
        return ops.reshape(fields, new_shape)  # (B, T·L, S, S, c)

    def compute_output_shape(self, input_shape):
        batch, time, height, width, depth = input_shape
        steps = depth // self.channels
        time = None if time is None else time * steps
        return (batch, time, height, width, self.channels)

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "min_steps": self.min_steps,
        }


@keras.saving.register_keras_serializable(package="avlad_tf")
class FoldClips(keras.layers.Layer):
    """N clips of T frames per video, clip-major (`sampling='clips'`), as
    N videos of one clip each, so a clip backbone reads each clip alone.

    Args:
        clip_length: T, frames (flow: stacks) per clip.

    Input shape: `(batch, N·T, height, width, channels)`.
    Output shape: `(batch·N, T, height, width, channels)`.
    """

    def __init__(self, clip_length, **kwargs):
        super().__init__(**kwargs)
        if int(clip_length) < 1:
            raise ValueError(
                f"clip_length must be >= 1. Received: clip_length={clip_length}"
            )
        self.clip_length = int(clip_length)

    def call(self, video):
        frames = video.shape[1]
        if frames is not None and frames % self.clip_length:
            raise ValueError(
                f"{self.name}: {frames} frames are not whole clips of "
                f"build_model.clip_length={self.clip_length}; sample "
                "make_dataset.num_frames = clip_length with "
                "sampling_mode='clips'."
            )
        new_shape = (-1, self.clip_length) + tuple(video.shape[2:])
        return ops.reshape(video, new_shape)  # (B·N, T, S, S, C)

    def compute_output_shape(self, input_shape):
        batch, frames = input_shape[:2]
        clips = (
            None
            if batch is None or frames is None
            else batch * (frames // self.clip_length)
        )
        return (clips, self.clip_length) + tuple(input_shape[2:])

    def get_config(self):
        return {**super().get_config(), "clip_length": self.clip_length}


@keras.saving.register_keras_serializable(package="avlad_tf")
class UnfoldClips(keras.layers.Layer):
    """Each video's clips' maps back on one time axis, clip after clip.

    Called as `UnfoldClips()(features, video)`: `video` (the unfolded
    input) provides the dynamic batch size.

    Input shapes: features `(batch·N, T', h, w, d)`; video `(batch, ...)`.
    Output shape: `(batch, N·T', h, w, d)`.
    """

    def call(self, features, video):
        new_shape = (ops.shape(video)[0], -1) + tuple(features.shape[2:])
        return ops.reshape(features, new_shape)  # (B, N·T', h, w, d)

    def compute_output_shape(self, features_shape, video_shape):
        return (video_shape[0], None) + tuple(features_shape[2:])


@keras.saving.register_keras_serializable(package="avlad_tf")
class FramePairs(keras.layers.Layer):
    """Each time step's features beside those `distance` steps later, on
    channels: the input of a layer that merges two single-frame towers
    (Karpathy et al.'s late fusion, 15 frames apart).

    Args:
        distance: steps between the two frames of a pair.

    Input shape: `(batch, time, h, w, d)`, time > distance.
    Output shape: `(batch, time - distance, h, w, 2·d)`.
    """

    def __init__(self, distance, **kwargs):
        super().__init__(**kwargs)
        self.distance = int(distance)

    def call(self, features):
        first = features[:, : -self.distance]  # (B, T - dist, h, w, d)
        second = features[:, self.distance :]  # the frames dist steps later
        return ops.concatenate([first, second], axis=-1)  # (B, T - dist, h, w, 2d)

    def compute_output_shape(self, input_shape):
        batch, time, height, width, depth = input_shape
        time = None if time is None else time - self.distance
        return (batch, time, height, width, 2 * depth)

    def get_config(self):
        return {**super().get_config(), "distance": self.distance}
