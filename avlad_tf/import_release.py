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
release did (docs/RELEASE.md §7.3; `gin/flow.gin`). The release has one such
network per HMDB51 split, each fine-tuned on that split's training videos,
which hold 71-77 % of every other split's test videos; so convert each split
and bind them with `{split}`, which training fills from its own split
(docs/RELEASE_MODELS.md, "Initialisation per split"):

    for k in 1 2 3; do
      python -m avlad_tf.import_release --backbone_weights \
          --checkpoint=2-stream-pretrained/hmdb51/flow/split$k.ckpt \
          --output=flow_vgg16_split$k.weights.h5
    done
    --gin_bindings="flow/build_model.weights='flow_vgg16_split{split}.weights.h5'"

The dataset and training split the checkpoint was fine-tuned on are read off
its path (`hmdb51/.../split2.ckpt`; `--dataset` / `--split` where the path
does not name them) and recorded: in the weights file, where training refuses
a file fine-tuned on its test videos (`avlad_tf.models.initial_weights`), and
as the stream's `train_split` in `WORKDIR/run.json`.

`--labels` names the release's class order (`hmdb51`, `ucf101`, or a file
with one class per line, or `index name` lines as UCF101's classInd.txt); it
is written to `WORKDIR/labels.txt`. With `--data_dir` the classifier's columns
are permuted into that prepared dataset's label order when it differs (UCF101:
the release orders classes case-insensitively, Python's `sorted` does not).
The library is `avlad_tf.release.workdir`.
"""

from absl import flags

from avlad_tf import cli

if __name__ == "__main__":
    cli.start_quietly()  # first: before anything imports TensorFlow

from avlad_tf.release import backbone_weights
from avlad_tf.release import workdir as release_workdir


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
        "with --backbone_weights: also fc6 / fc7 (for the fc7 endpoint and "
        "conv pooling's conv_pooling_fc.init='image_network').",
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
    flags.DEFINE_enum(
        "dataset",
        None,
        list(backbone_weights.DATASETS),
        "the dataset the checkpoint was fine-tuned on, where its path does "
        "not name it (.../hmdb51/...).",
        **define,
    )
    flags.DEFINE_integer(
        "split",
        None,
        "the training split k (train_split<k>) the checkpoint was fine-tuned "
        "on, where its path does not name it (.../split<k>.ckpt).",
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


def main(argv, flag_values=flags.FLAGS):
    """Runs the import with parsed `flag_values`."""
    cli.no_arguments(argv)
    trained_on = backbone_weights.release_training_split(
        flag_values.checkpoint, dataset=flag_values.dataset, split=flag_values.split
    )
    if flag_values.backbone_weights:
        channels = backbone_weights.write_vgg16_weights(
            flag_values.checkpoint,
            flag_values.output,
            include_top=flag_values.include_top,
            stream=flag_values.stream,
            dataset=flag_values.dataset,
            split=flag_values.split,
        )
        seen = "no split recorded"
        if trained_on is not None:
            seen = f"fine-tuned on {trained_on['dataset']} {trained_on['train_split']}"
        print(
            f"wrote {flag_values.output} (VGG-16, conv1_1 takes {channels} "
            f"channels, {seen}); bind it as build_model.weights"
        )
        return
    if flag_values.modality is None:
        raise ValueError(
            "--modality is required (rgb or flow) unless --backbone_weights."
        )
    report = release_workdir.import_release(
        checkpoint=flag_values.checkpoint,
        modality=flag_values.modality,
        output=flag_values.output,
        num_classes=flag_values.num_classes,
        labels=flag_values.labels,
        data_dir=flag_values.data_dir,
        stream=flag_values.stream,
        image_size=flag_values.image_size,
        allow_incomplete=flag_values.allow_incomplete,
        train_split=(trained_on or {}).get("train_split"),
    )
    print(report.summary())
    print(f"wrote {flag_values.output}")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
