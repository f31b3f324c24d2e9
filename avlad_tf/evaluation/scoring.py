"""Evaluates a trained stream on a split and writes its scores (library).

`evaluate` loads `<workdir>/<stream>/model.keras`, runs the deterministic
evaluation pipeline with the run's recorded input settings
(`run_record`; `make_dataset(training=False, with_ids=True)`: 25 uniformly
spaced frames, the release's 1 centre crop or 5 crops pooled into one bag)
and writes `<workdir>/scores/<stream>_<split>_<n>crop.h5` (`avlad_tf.evaluation.score_files`):
raw logits in the split list's order, the layout of the release's
`final_logits/*.h5`, so that late fusion fuses ours with theirs.

It reports top-1, top-5 and mean per-class accuracy, and for multi-label data
mAP and wAP (docs/RELEASE.md §9). The program is `python -m avlad_tf.evaluate`.
"""

from absl import logging
import keras
import numpy as np

from avlad_tf import progress
from avlad_tf import run_record
from avlad_tf import settings
from avlad_tf import storage
from avlad_tf.data import video_input
from avlad_tf.evaluation import dense
from avlad_tf.evaluation import metrics
from avlad_tf.evaluation import score_files as scores_lib
from avlad_tf.models import action_vlad  # also registers the custom layers
from avlad_tf.models import inspection

STREAMS = ("rgb", "flow", "fused")


def load_stream_model(workdir, stream):
    """Loads `<workdir>/<stream>/model.keras` (only our own artifacts)."""
    path = storage.join(workdir, stream, "model.keras")
    if not storage.exists(path):
        found = [
            s
            for s in STREAMS
            if storage.exists(storage.join(workdir, s, "model.keras"))
        ]
        raise FileNotFoundError(
            f"{path} does not exist (streams with a model in {workdir}: "
            f"{found or 'none'}); train first with python -m avlad_tf.train."
        )
    return keras.saving.load_model(path)


def predict_split(model, dataset, *, total=None, what="evaluate"):
    """Runs `model` over an evaluation dataset.

    Args:
        model: a keras model whose inputs are named after the feature keys.
        dataset: yields `(features, labels)` with `features['video_id']`.
        total: the videos to expect, for the progress line.
        what: the progress line's label.

    Returns:
        `(logits [N, C], video_ids [N] list of str, labels [N, C])` as NumPy.
    """
    input_names = inspection.input_names(model)
    logits, ids, labels = [], [], []
    bar = progress.Progress(total, what=what)
    for features, batch_labels in dataset:
        inputs = {name: features[name] for name in input_names}
        logits.append(np.asarray(model.predict_on_batch(inputs)))
        ids.extend(v.decode() for v in features["video_id"].numpy())
        labels.append(batch_labels.numpy())
        bar.update(done=len(ids))
    if not ids:
        raise ValueError("the evaluation dataset is empty.")
    return np.concatenate(logits), ids, np.concatenate(labels)


@settings.configurable(
    evaluation=("stream", "split", "num_crops", "frames", "frame_stride"),
    execution=("batch_size", "normalize_on_device", "chunk_frames"),
    call=("workdir", "make_dataset_fn"),
)
def evaluate(
    *,
    workdir,
    stream,
    split=None,
    num_crops=None,
    batch_size=1,
    normalize_on_device=None,
    frames="sampled",
    frame_stride=1,
    chunk_frames=32,
    make_dataset_fn=video_input.make_dataset,
):
    """Scores one stream of a trained workdir on a split.

    Args:
        workdir: the training workdir (docs/CONTRACTS.md, Workdir).
        stream: 'rgb', 'flow' or 'fused' (the sub-directory holding
            model.keras).
        split: split name; None is the run's evaluation split.
        num_crops: 1 (the release's centre crop at (16, 60)) or 5 (pooled
            into one bag, not averaged); None is the run's, as recorded
            from `evaluate.num_crops` in the stream's scope.
        batch_size: videos per batch (the release evaluated with 1).
        normalize_on_device: the pipeline ships uint8 crops and the model does
            the pixel arithmetic first (`layers.ReleasePixels`): the same
            logits, bit for bit, for a quarter of the host-to-device bytes
            and a fraction of the host work (5-crop batches are otherwise
            host-bound; docs/PERFORMANCE.md). Needs sampled frames stored at
            the run's `resize_to`; None (the default) uses it wherever the
            run's data is stored so, False never.
        frames: 'sampled': the run's T sampled frames (the release); 'all':
            every `frame_stride`-th frame (flow: stack start), `chunk_frames`
            at a time through the backbone into the pooling's running state,
            at bounded memory (`dense_evaluation`; single streams with
            NetVLAD, avg, max or two-stream pooling). Scores go to
            `..._all.h5` (`..._all<stride>.h5` for a stride).
        make_dataset_fn: the dataset factory (tests and `train` inject theirs).

    Returns:
        A dict of metrics as fractions in [0, 1] (`top1`, `top5`,
        `mean_class_accuracy`, or `top1`, `mAP`, `wAP` for multi-label data)
        plus `num_videos`, `scores_path` and `num_params` (the model's
        parameter count).
    """
    if frames not in ("sampled", "all"):
        raise ValueError(
            f"evaluate.frames must be 'sampled' (the run's T sampled frames) "
            f"or 'all'; got {frames!r} (bind evaluate.frame_stride for every "
            "n-th frame)."
        )
    record = run_record.read(workdir)
    entry = run_record.stream(record, stream, workdir=workdir)
    split = split or record["data"]["evaluate_split"]
    if not split:
        raise ValueError(
            f"{run_record.path(workdir)} names no evaluation "
            f"split; bind evaluate.split (e.g. 'test_split1')."
        )
    num_crops = num_crops or entry["num_crops"]
    input_settings = dict(entry["input"])
    model = load_stream_model(workdir, stream)
    inspection.check_crops(model, num_crops)
    num_params = model.count_params()  # the trained model's, for tables
    pixel_dtype = "float32"
    normalize_on_device = _on_device(
        normalize_on_device, record, input_settings, frames=frames
    )
    if normalize_on_device:
        pixel_dtype = "uint8"
        model = action_vlad.with_uint8_pixels(
            model,
            bgr_means=input_settings["bgr_means"],
            convert_before_resize=input_settings["convert_before_resize"],
        )
    info = video_input.dataset_info(record["data"]["data_dir"])  # once
    logging.info(
        "evaluating %s/%s on %s with %d crop(s)", workdir, stream, split, num_crops
    )
    if frames == "all":
        logits, video_ids, one_hot = dense.predict_split_dense(
            model,
            data_dir=record["data"]["data_dir"],
            split=split,
            info=info,
            settings=input_settings,
            num_crops=num_crops,
            frame_stride=frame_stride,
            chunk_frames=chunk_frames,
        )
    else:
        dataset = make_dataset_fn(
            data_dir=record["data"]["data_dir"],
            split=split,
            training=False,
            modalities=tuple(entry["modalities"]),
            batch_size=batch_size,
            num_crops=num_crops,
            with_ids=True,
            pixel_dtype=pixel_dtype,
            info=info,
            **input_settings,
        )
        logits, video_ids, one_hot = predict_split(
            model,
            dataset,
            total=info["splits"].get(split, {}).get("num_records"),
            what=f"evaluate {stream} {split}",
        )
    if len(set(video_ids)) != len(video_ids):
        raise ValueError(
            f"{split}: the evaluation pipeline yielded repeated "
            "videos; it must not repeat or shuffle."
        )
    labels = scores_lib.label_array(one_hot)
    suffix = None
    if frames == "all":
        suffix = "all" if frame_stride == 1 else f"all{frame_stride}"
    path = scores_lib.scores_path(workdir, stream, split, num_crops, frames=suffix)
    scores_lib.write_scores(path, logits, video_ids, labels)
    result = metrics.classification_report(logits, labels)
    result.update(
        stream=stream,
        split=split,
        num_crops=num_crops,
        num_videos=len(video_ids),
        frames=frames or "sampled",
        scores_path=path,
        num_params=int(num_params),
    )
    logging.info("%s", format_result(result))
    return result


def format_result(result):
    """One human-readable line per evaluation, metrics in percent."""
    names = ("top1", "top5", "mean_class_accuracy", "mAP", "wAP")
    values = ", ".join(f"{n} {100 * result[n]:.2f}" for n in names if n in result)
    frames = (
        ""
        if result.get("frames", "sampled") == "sampled"
        else f", {result['frames']} frames"
    )
    return (
        f"{result['stream']} {result['split']} {result['num_crops']} "
        f"crop(s){frames}, {result['num_videos']} videos: {values} -> "
        f"{result['scores_path']}"
    )


def _on_device(normalize_on_device, record, input_settings, *, frames):
    """Whether evaluation ships uint8 crops (`evaluate.normalize_on_device`)."""
    stored = (record["data"].get("frame_height"), record["data"].get("frame_width"))
    fits = frames == "sampled" and stored == tuple(input_settings["resize_to"])
    if normalize_on_device is None:
        return fits
    unknown = None in stored  # older data: the pipeline's check decides
    if normalize_on_device and not fits and not (unknown and frames == "sampled"):
        raise ValueError(
            "evaluate.normalize_on_device = True needs frames='sampled' and "
            f"frames stored at the run's resize_to {input_settings['resize_to']}"
            f" (the run's data has {stored}, frames={frames!r}); bind it to "
            "None or False."
        )
    return bool(normalize_on_device)
