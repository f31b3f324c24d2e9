"""Fuses per-stream score files, as the release's `combine_streams.py`.

  python -m avlad_tf.fuse --scores rgb_split1.h5 --scores flow_split1.h5 \
      --weights 1,2 --labels test_split1.txt [--idt idt_split1.h5]
  python -m avlad_tf.fuse --method=svm --scores rgb_test.h5 --scores flow_test.h5 \
      --train_scores rgb_train.h5 --train_scores flow_train.h5

Score files are HDF5 with `stream0/logits` `[N, C]` (the release's layout and
what `avlad_tf.evaluate` writes; iDT files may use the release's `idt`
dataset). Labels come from a list file (`path video_length label` per line, the
last field being the label) or, without `--labels`, from the `labels` dataset
that evaluation stores in its score files. `--method=svm` fuses instead by
a linear SVM on the streams' stacked L2-normalised softmax scores, trained
on the training split's score files (Simonyan & Zisserman's alternative;
`avlad_tf.evaluation.svm_fusion`). The library is `avlad_tf.evaluation.late_fusion`.
"""

from absl import app
from absl import flags

from avlad_tf import cli

if __name__ == "__main__":
    cli.start_quietly()  # first: before anything imports TensorFlow

from avlad_tf.evaluation import late_fusion
from avlad_tf.evaluation import svm_fusion
from avlad_tf.models import fusion as fusion_lib


def define_flags():
    flags.DEFINE_multi_string("scores", None, "HDF5 score file (repeat).")
    flags.DEFINE_string(
        "weights",
        None,
        "Comma-separated weights, one per --scores; default "
        "the release's RGB : flow = 1 : 2 for two files, equal weights "
        "otherwise.",
    )
    flags.DEFINE_string(
        "labels",
        None,
        "List file (path video_length label); default: the "
        "labels stored in the first score file.",
    )
    flags.DEFINE_string("idt", None, "Optional iDT score file.")
    flags.DEFINE_float("idt_weight", 0.25, "Weight of the iDT scores.")
    flags.DEFINE_string("output", None, "Write the fused scores here.")
    flags.DEFINE_enum(
        "method",
        "weighted",
        ["weighted", "svm"],
        "weighted: the release's weighted average of raw logits; svm: a linear "
        "SVM trained on --train_scores (docs/EVALUATION.md).",
    )
    flags.DEFINE_multi_string(
        "train_scores",
        None,
        "--method=svm: the training split's score file of each stream, in "
        "--scores order (python -m avlad_tf.evaluate with evaluate.split).",
    )
    flags.DEFINE_float("svm_c", 1.0, "--method=svm: the SVM's C.")


def main(argv):
    cli.no_arguments(argv)
    f = flags.FLAGS
    paths = f.scores or []
    if not paths:
        raise app.UsageError("give at least one --scores file.")
    if f.weights is not None:
        weights = [float(w) for w in f.weights.split(",")]
    elif len(paths) == 2:
        weights = list(fusion_lib.DEFAULT_LATE_WEIGHTS)
    else:
        weights = [1.0] * len(paths)
    combine, method = None, "fused"
    if f.method == "svm":
        if not f.train_scores:
            raise app.UsageError(
                "--method=svm needs --train_scores: the training split's score "
                "file of each stream."
            )
        combine = svm_fusion.trained_combine(f.train_scores, c=f.svm_c)
        method = f"fused (linear SVM, C={f.svm_c:g})"
    result = late_fusion.fuse_files(
        paths,
        weights,
        labels=f.labels,
        idt_path=f.idt,
        idt_weight=f.idt_weight,
        output_path=f.output,
        combine=combine,
    )
    for path, weight, acc in zip(paths, weights, result["inputs"]):
        shown = f" (weight {weight:g})" if combine is None else ""
        print(f"{path}{shown}: top-1 {100 * acc:.2f}")
    print(f"{method}: top-1 {100 * result['fused']:.2f}")
    if "idt" in result:
        print(f"{f.idt} (iDT): top-1 {100 * result['idt']:.2f}")
        print(
            f"fused+idt (idt weight {f.idt_weight:g}): top-1 "
            f"{100 * result['fused_idt']:.2f}"
        )


if __name__ == "__main__":
    define_flags()
    cli.run(main)
