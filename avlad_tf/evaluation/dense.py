"""Dense evaluation: every frame of a video (or every n-th), at bounded memory.

The release scores a video from T = 25 sampled frames. With
`evaluate.frames = 'all'`, a single-stream model reads every
`frame_stride`-th frame instead (for flow, every stack start j with
j + L <= n - 1), `chunk_frames` frames at a time: each chunk is decoded,
cropped as evaluation crops (`preprocessing.preprocess_for_eval`), run
through the backbone and added to the pooling's running state
(`models.streamed.StreamedModel`), so memory does not grow with the video's
length. Called by `scoring.evaluate`; figures in docs/EVALUATION.md.
"""

import numpy as np
import tensorflow as tf

from avlad_tf import progress
from avlad_tf.data import frame_sources
from avlad_tf.data import manifest
from avlad_tf.data import preprocessing
from avlad_tf.data import schema
from avlad_tf.data import video_example
from avlad_tf.models import streamed


def frame_starts(video_length, *, modality, flow_stack, stride):
    """The frames (RGB) or stack starts (flow) dense evaluation reads of a
    video of `video_length` frames."""
    last = video_length - 1 - (flow_stack if modality == "flow" else 0)
    return np.arange(0, last + 1, stride, dtype=np.int64)


def _chunk_crops(example, starts, *, modality, flow_stack, num_crops, crop_settings):
    """Evaluation crops `[1, t·N, S, S, C]` of frames `starts`."""
    if modality == "flow":
        indices = starts[:, None] + np.arange(flow_stack)  # [t, L]
        frames, assemble = frame_sources.flow_source(example, tf.constant(indices))
    else:
        frames, assemble = frame_sources.rgb_source(example, tf.constant(starts))
    crops = preprocessing.preprocess_for_eval(
        frames,
        modality=modality,
        num_crops=num_crops,
        assemble=assemble,
        **crop_settings,
    )  # [t·N, S, S, C], frame-major
    return crops[None]


def predict_split_dense(
    model, *, data_dir, split, info, settings, num_crops, frame_stride, chunk_frames
):
    """`scoring.predict_split`'s `(logits, video_ids, labels)`, dense.

    Raises:
        ValueError: a model with two inputs (a fused model: evaluate its
            streams), or a pooling layer without a streaming state.
    """
    stream = streamed.StreamedModel(model)
    modality = stream.input_name
    files, counts = manifest.split_shards(info, data_dir, split)
    crop_settings = preprocessing.eval_settings(settings)
    flow_stack = settings["flow_stack"]
    logits, ids, labels = [], [], []
    bar = progress.Progress(
        sum(counts), what=f"evaluate {modality} {split} (all frames)"
    )
    for serialized in tf.data.TFRecordDataset(files):
        example = video_example.decode(serialized)
        video_length = int(example[schema.LENGTH_KEY])
        starts = frame_starts(
            video_length, modality=modality, flow_stack=flow_stack, stride=frame_stride
        )
        video_id = example[schema.VIDEO_ID_KEY].numpy().decode()
        if not len(starts):
            raise ValueError(
                f"{split}: video {video_id} has {video_length} frames, too few "
                f"for one {flow_stack}-frame flow stack."
            )
        state = stream.initial_state(1)
        for first in range(0, len(starts), chunk_frames):
            chunk = starts[first : first + chunk_frames]
            crops = _chunk_crops(
                example,
                chunk,
                modality=modality,
                flow_stack=flow_stack,
                num_crops=num_crops,
                crop_settings=crop_settings,
            )
            mask = np.ones((1, crops.shape[1]), np.float32)
            state = stream.update(state, crops, mask)
        logits.append(np.asarray(stream.finish(state)[1]))
        ids.append(video_id)
        labels.append(
            video_example.label_vector(
                example, info["num_classes"], info.get("multi_label", False)
            ).numpy()
        )
        bar.update(done=len(ids))
    return np.concatenate(logits), ids, np.stack(labels)
