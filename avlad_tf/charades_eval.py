"""The official Charades v1 classification metric (`Charades_v1_classify.m`) in Python.

  python -m avlad_tf.charades_eval SUBMISSION_FILE Charades_v1_test.csv

SUBMISSION_FILE is the official text format or an `avlad_tf.evaluate` /
`avlad_tf.fuse --output` score file (`.h5` with `stream0/logits` and
`video_ids`; ids such as `Y/YSKX3.mp4` become `YSKX3`, as the release's
`charades_convert_scores_format.py`). Prints mAP and wAP with six decimals,
as the official script. Use raw logits, not softmax outputs: softmax changes
the per-class ranking across videos. The library, and how it matches the
official script (docs/RELEASE.md §9.3), is `avlad_tf.evaluation.charades`.
"""

import sys

from absl import app
from absl import logging

from avlad_tf import cli

if __name__ == "__main__":
    cli.start_quietly()  # first: before anything imports TensorFlow

from avlad_tf.evaluation import charades


def main(argv):
    if len(argv) != 3:
        raise app.UsageError(f"usage: {argv[0]} SUBMISSION_FILE TEST_CSV")
    result = charades.charades_eval(argv[1], argv[2])
    if result["num_missing"]:
        logging.warning(
            "%d test videos have no prediction; they score -inf.", result["num_missing"]
        )
    if result["num_unmatched"]:
        logging.warning(
            "%d submitted ids are not in %s or have no actions; ignored.",
            result["num_unmatched"],
            argv[2],
        )
    # Six decimals of the [0, 1] value, as the official script's fprintf.
    print(f"mAP: {result['mAP']:f}")
    print(f"wAP: {result['wAP']:f}")
    sys.stdout.flush()


if __name__ == "__main__":
    cli.run(main)
