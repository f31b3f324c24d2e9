"""Writes the SavedModel of a trained workdir (see `avlad_tf.serving.saved_model`).

  python -m avlad_tf.export --workdir=runs/toy

The workdir alone is enough: labels, input settings, crops per stream and
fusion weights come from the run's record (`WORKDIR/run.json`).
`export.export_dir` and `export.num_crops` may be bound.
"""

from avlad_tf import cli

if __name__ == "__main__":
    cli.start_quietly()  # first: before anything imports TensorFlow

from avlad_tf import run_record
from avlad_tf.data import video_input
from avlad_tf.serving import saved_model


def main(argv):
    cli.no_arguments(argv)
    workdir = cli.parse_flags_into_gin()
    run_record.check_input_bindings(
        run_record.read(workdir), video_input.make_dataset, workdir=workdir
    )
    print(saved_model.export(workdir=workdir))


if __name__ == "__main__":
    cli.define_flags()
    cli.run(main)
