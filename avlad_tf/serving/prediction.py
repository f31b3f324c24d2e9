"""Top-5 action classes of video files from an `avlad_tf.export` SavedModel (library).

Each video is decoded with OpenCV (any container / codec it reads) and
resized to the stored frame size of the training data (the flow of a model
trained on flow of the videos' native size is computed on the decoded
frames first, as `data_prep` computed it); frames are sampled
with evaluation's rules (`avlad_tf.data.sampling`, the release's by default);
TV-L1 flow of the training data's family (the export's `flow` config) is
computed only for the frame pairs the sampled stacks use, by default with
`avlad_tf.flow` on Keras's device (a GPU when the backend has one, else XLA
on the CPU), and quantised as `data_prep` stores it. The SavedModel's
`serving_default` does the rest (resize, crops, means, model, fusion). A video that cannot be read,
or is too short for the model's flow stacks, yields an error entry naming
why. The program is `python -m avlad_tf.predict`.
"""

import json
import os
import time

import numpy as np
import tensorflow as tf

from avlad_tf import serving
from avlad_tf import storage
from avlad_tf.data import frame_sources
from avlad_tf.data import sampling
from avlad_tf.data import schema
from avlad_tf.serving import clip_model
from data_prep import flow as flow_lib
from data_prep import video_io

CONFIG_ASSET = os.path.join("assets", serving.CONFIG_FILE)
TOP_K = 5


class VideoError(Exception):
    """A video that decodes but cannot be used; the message says why."""


def read_config(export_dir):
    """The client config an export stores in `assets/avlad_export.json`.

    Raises:
        FileNotFoundError: if the directory is not an avlad_tf export.
        ValueError: for an export of another format version.
    """
    config_path = storage.join(export_dir, CONFIG_ASSET)
    if not storage.exists(config_path):
        raise FileNotFoundError(
            f"{export_dir} is not an avlad_tf export: {config_path} is "
            f"missing (write one with `python -m avlad_tf.export`)."
        )
    config = json.loads(storage.read_text(config_path))
    if config.get("format_version") != serving.FORMAT_VERSION:
        raise ValueError(
            f"{config_path}: export format {config.get('format_version')}, "
            f"this avlad_tf reads {serving.FORMAT_VERSION}; export the workdir "
            f"again with `python -m avlad_tf.export --workdir=...`."
        )
    return config


def load_export(export_dir):
    """Returns `(serving function, export config)` of an export directory."""
    config = read_config(export_dir)
    loaded = tf.saved_model.load(export_dir)
    return loaded.signatures["serving_default"], config


def flow_function(config, *, backend="keras"):
    """`data_prep.flow.pair_flow` for the export's flow family, for grey
    pairs of any one size (`[N, H, W]` each); None for a model without flow.

    Raises:
        ValueError: `backend` cannot compute the family (OpenCV computes
            only the 'opencv' preset).
    """
    if "flow" not in config["modalities"]:
        return None
    family = schema.flow_family(config.get("flow", {}))
    settings = dict(
        params=tuple(family["parameters"].items()),
        preset=family["preset"],
        backend=backend,
    )
    flow_lib.check_backend(backend, family["preset"])
    # The native size is known only once a video is decoded; pair_flow keeps
    # one compiled flow per size.
    return lambda firsts, seconds: flow_lib.pair_flow(firsts.shape[1:3], **settings)(
        firsts, seconds
    )


def decode_size(config):
    """`(height, width)` to decode videos at: the stored size, or (None,
    None), the videos' own, for flow computed at their native size."""
    if schema.flow_family(config.get("flow", {}))["frame_size"] == "native":
        return None, None
    return config["frame_height"], config["frame_width"]


def sample_indices(video_length, config):
    """`{modality: indices}` as evaluation samples them (`sampling`)."""
    indices = sampling.sample_indices(
        video_length,
        modalities=config["modalities"],
        num_samples=config["num_frames"],
        flow_stack=config["flow_stack"],
        joint_sampling=config["joint_sampling"],
        sampling=config["sampling"],
        **sampling.clip_settings(config),
    )
    return {m: np.asarray(v) for m, v in indices.items()}


def stacked_flow(frames, flow_indices, pair_flow, *, size):
    """Quantised flow stacks `[T, H, W, 2L]` (x1, y1, ..., xL, yL) at the
    stored `size` (H, W): flow computed on larger or smaller frames is
    resized, its values unchanged, as `data_prep` stores it.

    TV-L1 (`pair_flow`, `flow_function`) runs once per distinct flow frame j
    (frames j -> j + 1) that some stack uses, not on every pair of the video;
    the stacks are interleaved by the input pipeline's own rule
    (`frame_sources.flow_assembler`).
    """
    needed, position = np.unique(flow_indices, return_inverse=True)
    # Only the frames those pairs read become grey, not the whole video.
    used = np.union1d(needed, needed + 1)
    grey = flow_lib.greys([frames[k] for k in used])  # (len(used), H, W)
    quantized = schema.quantize_flow(
        pair_flow(
            grey[np.searchsorted(used, needed)], grey[np.searchsorted(used, needed + 1)]
        )
    )  # (U, H, W, 2)
    planes = np.concatenate([quantized[..., 0], quantized[..., 1]])  # (2U, h, w)
    height, width = size
    planes = np.stack(
        [video_io.resize(plane, height=height, width=width) for plane in planes]
    )  # (2U, H, W)
    assemble = frame_sources.flow_assembler(
        position.reshape(-1).astype(np.int32), len(needed), flow_indices.shape
    )
    return assemble(planes[:, None, :, :, None]).numpy()[:, 0]  # (T, H, W, 2L)


def stored(frame, size):
    """A decoded frame at the stored `size` (H, W)."""
    return video_io.resize(frame, height=size[0], width=size[1])


def prepare_inputs(path, config, pair_flow, *, keep_truncated=False):
    """Decodes, samples and computes flow (`pair_flow`) for one video; a
    whole-clip model (I3D) takes every frame (`clip_model.prepare_clip`).
    A truncated video is refused unless `keep_truncated`
    (`video_io.read_video`).

    Returns:
        `(inputs, timings)`: `{modality: uint8 [1, T, H, W, C]}` and seconds
        spent in `decode` and `flow`.

    Raises:
        video_io.SourceError: the file is missing or unreadable.
        VideoError: too few frames.
    """
    start = time.perf_counter()
    if config.get("input") == clip_model.WHOLE_CLIP:
        try:
            inputs = clip_model.prepare_clip(
                path, config, pair_flow, keep_truncated=keep_truncated
            )
        except ValueError as error:
            raise VideoError(str(error)) from None
        return inputs, {"decode+flow": time.perf_counter() - start}
    height, width = decode_size(config)
    frames = video_io.read_video(
        path, height=height, width=width, keep_truncated=keep_truncated
    )  # BGR
    decoded = time.perf_counter()
    needed = sampling.min_frames(config["modalities"], config["flow_stack"])
    if len(frames) < needed:
        raise VideoError(
            f"too short: {len(frames)} frame(s) decoded, but the model's "
            f"{config['flow_stack']}-frame flow stacks need at least {needed}"
        )
    indices = sample_indices(len(frames), config)
    inputs = {}
    size = config["frame_height"], config["frame_width"]
    if "rgb" in indices:
        rgb = np.stack([stored(frames[i], size) for i in indices["rgb"]])[..., ::-1]
        inputs["rgb"] = np.ascontiguousarray(rgb)[None]  # BGR -> RGB above
    flow_start = time.perf_counter()
    if "flow" in indices:
        stacks = stacked_flow(frames, indices["flow"], pair_flow, size=size)
        inputs["flow"] = stacks[None]
    done = time.perf_counter()
    return inputs, {"decode": decoded - start, "flow": done - flow_start}


def top_k(probabilities, class_names, k=TOP_K):
    """The `k` most probable classes as `[{"class", "probability"}]`.

    Raises:
        VideoError: non-finite scores (a model whose weights overflow),
            which would otherwise rank as arbitrary classes.
    """
    if not np.all(np.isfinite(probabilities)):
        raise VideoError(
            "the model's scores are not finite (NaN or inf): its weights "
            "overflow on this input; check the weights the export was made from"
        )
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [
        {"class": class_names[i], "probability": float(probabilities[i])} for i in order
    ]


def predict_video(serve, config, path, pair_flow, *, keep_truncated=False):
    """Runs the whole chain on one video; returns a result dict.

    Raises:
        video_io.SourceError, VideoError: see `prepare_inputs`.
    """
    with video_io.local_copy(path) as local:
        inputs, timings = prepare_inputs(
            local, config, pair_flow, keep_truncated=keep_truncated
        )
    start = time.perf_counter()
    outputs = serve(**{m: tf.constant(v) for m, v in inputs.items()})
    probabilities = outputs["probabilities"].numpy()[0]
    timings["model"] = time.perf_counter() - start
    return {
        "video": path,
        "top5": top_k(probabilities, config["class_names"]),
        "seconds": timings,
    }


def predict_videos(export_dir, paths, *, flow_backend="keras", keep_truncated=False):
    """Predicts every video; a failing one yields `{"video", "error"}`.

    Args:
        flow_backend: 'keras' (`avlad_tf.flow`) or 'opencv' (CPU, only for
            models trained on the 'opencv' flow family).
        keep_truncated: predict from the frames that decode of a video
            shorter than its container promises, instead of refusing it.
    """
    serve, config = load_export(export_dir)
    pair_flow = flow_function(config, backend=flow_backend)
    results = []
    for path in paths:
        try:
            results.append(
                predict_video(
                    serve, config, path, pair_flow, keep_truncated=keep_truncated
                )
            )
        except (video_io.SourceError, VideoError) as e:
            results.append({"video": path, "error": str(e)})
    return results
