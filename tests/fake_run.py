"""Workdirs as `avlad_tf.train` leaves them, for tests of the later programs.

`write_record` writes `WORKDIR/run.json` the way training records a run
(`avlad_tf.run_record`), with `make_dataset`'s defaults updated by the given
input settings; `save_model` writes a tiny untrained `<stream>/model.keras`.
"""

from avlad_tf import run_record
from avlad_tf import storage
from avlad_tf.data import video_input
from avlad_tf.models import action_vlad
from avlad_tf.training import loop

# Tiny frames: 32x40 stored, 4 frames, 24x24 crops for the tiny backbone.
SMALL_INPUT = dict(num_frames=4, flow_stack=2, image_size=24, resize_to=(32, 40))


def write_record(
    workdir,
    *,
    data_dir,
    streams=("rgb", "flow"),
    input_settings=None,
    num_crops=None,
    evaluate_split="test",
    fuse_weights=None,
):
    """Writes and returns the run record of a (pretend) training run.

    Call with gin cleared: the defaults are `make_dataset`'s own.
    """
    settings = run_record.recorded_settings(video_input.make_dataset)
    settings.update(SMALL_INPUT if input_settings is None else input_settings)
    entries = {
        stream: {
            "modalities": list(loop.STREAM_MODALITIES[stream]),
            "train_split": "train",
            "input": settings,
            "num_crops": (num_crops or {}).get(stream, 1),
        }
        for stream in streams
    }
    record = run_record.build(
        data_dir=data_dir,
        info=video_input.dataset_info(data_dir),
        evaluate_split=evaluate_split,
        streams=entries,
        fuse_weights=fuse_weights,
    )
    run_record.write(workdir, record)
    return record


def save_model(workdir, stream, *, num_classes, image_size=24, flow_stack=2):
    """A tiny untrained `rgb` or `flow` model as `<workdir>/<stream>/model.keras`."""
    model = action_vlad.build_model(
        num_classes=num_classes,
        modality=stream,
        backbone="tiny",
        image_size=image_size,
        flow_stack=flow_stack,
        num_clusters=2,
    )
    storage.makedirs(storage.join(workdir, stream))
    model.save(storage.join(workdir, stream, "model.keras"))
    return model
