"""A trained stream model split at its pooling layer, for videos of any length.

ActionVLAD, average and max pooling keep a running state whose size does not
depend on the video's length (`avlad_tf.layers.streaming`), so a trained
single-stream model classifies a video chunk by chunk:

    streamed = StreamedModel(model)
    state = streamed.initial_state(batch_size)
    for crops, mask in chunks:                 # [B, t, S, S, C], [B, t]
        state = streamed.update(state, crops, mask)
    descriptor, logits = streamed.finish(state)  # == model(all crops)

The backbone runs on one chunk at a time; only the state persists.
"""

from keras import ops

from avlad_tf.models import aggregators
from avlad_tf.models import inspection


class StreamedModel:
    """`model` as features -> streamed pooling -> classifier.

    Args:
        model: a single-stream model (`build_model`) whose pooling layer has
            a streaming state: NetVLAD, average, max or two-stream pooling.

    Raises:
        ValueError: naming the pooling layer when it cannot stream, or the
            model when its backbone mixes frames.
    """

    def __init__(self, model):
        if len(model.inputs) != 1:
            raise ValueError(
                f"{model.name} reads {len(model.inputs)} inputs; only a "
                "single-stream model streams (evaluate or serve a fused "
                "model's streams separately)."
            )
        if inspection.mixes_frames(model):
            raise ValueError(
                f"{model.name} convolves over time (a clip backbone such as "
                "I3D): the features of a chunk depend on the frames around "
                "it, so it classifies whole videos only (serving_default)."
            )
        self.pool = inspection.pooling_layer(model)
        if not aggregators.of_layer(self.pool).streams:
            streaming = sorted(
                n for n, a in aggregators.AGGREGATORS.items() if a.streams
            )
            raise ValueError(
                f"{model.name}: its {self.pool.name!r} pooling has no streaming "
                f"state (the poolings {streaming} have one); classify whole "
                "videos with serving_default instead."
            )
        self.input_name = inspection.input_names(model)[0]
        self.features = inspection.feature_model(model)
        # Pooled dropout is the identity at inference: the head is context
        # gating, if the model has it, then the linear classifier
        # (`stream.classify`).
        self.classifier = inspection.find_layer(model, "logits")
        self.gating = next(
            (l for l in model.layers if l.name == aggregators.GATING_LAYER), None
        )

    def initial_state(self, batch_size):
        return self.pool.initial_state(batch_size)

    def update(self, state, crops, mask):
        """Adds `crops` `[B, t, S, S, C]` (float, preprocessed as for the
        model) to `state`; `mask` `[B, t]` is 0 for padding."""
        features = self.features({self.input_name: crops}, training=False)
        return self.pool.update(state, features, ops.cast(mask, "float32"))

    def finish(self, state):
        """`(descriptor, logits)` of every crop added to `state`."""
        descriptor = self.pool.finalize(state)
        gated = self.gating(descriptor) if self.gating else descriptor
        return descriptor, self.classifier(gated)
