"""The SavedModel's streaming signatures: a video of any length, chunk by chunk.

TF Serving keeps no session between requests, so the running state is an
explicit input and output, as in streaming video models served with it:

    state = streaming_start(batch_size=B)
    state = streaming_feed(**state, rgb=..., flow=..., mask=...)   # repeat
    outputs = streaming_finish(**state)    # as serving_default's, for all chunks

A chunk is `t >= 1` sampled frames per video: RGB frames `[B, t, H, W, 3]`
and/or flow stacks `[B, t, H, W, 2L]` (the stored uint8 layout, as
`serving_default` takes them), and `mask` `[B, t]`, 0 for padding. The
state is one float32 tensor per stream and pooling sum
(`<stream>_<key>`, e.g. `rgb_s1`, `rgb_s0` for ActionVLAD), a few hundred
KB per video whatever its length. Feeding T frames in any chunks gives
`serving_default`'s outputs for those T frames (tested). The state also
counts each video's real frames (`frames`), so that `streaming_finish`
refuses a video fed none, as `serving_default` refuses T = 0.
"""

import tensorflow as tf

from avlad_tf.models import streamed

# The state's count of real frames per video (not a pooling sum).
FRAMES = "frames"


class StreamingSignatures:
    """Mixed into `graph.ServingModule` (which provides `preprocess`,
    `fuse` and the config attributes)."""

    def init_streaming(self, models, config):
        """Splits each stream model at its pooling layer; a fused (concat or
        early) model, or an aggregator without a state, does not stream."""
        self.can_stream = config["fusion"] != "fused"
        self.streamed_models = {}
        if self.can_stream:
            try:
                self.streamed_models = {
                    s: streamed.StreamedModel(m) for s, m in models.items()
                }
            except ValueError:
                self.can_stream = False

    def _state_specs(self):
        specs = {FRAMES: tf.TensorSpec([None], tf.float32, name=FRAMES)}
        for stream, model in self.streamed_models.items():
            for key, value in model.initial_state(1).items():
                name = f"{stream}_{key}"
                specs[name] = tf.TensorSpec(
                    [None, *value.shape[1:]], tf.float32, name=name
                )
        return specs

    def _split_state(self, flat):
        """`{stream: {key: sum}}` of the flat state (its `frames` aside)."""
        return {
            stream: {
                key[len(stream) + 1 :]: value
                for key, value in flat.items()
                if key.startswith(stream + "_")
            }
            for stream in self.streamed_models
        }

    def streaming_start(self, batch_size):
        state = {FRAMES: tf.zeros([batch_size], tf.float32)}
        state.update(
            (f"{stream}_{key}", value)
            for stream, model in self.streamed_models.items()
            for key, value in model.initial_state(batch_size).items()
        )
        return state

    def streaming_feed(self, state, chunks, mask):
        """Adds a chunk of sampled frames to the flat `state`."""
        states = self._split_state(state)
        real = tf.reduce_sum(tf.cast(tf.not_equal(mask, 0), tf.float32), axis=1)
        new_state = {FRAMES: state[FRAMES] + real}
        for stream, model in self.streamed_models.items():
            modality = model.input_name
            crops = self.preprocess(chunks[modality], modality)  # [B, t·N, S, S, C]
            # Crops of a frame are contiguous (frame-major), so each frame's
            # mask value repeats once per crop.
            crop_mask = tf.repeat(mask, self._num_crops[modality], axis=1)
            updated = model.update(states[stream], crops, crop_mask)
            new_state.update({f"{stream}_{k}": v for k, v in updated.items()})
        return new_state

    def streaming_finish(self, state):
        """`serving_default`'s outputs (without assignments) for every chunk fed."""
        fed = tf.debugging.assert_positive(
            state[FRAMES],
            message="streaming_finish: a video was fed no frames (no "
            "streaming_feed, or a mask of zeros); feed at least one frame",
        )
        with tf.control_dependencies([fed]):
            state = {k: tf.identity(v) for k, v in state.items()}
        states = self._split_state(state)
        outputs, logits = {}, {}
        for stream, model in self.streamed_models.items():
            descriptor, logits[stream] = model.finish(states[stream])
            prefix = f"{stream}_" if self._fusion == "late" else ""
            outputs[prefix + "descriptor"] = descriptor
        return self.fuse(outputs, logits)

    def streaming_signatures(self):
        """`streaming_start`, `streaming_feed` and `streaming_finish`, if the models stream."""
        if not self.can_stream:
            return {}
        specs = self._state_specs()
        names = list(specs)
        chunk_specs = [
            tf.TensorSpec([None, None, None, None, self._channels[m]], tf.uint8, name=m)
            for m in self._modalities
        ]
        mask_spec = tf.TensorSpec([None, None], tf.float32, name="mask")

        def feed(*tensors):
            state = dict(zip(names, tensors[: len(names)]))
            chunks = dict(zip(self._modalities, tensors[len(names) : -1]))
            return self.streaming_feed(state, chunks, tensors[-1])

        self.serve_streaming_start = tf.function(
            self.streaming_start,
            input_signature=[tf.TensorSpec([], tf.int32, name="batch_size")],
        )
        self.serve_streaming_feed = tf.function(
            feed, input_signature=[*specs.values(), *chunk_specs, mask_spec]
        )
        self.serve_streaming_finish = tf.function(
            lambda *tensors: self.streaming_finish(dict(zip(names, tensors))),
            input_signature=list(specs.values()),
        )
        return {
            "streaming_start": self.serve_streaming_start,
            "streaming_feed": self.serve_streaming_feed,
            "streaming_finish": self.serve_streaming_finish,
        }
