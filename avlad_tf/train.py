r"""Trains ActionVLAD from gin configs (docs/RELEASE.md Sec. 7).

    python -m avlad_tf.train --gin_file=late_fuse.gin --workdir=runs/hmdb51_s1 \
        --gin_bindings="DATA_DIR='data/hmdb51'"

The README's main command trains both streams of the embedded toy dataset
through both stages, evaluates, fuses, exports and prints a results table:

    python -m avlad_tf.train --gin_file=toy/late_fuse.gin --workdir=runs/toy

`--gin_file` names are looked up in the working directory and then in the
repository's `gin/` directory, so configs work from anywhere. Every tunable
is a gin binding (`--gin_bindings='train_stream.batch_size = 2'`); the
workdir gets `run.json` (what the run resolved, which evaluate, export,
predict and visualize read), `operative_config.gin` and `command.txt`. Restarting the same
command resumes from the last checkpoint.
"""

import shlex
import sys

from absl import app
from absl import flags

from avlad_tf import cli

if __name__ == "__main__":
    cli.start_quietly()  # first: before anything imports TensorFlow

from avlad_tf.training import experiment


def main(argv):
    cli.no_arguments(argv)
    if not flags.FLAGS.gin_file:
        raise app.UsageError(
            "--gin_file is required: the experiment's config, e.g. "
            "--gin_file=toy/late_fuse.gin (the configs are in gin/)"
        )
    workdir = cli.parse_flags_into_gin()
    # `train` writes the workdir, `operative_config.gin` last.
    experiment.train(
        workdir=workdir,
        command=shlex.join([sys.executable, "-m", "avlad_tf.train"] + sys.argv[1:]),
    )


if __name__ == "__main__":
    cli.define_flags()
    cli.run(main)
