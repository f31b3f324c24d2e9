"""A released ActionVLAD checkpoint as an avlad_tf workdir (library).

`import_release` reads the authors' TF-slim checkpoint (V1 `.ckpt` file or
V2 prefix, names with or without `stream0/`; docs/RELEASE.md Sec. 6), builds
the matching VGG-16 ActionVLAD model (K, D and C are read from the checkpoint
by `checkpoint_dims`, flow's 2·flow_stack channels from conv1_1), copies
every weight in (`avlad_tf.release.importer`) and saves
`WORKDIR/<stream>/model.keras`. The release's class order (`read_labels`:
`hmdb51`, `ucf101`, or a file) is written to `WORKDIR/labels.txt`; with a
prepared dataset the classifier's columns are permuted into its label order
(`permute_classes`) and the stream is recorded in `WORKDIR/run.json` with the
release's input settings, so that evaluate and export can read the workdir.
The program is `python -m avlad_tf.import_release`.
"""

import os

from absl import logging

from avlad_tf import run_record
from avlad_tf import storage
from avlad_tf.data import schema
from avlad_tf.data import video_input
from avlad_tf.models import action_vlad
from avlad_tf.models import fusion as fusion_lib
from avlad_tf.models import inspection
from avlad_tf.release import checkpoint_reader
from avlad_tf.release import importer
from avlad_tf.release import names

_LABELS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "labels")
RELEASE_LABELS = {
    "hmdb51": os.path.join(_LABELS_DIR, "hmdb51.txt"),
    "ucf101": os.path.join(_LABELS_DIR, "ucf101.txt"),
    # DeepMind's label maps of the I3D checkpoints (`import_i3d`).
    "kinetics400": os.path.join(_LABELS_DIR, "kinetics400.txt"),
    "kinetics600": os.path.join(_LABELS_DIR, "kinetics600.txt"),
}


def read_labels(spec):
    """Class names in label order, from a bundled name or a file.

    A line is either a class name (spaces allowed: Kinetics' "air
    drumming"), or `index name` with consecutive indices (UCF101's 1-based
    `classInd.txt`), which every line must then be.
    """
    path = RELEASE_LABELS.get(spec, spec)
    if not storage.isfile(path):
        raise FileNotFoundError(
            f"labels {spec!r}: neither {sorted(RELEASE_LABELS)} nor a file."
        )
    lines = [line.strip() for line in storage.read_text(path).splitlines()]
    lines = [line for line in lines if line]
    rows = [line.split(maxsplit=1) for line in lines]
    if all(len(row) == 2 and row[0].isdigit() for row in rows):
        indices = [int(row[0]) for row in rows]
        if indices != list(range(indices[0], indices[0] + len(rows))):
            raise ValueError(f"{path}: indices are not consecutive.")
        return [row[1] for row in rows]
    # Otherwise a line is a name, spaces and all (Kinetics' "air drumming").
    return lines


def checkpoint_dims(checkpoint, *, stream=0):
    """Reads `num_clusters`, `num_classes` and input channels off the names."""
    reader, prefix = checkpoint_reader.open_checkpoint(checkpoint)
    shapes = {}
    for name, shape in reader.get_variable_to_shape_map().items():
        index, relative = names.split_stream(name)
        if index in (None, stream) and not names.is_bookkeeping(name):
            shapes[relative] = shape
    if any(name.startswith("InceptionV2_TSN/") for name in shapes):
        raise ValueError(
            f"{prefix}: a BN-Inception (Charades) checkpoint; avlad_tf has no "
            f"BN-Inception backbone, so it cannot be imported."
        )
    needed = (
        "NetVLAD/centers",
        "classifier/logits/weights",
        "vgg_16/conv1/conv1_1/weights",
    )
    missing = [n for n in needed if n not in shapes]
    if missing:
        raise ValueError(
            f"{prefix}: not a VGG-16 ActionVLAD checkpoint for stream "
            f"{stream}: no {missing} (with or without `stream{stream}/`)."
        )
    return {
        "num_clusters": shapes["NetVLAD/centers"][0],
        "num_classes": shapes["classifier/logits/weights"][1],
        "input_channels": shapes["vgg_16/conv1/conv1_1/weights"][2],
    }


def permute_classes(model, source_labels, target_labels):
    """Reorders the `logits` columns from `source_labels` to `target_labels`."""
    if sorted(source_labels) != sorted(target_labels):
        raise ValueError(
            f"The release's classes and the dataset's differ: only in the "
            f"release {sorted(set(source_labels) - set(target_labels))}, only "
            f"in the dataset {sorted(set(target_labels) - set(source_labels))}."
        )
    order = [source_labels.index(label) for label in target_labels]
    logits = inspection.find_layer(model, "logits")
    kernel, bias = logits.get_weights()
    logits.set_weights([kernel[:, order], bias[order]])  # (K·D, C), (C,)
    return order != list(range(len(order)))


def _write_labels(workdir, labels):
    path = storage.join(workdir, schema.LABELS_FILE)
    text = "".join(label + "\n" for label in labels)
    if storage.exists(path):
        if storage.read_text(path) != text:
            raise ValueError(
                f"{path} exists with other labels; import into a fresh "
                f"workdir or one of the same dataset."
            )
        return
    storage.write_text(path, text)


# The release README's test protocol: RGB 1 crop, flow 5 (docs/RELEASE.md §9.2).
_RELEASE_CROPS = {"rgb": 1, "flow": 5}


def _record_stream(workdir, *, stream, data_dir, image_size, flow_stack, train_split):
    """Adds the imported stream to `WORKDIR/run.json` (`avlad_tf.run_record`),
    with the release's input settings and the split it was trained on, so
    evaluate and export can read it."""
    settings = run_record.recorded_settings(video_input.make_dataset)
    settings.update(image_size=image_size)
    if stream == "flow":  # an RGB checkpoint says nothing of L
        settings.update(flow_stack=flow_stack)
    entry = {
        "modalities": [stream],
        "train_split": train_split,
        "input": settings,
        "num_crops": _RELEASE_CROPS[stream],
    }
    if storage.exists(run_record.path(workdir)):
        record = run_record.read(workdir)
        if record["data"]["data_dir"] != storage.absolute(data_dir):
            raise ValueError(
                f"{run_record.path(workdir)} names the dataset "
                f"{record['data']['data_dir']}, not {data_dir}; import into "
                f"a fresh workdir."
            )
        record["streams"][stream] = entry
    else:
        record = run_record.build(
            data_dir=data_dir,
            info=video_input.dataset_info(data_dir),
            evaluate_split=None,
            streams={stream: entry},
            fuse_weights=None,
        )
    streams = record["streams"]
    if set(streams) == {"rgb", "flow"}:
        record["fusion"] = {
            "weights": dict(zip(("rgb", "flow"), fusion_lib.DEFAULT_LATE_WEIGHTS))
        }
    run_record.write(workdir, record)


def import_release(
    *,
    checkpoint,
    modality,
    output,
    num_classes=None,
    labels=None,
    data_dir=None,
    stream=0,
    image_size=224,
    allow_incomplete=False,
    train_split=None,
):
    """Builds the model, imports the checkpoint and saves `output`.

    Args:
        checkpoint: the release checkpoint (V1 file, V2 prefix or directory).
        modality: `'rgb'` or `'flow'`.
        output: `WORKDIR/<stream>/model.keras`.
        num_classes: expected class count; checked against the checkpoint.
        labels: the release's class order (`'hmdb51'`, `'ucf101'` or a file).
        data_dir: a prepared dataset whose label order the classifier is
            permuted into (needs `labels`); recorded in `WORKDIR/run.json`
            with the release's input settings, so that the workdir can be
            evaluated and exported.
        stream: the checkpoint's `stream<i>/` scope to read.
        image_size: the model's input frame size S.
        allow_incomplete: save even if model weights are left unset.
        train_split: the split the checkpoint was trained on
            (`'train_split2'`), recorded in `WORKDIR/run.json`; None if
            unknown.

    Returns:
        The `importer.ImportReport`.
    """
    if modality not in ("rgb", "flow"):
        raise ValueError(f"modality must be 'rgb' or 'flow'; got {modality!r}.")
    if not output.endswith(".keras"):
        raise ValueError(f"--output must end in .keras; got {output!r}.")
    dims = checkpoint_dims(checkpoint, stream=stream)
    if num_classes is not None and num_classes != dims["num_classes"]:
        raise ValueError(
            f"{checkpoint}: its classifier has {dims['num_classes']} classes, "
            f"not --num_classes={num_classes}."
        )
    channels = dims["input_channels"]
    if not (
        (modality == "rgb" and channels == 3)
        or (modality == "flow" and channels % 2 == 0)
    ):
        raise ValueError(
            f"{checkpoint}: conv1_1 takes {channels} input channels, which "
            f"does not fit --modality={modality} (RGB 3, flow 2·flow_stack)."
        )
    model = action_vlad.build_model(
        num_classes=dims["num_classes"],
        modality=modality,
        backbone="vgg16",
        num_clusters=dims["num_clusters"],
        image_size=image_size,
        flow_stack=max(channels // 2, 1),
        weights=None,
    )
    report = importer.import_checkpoint(
        model, checkpoint, stream=stream, require_complete=not allow_incomplete
    )
    logging.info("%s", report.summary())
    class_names = read_labels(labels) if labels else None
    if class_names is not None and len(class_names) != dims["num_classes"]:
        raise ValueError(
            f"{labels}: {len(class_names)} classes, but the "
            f"checkpoint has {dims['num_classes']}."
        )
    if data_dir is not None:
        if class_names is None:
            raise ValueError("--data_dir needs --labels (the release's order).")
        target = schema.read_metadata(data_dir)["labels"]
        if permute_classes(model, class_names, target):
            logging.info("classifier columns permuted into %s's label order", data_dir)
        class_names = list(target)
    stream_dir = storage.dirname(storage.absolute(output))
    storage.makedirs(stream_dir)
    if class_names is not None:
        _write_labels(storage.dirname(stream_dir), class_names)
    model.save(output)  # Keras writes URLs itself
    if data_dir is not None:
        _record_stream(
            storage.dirname(stream_dir),
            stream=modality,
            data_dir=data_dir,
            image_size=image_size,
            flow_stack=max(channels // 2, 1),
            train_split=train_split,
        )
    storage.write_text(
        storage.join(stream_dir, "import_report.txt"), report.summary() + "\n"
    )
    return report
