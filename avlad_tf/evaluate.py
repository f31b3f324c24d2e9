"""Evaluates the streams of a trained workdir and writes their scores.

  python -m avlad_tf.evaluate --workdir=runs/hmdb51_rgb_s1
  python -m avlad_tf.evaluate --workdir=runs/toy --gin_bindings="flow/evaluate.num_crops = 5"

Every stream of the run (`WORKDIR/run.json`) is scored on the run's
evaluation split with its recorded input settings and crops;
`evaluate.split`, `evaluate.num_crops` (in a stream's scope too),
`evaluate.batch_size` and `evaluate.normalize_on_device` may be bound, and
`--gin_bindings="evaluate.stream='flow'"` picks one stream. The library is `avlad_tf.evaluation.scoring`.
"""

import gin

from avlad_tf import cli

if __name__ == "__main__":
    cli.start_quietly()  # first: before anything imports TensorFlow

from avlad_tf import run_record
from avlad_tf.data import video_input
from avlad_tf.evaluation import scoring


def main(argv):
    cli.no_arguments(argv)
    workdir = cli.parse_flags_into_gin()
    record = run_record.read(workdir)
    run_record.check_input_bindings(record, video_input.make_dataset, workdir=workdir)
    chosen = cli.bound_or_none("evaluate.stream")
    for stream in [chosen] if chosen else record["streams"]:
        run_record.stream(record, stream, workdir=workdir)  # a known stream
        with gin.config_scope(stream):
            print(
                scoring.format_result(scoring.evaluate(workdir=workdir, stream=stream))
            )


if __name__ == "__main__":
    cli.define_flags()
    cli.run(main)
