r"""Prepares a video dataset as sharded TFRecords (see docs/DATA_PREP.md).

Examples:

    # UCF101 videos (UCF-101/<Class>/v_*.avi), the release's split-1 lists:
    python -m data_prep.prepare --dataset=ucf101 --input_dir=UCF-101 \
        --output_dir=data/ucf101 --workers=16
    # HMDB51 from the authors' frame and flow JPEG folders (no flow recomputed):
    python -m data_prep.prepare --dataset=hmdb51 --input_dir=hmdb51/frames \
        --flow_dir=hmdb51/flow --output_dir=data/hmdb51 --splits=train_split1,test_split1
    # Any folder-per-class tree of videos:
    python -m data_prep.prepare --dataset=folders --input_dir=my_videos \
        --output_dir=data/mine --test_fraction=0.3
    # Kinetics-400 clips (<class>/<id>_<start>_<end>.mp4) and the release's CSVs:
    python -m data_prep.prepare --dataset=kinetics400 --input_dir=k400/videos \
        --list_dir=k400/annotations --output_dir=data/k400 --allow_missing
    # The same preparation as an Apache Beam pipeline (pip install -e '.[beam]');
    # flags this program does not define are Beam's pipeline options:
    python -m data_prep.prepare --dataset=ucf101 --input_dir=UCF-101 \
        --output_dir=data/ucf101 --runner=DirectRunner \
        --direct_num_workers=2 --direct_running_mode=multi_processing

Every path may be a URL (gs://...; docs/DATA_PREP.md, On Dataflow). Exits
non-zero when videos were left out (report.json says which and why) unless
--allow_missing; a re-run resumes, skipping finished shards.
"""

import logging
import os
import re
import sys

from absl import app
from absl import flags

from avlad_tf import cli
from avlad_tf import storage

if __name__ == "__main__":
    cli.start_quietly()  # first: before anything imports TensorFlow

from avlad_tf.flow import parameters as flow_parameters
from data_prep import datasets
from data_prep import flow as flow_lib
from data_prep import local_pool
from data_prep import records
from data_prep import writer

_DATASET = flags.DEFINE_enum(
    "dataset",
    None,
    list(datasets.DATASETS),
    "Dataset layout: the three paper datasets, Kinetics-400/600 (the "
    "release's CSVs in --list_dir, clips under --input_dir), or `folders` "
    "(<input_dir>/<class>/<video or frame folder>).",
)
_INPUT_DIR = flags.DEFINE_string(
    "input_dir", None, "Root of the videos or the release's frame folders; a URL too."
)
_FLOW_DIR = flags.DEFINE_string(
    "flow_dir",
    "",
    "Root of the release's flow_{x,y}_%05d.jpg folders when "
    "they are not beside the frames.",
)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Dataset to write; a URL too.")
_LIST_DIR = flags.DEFINE_string(
    "list_dir",
    "",
    "Split lists: the release's {train,test}_splitN.txt "
    "(default: data_prep/lists/<dataset>), or the dataset's own: UCF101 "
    "classInd.txt + trainlist0N/testlist0N.txt, HMDB51 "
    "<class>_test_splitN.txt; Kinetics: the release's CSVs (required).",
)
_SPLITS = flags.DEFINE_list(
    "splits",
    None,
    "Splits to write (default train_split1,test_split1; "
    "`train,test` for --dataset=folders; `train,val` for Kinetics).",
)
_CHARADES_CSV = flags.DEFINE_string(
    "charades_csv", "", "Charades test CSV (default: <list_dir>/Charades_v1_test.csv)."
)
_TEST_FRACTION = flags.DEFINE_float(
    "test_fraction",
    0.3,
    "--dataset=folders: the last fraction of each "
    "class (sorted by name) is the test split.",
)
_SHUFFLE_SEED = flags.DEFINE_integer(
    "shuffle_seed",
    0,
    "Training splits (names starting with `train`) are "
    "written in an order shuffled with this seed, so that training batches "
    "mix classes (docs/DATA.md, Record order); -1 keeps list order.",
)
_WORKERS = flags.DEFINE_integer(
    "workers", os.cpu_count() or 1, "Processes over videos."
)
_RUNNER = flags.DEFINE_string(
    "runner",
    "",
    "Run as an Apache Beam pipeline on this runner (DirectRunner, "
    "DataflowRunner, FlinkRunner, SparkRunner, PortableRunner; docs/DATA_PREP.md, "
    "On Apache Beam); flags this program does not define are passed to Beam "
    "unchanged. Empty: a process pool of --workers on this machine.",
)
_RECORDS_PER_SHARD = flags.DEFINE_integer("records_per_shard", 32, "Videos per shard.")
_FRAME_SIZE = flags.DEFINE_list(
    "frame_size",
    ["256", "340"],
    "Stored frame height,width (the release resizes every frame to 256,340).",
)
_JPEG_QUALITY = flags.DEFINE_integer("jpeg_quality", 95, "Quality of re-encoded JPEGs.")
_MIN_FRAMES = flags.DEFINE_integer(
    "min_frames",
    11,
    "Shorter videos are left out (11 = one 10-frame flow stack); at least 2.",
)
_FLOW_BACKEND = flags.DEFINE_enum(
    "flow_backend",
    "keras",
    ["keras", "opencv"],
    "What computes TV-L1 flow: avlad_tf.flow (keras.ops, XLA on a CPU, JAX on "
    "a GPU), or OpenCV on the CPU, which computes only --flow_preset=opencv "
    "(docs/FLOW.md). Both compute one flow family per preset, so a rerun may "
    "switch.",
)
_FLOW_PRESET = flags.DEFINE_enum(
    "flow_preset",
    flow_parameters.DEFAULT_PRESET,
    list(flow_parameters.PRESETS),
    "TV-L1 family (docs/FLOW.md): release = OpenCV 2.4's GPU flow, which made "
    "the release's flow images; opencv = OpenCV >= 3 contrib's CPU defaults; "
    "opencv_cuda = OpenCV >= 3's CUDA flow. The last two lose fast motion.",
)
_FLOW_FRAME_SIZE = flags.DEFINE_enum(
    "flow_frame_size",
    None,
    list(records.FLOW_FRAME_SIZES),
    "Frames a video's flow is computed on: stored (resized to --frame_size "
    "first, as TSN's script made HMDB51's) or native (the video's own, as "
    "dense_flow made UCF101's), then stored at --frame_size with unchanged "
    "values. Default: the release's for --dataset (native for ucf101, else "
    "stored; docs/DATA_PREP.md).",
)
_ALLOW_MISSING = flags.DEFINE_boolean(
    "allow_missing", False, "Exit 0 even when videos were left out."
)
_KEEP_TRUNCATED = flags.DEFINE_boolean(
    "keep_truncated",
    False,
    "Keep the frames that decode from a video whose "
    "container promises more (noted in report.json); otherwise such a video "
    "is left out.",
)


# A split name becomes a file name part (`<split>-00000-of-00004.tfrecord`).
_SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _check_split_names(names):
    """Refuses a split name that could leave --output_dir (`../x`, `a/b`)."""
    for name in names:
        if not _SPLIT_NAME.fullmatch(name) or ".." in name:
            raise app.UsageError(
                f"--splits name {name!r}: use letters, digits, '_', '-' and "
                "'.' only (it names the split's shard files in --output_dir)"
            )


def _items():
    _check_split_names(_SPLITS.value or ())
    return datasets.items(
        _DATASET.value,
        input_dir=_INPUT_DIR.value,
        list_dir=_LIST_DIR.value,
        split_names=_SPLITS.value,
        flow_dir=_FLOW_DIR.value,
        charades_csv=_CHARADES_CSV.value,
        test_fraction=_TEST_FRACTION.value,
    )


def _check_found(splits):
    """Fails early when no listed video exists: a wrong --input_dir."""
    items = [item for split in splits.values() for item in split]
    if items and not any(storage.exists(item.path) for item in items):
        raise app.UsageError(
            f"none of the {len(items)} listed videos exists under "
            f"--input_dir={_INPUT_DIR.value} (first: {items[0].path})"
        )


def _executor(argv):
    """The local process pool, or a Beam pipeline given the other flags."""
    if not _RUNNER.value:
        if argv[1:]:
            raise app.UsageError(
                f"unknown flag(s) {' '.join(argv[1:])} (Beam's pipeline options "
                f"need --runner)"
            )
        return local_pool.LocalPool(_WORKERS.value)
    try:
        # Beam warns on the root logger, at import, of optional cloud
        # clients that are not installed: not the user's concern here.
        with cli.root_log_level(logging.ERROR):
            from data_prep import beam_writer  # pylint: disable=import-outside-toplevel
    except ImportError as e:
        raise app.UsageError(
            f"--runner needs Apache Beam: pip install -e '.[beam]' ({e})"
        ) from e
    try:
        return beam_writer.BeamPipeline([f"--runner={_RUNNER.value}", *argv[1:]])
    except ValueError as e:
        raise app.UsageError(str(e)) from e


def main(argv):
    height, width = (int(v) for v in _FRAME_SIZE.value)
    if _MIN_FRAMES.value < 2:
        raise app.UsageError(
            "--min_frames must be at least 2 (flow needs a pair of frames)"
        )
    try:
        flow_lib.check_backend(_FLOW_BACKEND.value, _FLOW_PRESET.value)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    executor = _executor(argv)
    labels, splits = _items()
    _check_found(splits)
    options = records.Options(
        height=height,
        width=width,
        jpeg_quality=_JPEG_QUALITY.value,
        min_frames=_MIN_FRAMES.value,
        keep_truncated=_KEEP_TRUNCATED.value,
        flow_preset=_FLOW_PRESET.value,
        flow_backend=_FLOW_BACKEND.value,
        flow_frame_size=_FLOW_FRAME_SIZE.value
        or records.release_flow_frame_size(_DATASET.value),
    )
    # With the resolved input list (`resume.describe_inputs`), what decides
    # the output; a rerun that differs is refused.
    fingerprint = {
        "dataset": _DATASET.value,
        "input_dir": storage.absolute(_INPUT_DIR.value),
        "flow_dir": _FLOW_DIR.value,
        "list_dir": _LIST_DIR.value,
        "charades_csv": _CHARADES_CSV.value,
        "test_fraction": _TEST_FRACTION.value,
        "splits": sorted(splits),
    }
    summary = writer.write_dataset(
        output_dir=_OUTPUT_DIR.value,
        splits=splits,
        options=options,
        executor=executor,
        records_per_shard=_RECORDS_PER_SHARD.value,
        fingerprint=fingerprint,
        shuffle_seed=None if _SHUFFLE_SEED.value < 0 else _SHUFFLE_SEED.value,
    )
    writer.finish(
        output_dir=_OUTPUT_DIR.value,
        summary=summary,
        dataset=_DATASET.value,
        labels=labels,
        multi_label=_DATASET.value == "charades",
        options=options,
    )
    total = sum(s["num_records"] for s in summary.splits.values())
    left_out = len(summary.left_out)
    report = storage.join(_OUTPUT_DIR.value, writer.REPORT_FILE)
    print(
        f"{total} records in {_OUTPUT_DIR.value} "
        + ", ".join(f"{k}: {v['num_records']}" for k, v in summary.splits.items())
        + f"; {left_out} videos left out (reasons in {report}).",
        file=sys.stderr,
    )
    for entry in summary.left_out[:10]:
        print(
            f"  left out {entry['split']} {entry['video_id']}: {entry['reason']}",
            file=sys.stderr,
        )
    for entry in summary.notes[:10]:
        print(
            f"  kept {entry['split']} {entry['video_id']}: {entry['note']}",
            file=sys.stderr,
        )
    for split, names in writer.empty_classes(summary, labels).items():
        print(
            f"Warning: {split} has no video of {len(names)} class(es): "
            f"{', '.join(names[:10])}{' ...' if len(names) > 10 else ''} "
            f"(report.json, empty_classes).",
            file=sys.stderr,
        )
    if left_out and not _ALLOW_MISSING.value:
        print(
            f"Exiting with status 1: {left_out} videos were left out; pass "
            f"--allow_missing to accept that.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    flags.mark_flags_as_required(["dataset", "input_dir", "output_dir"])
    cli.run(main, pass_unknown=True)
