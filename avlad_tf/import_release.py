"""Imports a released ActionVLAD checkpoint into an avlad_tf workdir.

    python -m avlad_tf.import_release \
        --checkpoint=ActionVLAD-pretrained/hmdb51/rgb/split1.ckpt \
        --modality=rgb --labels=hmdb51 --data_dir=data/hmdb51_split1 \
        --output=runs/release_hmdb51_s1/rgb/model.keras

Reads the authors' TF-slim checkpoint (V1 `.ckpt` file or V2 prefix, names
with or without `stream0/`; docs/RELEASE.md Sec. 6), builds the matching
VGG-16 ActionVLAD model (K, D and C are read from the checkpoint, flow's
2·flow_stack channels from conv1_1), copies every weight in
(`avlad_tf.release.importer`) and saves `model.keras`, so that
`python -m avlad_tf.evaluate --workdir=runs/release_hmdb51_s1 ...` scores it.

With `--backbone_weights` it writes only the VGG-16 backbone, as a
keras.applications weights file that `build_model.weights` takes: the path
to start the flow stream from the release's two-stream flow VGG-16, as the
release did (docs/RELEASE.md §7.3; `gin/flow.gin`):

    python -m avlad_tf.import_release --backbone_weights \
        --checkpoint=2-stream-pretrained/hmdb51/flow/split1.ckpt \
        --output=flow_vgg16.weights.h5

`--labels` names the release's class order (`hmdb51`, `ucf101`, or a file
with one class per line, or `index name` lines as UCF101's classInd.txt); it
is written to `WORKDIR/labels.txt`. With `--data_dir` the classifier's columns
are permuted into that prepared dataset's label order when it differs (UCF101:
the release orders classes case-insensitively, Python's `sorted` does not).
"""

import os

from absl import flags
from absl import logging

from avlad_tf import cli
from avlad_tf import run_record
from avlad_tf.data import schema
from avlad_tf.data import video_input
from avlad_tf.models import action_vlad
from avlad_tf.models import fusion as fusion_lib
from avlad_tf.release import backbone_weights
from avlad_tf.release import checkpoint_reader
from avlad_tf.release import importer
from avlad_tf.release import names

_LABELS_DIR = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "release", "labels"
)
RELEASE_LABELS = {
    "hmdb51": os.path.join(_LABELS_DIR, "hmdb51.txt"),
    "ucf101": os.path.join(_LABELS_DIR, "ucf101.txt"),
}


def read_labels(spec):
    """Class names in label order, from a bundled name or a file.

    A line is either a class name, or `index name` with consecutive indices
    (UCF101's 1-based `classInd.txt`).
    """
    path = RELEASE_LABELS.get(spec, spec)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"labels {spec!r}: neither {sorted(RELEASE_LABELS)} nor a file."
        )
    with open(path, encoding="utf-8") as f:
        rows = [line.split() for line in f if line.strip()]
    if all(len(row) == 2 and row[0].isdigit() for row in rows):
        indices = [int(row[0]) for row in rows]
        if indices != list(range(indices[0], indices[0] + len(rows))):
            raise ValueError(f"{path}: indices are not consecutive.")
        return [row[1] for row in rows]
    bad = [" ".join(row) for row in rows if len(row) != 1]
    if bad:
        raise ValueError(
            f"{path}: expected one class name per line; received {bad[:3]}"
        )
    return [row[0] for row in rows]


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
    logits = action_vlad.find_layer(model, "logits")
    kernel, bias = logits.get_weights()
    logits.set_weights([kernel[:, order], bias[order]])  # (K·D, C), (C,)
    return order != list(range(len(order)))


def _write_labels(workdir, labels):
    path = os.path.join(workdir, schema.LABELS_FILE)
    text = "".join(label + "\n" for label in labels)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            if f.read() != text:
                raise ValueError(
                    f"{path} exists with other labels; import into a fresh "
                    f"workdir or one of the same dataset."
                )
        return
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


# The release README's test protocol: RGB 1 crop, flow 5 (docs/RELEASE.md §9.2).
_RELEASE_CROPS = {"rgb": 1, "flow": 5}


def _record_stream(workdir, *, stream, data_dir, image_size, flow_stack):
    """Adds the imported stream to `WORKDIR/run.json` (`avlad_tf.run_record`),
    with the release's input settings, so evaluate and export can read it."""
    info = video_input.dataset_info(data_dir)
    settings = run_record.input_settings(video_input.make_dataset)
    settings.update(image_size=image_size)
    if stream == "flow":  # an RGB checkpoint says nothing of L
        settings.update(flow_stack=flow_stack)
    entry = {
        "modalities": [stream],
        "train_split": None,
        "input": settings,
        "num_crops": _RELEASE_CROPS[stream],
    }
    if os.path.exists(run_record.path(workdir)):
        record = run_record.read(workdir)
        if record["data"]["data_dir"] != os.path.abspath(data_dir):
            raise ValueError(
                f"{run_record.path(workdir)} names the dataset "
                f"{record['data']['data_dir']}, not {data_dir}; import into "
                f"a fresh workdir."
            )
        record["streams"][stream] = entry
    else:
        record = run_record.build(
            data_dir=data_dir,
            info=info,
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
    stream_dir = os.path.dirname(os.path.abspath(output))
    os.makedirs(stream_dir, exist_ok=True)
    if class_names is not None:
        _write_labels(os.path.dirname(stream_dir), class_names)
    model.save(output)
    if data_dir is not None:
        _record_stream(
            os.path.dirname(stream_dir),
            stream=modality,
            data_dir=data_dir,
            image_size=image_size,
            flow_stack=max(channels // 2, 1),
        )
    with open(
        os.path.join(stream_dir, "import_report.txt"), "w", encoding="utf-8"
    ) as f:
        f.write(report.summary() + "\n")
    return report


def define_flags(flag_values=flags.FLAGS):
    """Defines the tool's flags; only when run as a program, so that
    importing this module beside other entry points never clashes."""
    define = dict(flag_values=flag_values)
    flags.DEFINE_string(
        "checkpoint",
        None,
        "release checkpoint: V1 .ckpt file, V2 prefix or directory.",
        **define,
    )
    flags.DEFINE_enum(
        "modality",
        None,
        ["rgb", "flow"],
        "the checkpoint's stream (not with --backbone_weights).",
        **define,
    )
    flags.DEFINE_string(
        "output",
        None,
        "WORKDIR/<stream>/model.keras, or "
        "the .weights.h5 file with --backbone_weights.",
        **define,
    )
    flags.DEFINE_bool(
        "backbone_weights",
        False,
        "write only the VGG-16 "
        "backbone as a keras.applications weights file for "
        "build_model.weights (e.g. the two-stream flow VGG-16).",
        **define,
    )
    flags.DEFINE_bool(
        "include_top",
        False,
        "with --backbone_weights: also fc6 / fc7 (for the fc7 endpoint).",
        **define,
    )
    flags.DEFINE_integer(
        "num_classes",
        None,
        "expected number of classes (default: read from the checkpoint).",
        **define,
    )
    flags.DEFINE_string(
        "labels", None, "the release's class order: hmdb51, ucf101 or a file.", **define
    )
    flags.DEFINE_string(
        "data_dir",
        None,
        "prepared dataset whose label order the classifier is permuted into.",
        **define,
    )
    flags.DEFINE_integer("stream", 0, "the checkpoint's stream<i>/ scope.", **define)
    flags.DEFINE_integer("image_size", 224, "input frame size S.", **define)
    flags.DEFINE_bool(
        "allow_incomplete",
        False,
        "save even if some model weights stay unset.",
        **define,
    )
    for name in ("checkpoint", "output"):
        flags.mark_flag_as_required(name, flag_values=flag_values)


def run(flag_values=flags.FLAGS):
    """Runs the import with parsed `flag_values`; returns the report."""
    if flag_values.backbone_weights:
        channels = backbone_weights.write_vgg16_weights(
            flag_values.checkpoint,
            flag_values.output,
            include_top=flag_values.include_top,
            stream=flag_values.stream,
        )
        print(
            f"wrote {flag_values.output} (VGG-16, conv1_1 takes {channels} "
            f"channels); bind it as build_model.weights"
        )
        return None
    if flag_values.modality is None:
        raise ValueError(
            "--modality is required (rgb or flow) unless --backbone_weights."
        )
    report = import_release(
        checkpoint=flag_values.checkpoint,
        modality=flag_values.modality,
        output=flag_values.output,
        num_classes=flag_values.num_classes,
        labels=flag_values.labels,
        data_dir=flag_values.data_dir,
        stream=flag_values.stream,
        image_size=flag_values.image_size,
        allow_incomplete=flag_values.allow_incomplete,
    )
    print(report.summary())
    print(f"wrote {flag_values.output}")
    return report


def main(argv):
    cli.no_arguments(argv)
    run()


if __name__ == "__main__":
    define_flags()
    cli.run(main)
