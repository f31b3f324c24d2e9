"""Which frames of a video are read (docs/RELEASE.md Sec. 2).

All indices are 0-based positions in a record's feature lists: RGB frame i
is `rgb/encoded[i]` (the release's `image_{i+1:05d}.jpg`) and flow frame j is
`flow/{x,y}/encoded[j]` (the release's `flow_?_{j+1:05d}.jpg`, computed from
RGB frames j and j + 1). With n RGB frames there are n - 1 flow frames.

The release's rules (`sampling='release'`, the default) are deterministic for
T > 1, also during training:

* RGB: stride ⌊(n − 1)/(T − 1)⌋, sample i reads frame i·stride. For n < T
  the stride is 0 and every sample is frame 0.
* Flow: stride ⌊(n − L)/T⌋ (T, not T − 1), sample i reads the L flow frames
  i·stride + j, j = 0..L−1. For n < L + T the stride is 0.
* Both streams from one record (the release's `rgb+flow` modality, Sec. 2.3):
  RGB uses the flow stride so that the streams correspond.
* T = 1: a uniformly random RGB frame in [0, n), or a random flow start in
  [0, n − L − 1) (the release's exclusive upper bound; at least [0, 1)).

`sampling='tsn'` is an opt-in alternative (not in the release): T equal
segments, a random position inside each during training and the segment
centre during evaluation.

`sampling='clips'` reads contiguous clips for the clip backbones
(docs/INPUT_PIPELINE.md, "Clips"): T = num_frames samples at a frame stride
s = `clip_stride`. Clip i's sample t reads RGB frame start_i + t·s and flow
frames start_i + t·s + j, j < L. A clip spans (T − 1)·s + 1 RGB frames or
(T − 1)·s + L flow frames, so P = max(frames − span + 1, 1) starts are valid.
Training takes one clip, start uniform in [0, P); evaluation N = `num_clips`
clips, start_i = round(i·(P − 1)/(N − 1)) (halves up; N = 1: ⌊(P − 1)/2⌋,
centred). In a video shorter than a clip, indices past the end are clamped
to the last frame. Output is clip-major: RGB `[N·T]`, flow `[N·T, L]`.

All functions take scalar tensors and work eagerly and inside `tf.data`;
randomness is stateless, driven by an explicit `seed` of shape `[2]`.
"""

import tensorflow as tf

SAMPLING_MODES = ("release", "tsn", "clips")
CLIPS = "clips"


def _check(video_length, num_samples, flow_stack=None):
    if num_samples < 1:
        raise ValueError(f"num_frames (T) must be >= 1. Received: {num_samples}")
    if flow_stack is not None and flow_stack < 1:
        raise ValueError(f"flow_stack (L) must be >= 1. Received: {flow_stack}")
    return tf.cast(video_length, tf.int32)


def rgb_stride(video_length, num_samples):
    """⌊(n − 1)/(T − 1)⌋ for T > 1 (0 when n < T)."""
    n = _check(video_length, num_samples)
    return tf.maximum(n - 1, 0) // max(num_samples - 1, 1)


def flow_stride(video_length, num_samples, flow_stack):
    """⌊(n − L)/T⌋ for T > 1, clamped at 0 for n < L."""
    n = _check(video_length, num_samples, flow_stack)
    return tf.maximum(n - flow_stack, 0) // num_samples


def _uniform(seed, maxval):
    """One stateless integer in [0, maxval), maxval clamped to >= 1."""
    return tf.random.stateless_uniform(
        [], seed=seed, minval=0, maxval=tf.maximum(maxval, 1), dtype=tf.int32
    )


def _tsn_starts(num_positions, num_samples, training, seed):
    """T starts over `num_positions` valid positions, one per segment.

    Segment i covers [i·P/T, (i+1)·P/T); training picks a uniform position in
    it, evaluation its centre. For P < T segments overlap (repeat positions).
    """
    p = tf.cast(tf.maximum(num_positions, 1), tf.float32)
    i = tf.range(num_samples, dtype=tf.float32)
    length = p / num_samples
    if training:
        offset = tf.random.stateless_uniform([num_samples], seed=seed) * length
    else:
        offset = length / 2.0
    starts = tf.cast(tf.floor(i * length + offset), tf.int32)
    return tf.minimum(starts, tf.cast(p, tf.int32) - 1)


def _check_clips(clip_stride, num_clips):
    if clip_stride < 1 or num_clips < 1:
        raise ValueError(
            "clip_stride and num_clips must be >= 1. Received: "
            f"clip_stride={clip_stride}, num_clips={num_clips}"
        )


def clip_settings(config):
    """`clip_stride` and `num_clips` of an export's config (1 and 1 in
    exports from before clip sampling)."""
    return {k: int(config.get(k, 1)) for k in ("clip_stride", "num_clips")}


def num_steps(num_samples, *, sampling, training, num_clips):
    """Samples per video and modality: T, or N·T for evaluation clips."""
    if sampling == CLIPS and not training:
        return num_samples * num_clips
    return num_samples


def _clip_starts(num_positions, *, num_clips, training, seed):
    """`[N]` clip starts over P valid positions (training: one, random)."""
    p = tf.maximum(num_positions, 1)
    if training:
        return tf.reshape(_uniform(seed, p), [1])
    if num_clips == 1:
        return tf.reshape((p - 1) // 2, [1])
    i = tf.range(num_clips, dtype=tf.int32)
    # round(i·(P − 1)/(N − 1)), halves up, in integers.
    return (2 * i * (p - 1) + num_clips - 1) // (2 * (num_clips - 1))


def _clip_indices(frames, *, num_samples, extent, clip_stride, **clips):
    """`[N·T, extent]` indices of clips over `frames` frames: row t of clip
    i starts at start_i + t·s and reads `extent` consecutive frames."""
    _check_clips(clip_stride, clips["num_clips"])
    span = (num_samples - 1) * clip_stride + extent
    starts = _clip_starts(frames - span + 1, **clips)
    offsets = tf.range(num_samples, dtype=tf.int32) * clip_stride
    rows = tf.reshape(starts[:, None] + offsets[None, :], [-1])  # (N·T,)
    indices = rows[:, None] + tf.range(extent, dtype=tf.int32)[None, :]
    return tf.minimum(indices, tf.maximum(frames - 1, 0))  # short videos


def rgb_indices(
    video_length,
    *,
    num_samples,
    training=False,
    seed=(0, 0),
    sampling="release",
    clip_stride=1,
    num_clips=1,
):
    """The T RGB frame indices of a video with `video_length` frames.

    Args:
        video_length: n, scalar int tensor.
        num_samples: T.
        training: only matters for `sampling='tsn'`.
        seed: int `[2]` for the random rules (T = 1, TSN training).
        sampling: `'release'`, `'tsn'` or `'clips'`.
        clip_stride, num_clips: s and N of `sampling='clips'` (N is
            evaluation's; training reads one clip).

    Returns:
        int32 `[T]` (`[N·T]` for evaluation clips).
    """
    n = _check(video_length, num_samples)
    if sampling == CLIPS:
        return _clip_indices(
            n,
            num_samples=num_samples,
            extent=1,
            clip_stride=clip_stride,
            num_clips=num_clips,
            training=training,
            seed=seed,
        )[:, 0]
    if sampling == "tsn":
        return _tsn_starts(n, num_samples, training, seed)
    if sampling != "release":
        raise ValueError(
            f"sampling must be one of {SAMPLING_MODES}. Received: {sampling!r}"
        )
    if num_samples == 1:
        return tf.reshape(_uniform(seed, n), [1])
    return tf.range(num_samples, dtype=tf.int32) * rgb_stride(n, num_samples)


def flow_indices(
    video_length,
    *,
    num_samples,
    flow_stack,
    training=False,
    seed=(0, 0),
    sampling="release",
    clip_stride=1,
    num_clips=1,
):
    """The flow frame indices of a video with `video_length` RGB frames.

    Args:
        video_length: n (RGB frames; the record holds n − 1 flow frames).
        num_samples: T.
        flow_stack: L, consecutive flow frames stacked per sample.
        training, seed, sampling, clip_stride, num_clips: as in
            `rgb_indices`.

    Returns:
        int32 `[T, L]` (`[N·T, L]` for evaluation clips): row i holds
        sample i's stack, start + 0..L−1.
    """
    n = _check(video_length, num_samples, flow_stack)
    if sampling == CLIPS:
        return _clip_indices(
            n - 1,  # flow frames
            num_samples=num_samples,
            extent=flow_stack,
            clip_stride=clip_stride,
            num_clips=num_clips,
            training=training,
            seed=seed,
        )
    if sampling == "tsn":
        starts = _tsn_starts(n - flow_stack, num_samples, training, seed)
    elif sampling != "release":
        raise ValueError(
            f"sampling must be one of {SAMPLING_MODES}. Received: {sampling!r}"
        )
    elif num_samples == 1:
        starts = tf.reshape(_uniform(seed, n - flow_stack - 1), [1])
    else:
        starts = tf.range(num_samples, dtype=tf.int32) * flow_stride(
            n, num_samples, flow_stack
        )
    return starts[:, None] + tf.range(flow_stack, dtype=tf.int32)[None, :]


def joint_indices(
    video_length,
    *,
    num_samples,
    flow_stack,
    training=False,
    seed=(0, 0),
    sampling="release",
    clip_stride=1,
    num_clips=1,
):
    """RGB `[T]` and flow `[T, L]` indices when both streams share a record.

    With the release's rules RGB uses the flow stride ⌊(n − L)/T⌋ (Sec. 2.3),
    so RGB frame i·stride is the first frame of flow stack i; with T = 1 the
    same random start serves both streams. TSN sampling uses the flow
    segments for both streams, for the same reason, and clips the flow
    clips' starts.
    """
    flow = flow_indices(
        video_length,
        num_samples=num_samples,
        flow_stack=flow_stack,
        training=training,
        seed=seed,
        sampling=sampling,
        clip_stride=clip_stride,
        num_clips=num_clips,
    )
    return flow[:, 0], flow


JOINT_SAMPLING = ("shared", "independent")


def min_frames(modalities, flow_stack):
    """The fewest RGB frames a video needs: L + 1 to form one flow stack."""
    return flow_stack + 1 if "flow" in modalities else 1


def sample_indices(
    video_length,
    *,
    modalities,
    num_samples,
    flow_stack,
    joint_sampling="shared",
    training=False,
    seed=(0, 0),
    sampling="release",
    clip_stride=1,
    num_clips=1,
):
    """The frames each modality reads: `{'rgb': [T], 'flow': [T, L]}`
    (`[N·T]` and `[N·T, L]` for `sampling='clips'` in evaluation).

    The one rule the input pipeline, the SavedModel graph and `predict` all
    follow. With both modalities, `joint_sampling='shared'` is the release's
    rgb+flow rule (`joint_indices`); 'independent' gives each modality its
    own single-stream rule (separately trained streams); shared clips
    start where the flow clips start.
    """
    if joint_sampling not in JOINT_SAMPLING:
        raise ValueError(
            f"joint_sampling must be one of {JOINT_SAMPLING}. "
            f"Received: {joint_sampling!r}"
        )
    if sampling != CLIPS and (clip_stride, num_clips) != (1, 1):
        raise ValueError(
            f"clip_stride and num_clips are for sampling='clips'. Received: "
            f"sampling={sampling!r}, clip_stride={clip_stride}, "
            f"num_clips={num_clips}; bind make_dataset.sampling_mode='clips'."
        )
    rules = dict(
        num_samples=num_samples,
        training=training,
        seed=seed,
        sampling=sampling,
        clip_stride=clip_stride,
        num_clips=num_clips,
    )
    indices = {}
    if "flow" in modalities:
        indices["flow"] = flow_indices(video_length, flow_stack=flow_stack, **rules)
    if "rgb" in modalities:
        if "flow" in modalities and joint_sampling == "shared":
            indices["rgb"] = indices["flow"][:, 0]  # Sec. 2.3
        else:
            indices["rgb"] = rgb_indices(video_length, **rules)
    return indices
