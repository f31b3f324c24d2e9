"""TensorBoard output of training: scalars, cluster usage, assignment maps, gin.

Everything is written with `tf.summary` into `<workdir>/tensorboard/<stream>`;
the step axis is the stream's update count over both stages (stage 2 starts
where stage 1 ended), so the two stages read as one curve.
"""

import numpy as np
import tensorflow as tf

from avlad_tf import storage

# Distinct colours for cluster ids in assignment images (cycled for K > 20).
_PALETTE = np.array(
    [
        [230, 25, 75],
        [60, 180, 75],
        [255, 225, 25],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
        [210, 245, 60],
        [250, 190, 212],
        [0, 128, 128],
        [220, 190, 255],
        [170, 110, 40],
        [255, 250, 200],
        [128, 0, 0],
        [170, 255, 195],
        [128, 128, 0],
        [255, 215, 180],
        [0, 0, 128],
        [128, 128, 128],
    ],
    dtype=np.uint8,
)


def write_scalars(writer, step, scalars):
    """Writes a dict of scalars under `train/<name>`."""
    with writer.as_default(step=step):
        for name, value in scalars.items():
            tf.summary.scalar(f"train/{name}", float(value))


def cluster_usage(assignments):
    """How many descriptors pick each cluster as their arg-max, `[K]` int64.

    Args:
        assignments: `[B, T', H, W, K]` soft assignments.
    """
    assignments = np.asarray(assignments)
    num_clusters = assignments.shape[-1]
    winners = np.argmax(assignments, axis=-1).reshape(-1)  # (B·T'·H·W,)
    return np.bincount(winners, minlength=num_clusters)


def assignment_map_images(assignments, *, max_frames=4, scale=8):
    """Colour-coded arg-max assignment maps of the first video's frames.

    Args:
        assignments: `[B, T', H, W, K]`.
        max_frames: frames of the first video to show.
        scale: nearest-neighbour upscaling (conv5 maps are 14x14 or smaller).

    Returns:
        uint8 `[N, H*scale, W*scale, 3]`.
    """
    winners = np.argmax(np.asarray(assignments)[0, :max_frames], axis=-1)
    images = _PALETTE[winners % len(_PALETTE)]  # (N, H, W, 3)
    return np.repeat(np.repeat(images, scale, axis=1), scale, axis=2)


def write_assignments(writer, step, assignments):
    """Cluster-usage histogram and assignment-map images of one batch."""
    usage = cluster_usage(assignments)
    num_clusters = len(usage)
    with writer.as_default(step=step):
        # A histogram over cluster ids, one bucket per cluster: a dead or
        # dominant "action word" shows as an empty or towering bucket.
        ids = np.repeat(np.arange(num_clusters), usage).astype(np.float32)
        tf.summary.histogram("clusters/usage", ids, buckets=num_clusters)
        tf.summary.scalar("clusters/num_used", float(np.sum(usage > 0)))
        tf.summary.image(
            "clusters/assignment_maps",
            assignment_map_images(assignments),
            max_outputs=4,
        )


def write_gin_config(writer, config_text):
    """The operative gin config as a text summary (Markdown code block)."""
    with writer.as_default(step=0):
        tf.summary.text("gin/operative_config", "```\n" + config_text + "\n```")


def drop_events_after(logdir, step):
    """Rewrites `logdir`'s event files without events after `step`.

    A resumed run repeats the updates after its last checkpoint; their
    events from the interrupted run would otherwise show as duplicated steps
    in TensorBoard. Events without a step (file headers) are kept.
    """
    # pylint: disable=import-outside-toplevel
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer import event_file_writer

    paths = storage.glob(storage.join(logdir, "events.out.tfevents.*"))
    events = []
    for path in paths:
        kept = [
            e
            for e in tf.compat.v1.train.summary_iterator(path)
            if e.step <= step or e.HasField("file_version")
        ]
        if len(kept) != sum(1 for _ in tf.compat.v1.train.summary_iterator(path)):
            events.append((path, kept))
    for path, kept in events:
        writer = event_file_writer.EventFileWriter(logdir)
        for event in kept:
            if not event.HasField("file_version"):  # the writer adds its own
                writer.add_event(event_pb2.Event.FromString(event.SerializeToString()))
        writer.close()
        storage.remove(path)
