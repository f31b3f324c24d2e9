r"""See what an ActionVLAD model learned: the paper's Figs. 5-10 as PNG files.

One sub-command per figure, each with its own flags (`--help` on each):

  python -m avlad_tf.visualize action_words --workdir=runs/toy --stream=rgb \
      --data_dir=data/toy --split=test --clusters=0,3,7 --out=words.png
  python -m avlad_tf.visualize assignment_over_time --workdir=runs/toy \
      --data_dir=data/toy --video_id=VIDEO --clusters=0,3 --out=time.png
  python -m avlad_tf.visualize top_words --workdir=runs/toy \
      --data_dir=data/toy --video_id=VIDEO [--class_name=NAME] --out=top.png
  python -m avlad_tf.visualize tsne --model=conv.keras --model=fc.keras \
      --data_dir=data/toy --out=tsne.png              # Fig. 5, by video
  python -m avlad_tf.visualize tsne --workdir=runs/toy --stream=rgb \
      --stream=flow --joint --data_dir=data/toy --out=tsne_streams.png  # Fig. 10
  python -m avlad_tf.visualize confusion_diff --scores_a=rgb.h5 \
      --scores_b=fused.h5 --labels_file=runs/toy/labels.txt --out=diff.png
  python -m avlad_tf.visualize curves --workdir=runs/toy --out=curves.png
  python -m avlad_tf.visualize attention --workdir=runs/videolstm \
      --video_id=VIDEO --out=attention.png      # VideoLSTM models only

Models are `WORKDIR/<stream>/model.keras` (or `--model`). Frames come from
`avlad_tf.data.video_input.make_dataset` in evaluation mode, one centre crop,
with the stream's input settings and dataset as the run recorded them
(`WORKDIR/run.json`); `--data_dir` picks another prepared dataset, and a
`--model` outside a workdir needs it.
"""

import sys

from absl import app
from absl import logging
from absl.flags import argparse_flags

from avlad_tf import cli
from avlad_tf import errors

if __name__ == "__main__":
    cli.start_quietly()  # first: before anything imports TensorFlow

from avlad_tf.visualization import commands
from avlad_tf.visualization import comparisons


def _int_list(text):
    return [int(v) for v in text.split(",") if v.strip()]


def _add_model_flags(parser, *, multi=False):
    parser.add_argument("--workdir", help="training workdir")
    parser.add_argument(
        "--stream",
        action="append" if multi else "store",
        default=None if multi else "rgb",
        help="stream folder in the workdir: rgb, flow or fused",
    )
    parser.add_argument(
        "--model",
        action="append" if multi else "store",
        help="a model.keras file (instead of --workdir/--stream)",
    )
    parser.add_argument("--data_dir", help="prepared dataset (default: the run's)")
    parser.add_argument("--split", default="test")
    parser.add_argument(
        "--num_frames", type=int, help="frames per video (default: the run's)"
    )
    parser.add_argument("--batch_size", type=int, default=2)


def _add_out_flags(parser, width, height):
    parser.add_argument("--out", required=True, help="output PNG path")
    parser.add_argument("--width_px", type=int, default=width)
    parser.add_argument("--height_px", type=int, default=height)


def make_parser():
    """The argparse parser (with absl's flags) of all sub-commands."""
    parser = argparse_flags.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse_flags.argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("action_words", help="Fig. 6: frames per word")
    _add_model_flags(p)
    _add_out_flags(p, 1200, None)
    p.add_argument("--clusters", type=_int_list, help="e.g. 0,3,7")
    p.add_argument("--num_videos", type=int, default=16)
    p.add_argument("--num_examples", type=int, default=6)
    for name, help_text, height in (
        ("assignment_over_time", "Fig. 7: one video", 450),
        ("top_words", "Fig. 8: word contributions", 600),
        ("attention", "VideoLSTM's attention over one video", 300),
    ):
        p = sub.add_parser(name, help=help_text)
        _add_model_flags(p)
        _add_out_flags(p, 1200, height)
        p.add_argument("--video_id", help="default: the split's first video")
        if name == "top_words":
            p.add_argument("--class_name", help="default: predicted class")
            p.add_argument("--top", type=int, default=5)
        else:
            p.add_argument("--max_frames", type=int, default=8)
        if name == "assignment_over_time":
            p.add_argument("--clusters", type=_int_list)
    p = sub.add_parser("tsne", help="Figs. 5 and 10: t-SNE of features")
    _add_model_flags(p, multi=True)
    _add_out_flags(p, 1000, 500)
    p.add_argument("--names", type=lambda s: s.split(","))
    p.add_argument(
        "--joint", action="store_true", help="one embedding coloured by model (Fig. 10)"
    )
    p.add_argument("--num_videos", type=int, default=8)
    p.add_argument("--points_per_video", type=int, default=40)
    p.add_argument("--perplexity", type=float, default=30.0)
    p.add_argument("--num_iters", type=int, default=1000)
    p = sub.add_parser("confusion_diff", help="Fig. 9: confusion B - A")
    _add_out_flags(p, 1000, 700)
    for flag in ("--scores_a", "--scores_b"):
        p.add_argument(flag, required=True, help="evaluate's .h5 score file")
    p.add_argument("--name_a", default="A")
    p.add_argument("--name_b", default="B")
    p.add_argument("--labels_file", help="labels.txt with class names")
    p.add_argument("--data_dir", help="ground truth if files have no labels")
    p.add_argument("--split", default="test")
    p.add_argument("--top", type=int, default=5)
    p = sub.add_parser("curves", help="training curves from TensorBoard")
    _add_out_flags(p, 1000, 700)
    p.add_argument("--workdir", required=True)
    p.add_argument("--tags", type=lambda s: s.split(","))
    return parser


def run(args):
    """Dispatches parsed `args` to the sub-command; returns the PNG path."""
    size = dict(out=args.out, width_px=args.width_px)
    if args.command == "curves":
        return comparisons.curves(
            workdir=args.workdir, tags=args.tags, height_px=args.height_px, **size
        )
    if args.command == "confusion_diff":
        return comparisons.confusion_diff(
            scores_a=args.scores_a,
            scores_b=args.scores_b,
            name_a=args.name_a,
            name_b=args.name_b,
            labels_file=args.labels_file,
            data_dir=args.data_dir,
            split=args.split,
            top=args.top,
            height_px=args.height_px,
            **size,
        )[0]
    data = dict(
        data_dir=args.data_dir,
        split=args.split,
        num_frames=args.num_frames,
        batch_size=args.batch_size,
    )
    if args.command == "tsne":
        paths = args.model or [
            commands.resolve_model_path(args.workdir, stream, None)
            for stream in (args.stream or ["rgb"])
        ]
        return comparisons.tsne(
            model_paths=paths,
            names=args.names,
            joint=args.joint,
            num_videos=args.num_videos,
            points_per_video=args.points_per_video,
            perplexity=args.perplexity,
            num_iters=args.num_iters,
            height_px=args.height_px,
            **size,
            **data,
        )
    model_path = commands.resolve_model_path(args.workdir, args.stream, args.model)
    if args.command == "action_words":
        return commands.action_words(
            model_path=model_path,
            clusters=args.clusters,
            num_videos=args.num_videos,
            num_examples=args.num_examples,
            height_px=args.height_px,
            **size,
            **data,
        )
    if args.command in ("attention", "assignment_over_time"):
        # One video frame by frame; only the assignments take clusters.
        if args.command == "attention":
            command, own = commands.attention, {}
        else:
            command, own = commands.assignment_over_time, {"clusters": args.clusters}
        return command(
            model_path=model_path,
            video_id=args.video_id,
            max_frames=args.max_frames,
            height_px=args.height_px,
            **own,
            **size,
            **data,
        )
    return commands.top_words(
        model_path=model_path,
        video_id=args.video_id,
        class_name=args.class_name,
        top=args.top,
        workdir=args.workdir,
        height_px=args.height_px,
        **size,
        **data,
    )[0]


def main(args):
    path = run(args)
    logging.info("wrote %s", path)
    print(f"wrote {path}", file=sys.stdout)


if __name__ == "__main__":
    app.run(
        errors.one_line_errors(main),
        flags_parser=lambda argv: make_parser().parse_args(argv[1:]),
    )
