"""Real video files and frame folders for the data_prep tests."""

import os

import cv2
import numpy as np

from data_prep import sources
from data_prep import writer


def frame(index, *, height=48, width=64):
    """A textured frame whose content shifts by 2 px per index and whose
    top-left corner encodes `index` as brightness (to check clip cutting)."""
    rng = np.random.default_rng(7)
    texture = cv2.GaussianBlur(
        rng.uniform(0, 255, (height, width + 64)).astype(np.float32), (0, 0), 2.0
    )
    grey = texture[:, 2 * index : 2 * index + width]
    image = np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)
    image[:8, :8] = (10 * index) % 250
    return image


def write_video(path, num_frames, *, height=48, width=64, first=0):
    """Writes frames first..first+num_frames-1 (MJPG .avi, mp4v .mp4)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    codec = "mp4v" if path.endswith(".mp4") else "MJPG"
    out = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*codec), 25, (width, height))
    assert out.isOpened(), path
    for i in range(first, first + num_frames):
        out.write(frame(i, height=height, width=width))
    out.release()
    return path


def write_corrupt(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"RIFF\x00\x01garbage, not a video" * 20)
    return path


def write_frame_folder(directory, num_frames, *, height=48, width=64):
    """The release layout: image_%05d.jpg and flow_{x,y}_%05d.jpg, 1-based."""
    os.makedirs(directory, exist_ok=True)
    for i in range(1, num_frames + 1):
        cv2.imwrite(
            os.path.join(directory, f"image_{i:05d}.jpg"),
            frame(i - 1, height=height, width=width),
        )
        if i < num_frames:
            for axis, value in (("x", 100 + i), ("y", 150 - i)):
                cv2.imwrite(
                    os.path.join(directory, f"flow_{axis}_{i:05d}.jpg"),
                    np.full((height, width), value, np.uint8),
                )
    return directory


def mean_brightness_of_corner(image):
    return float(image[1:7, 1:7].mean())


def prepare_folders(videos, output_dir, executor, *, options, records_per_shard):
    """Prepares the class folders under `videos` (half of each class for test)
    into `output_dir` with `executor`, as `prepare --dataset=folders` does;
    returns the write summary."""
    labels, splits = sources.class_folder_items(videos, test_fraction=0.5)
    summary = writer.write_dataset(
        output_dir=output_dir,
        splits=splits,
        options=options,
        records_per_shard=records_per_shard,
        executor=executor,
    )
    writer.finish(
        output_dir=output_dir,
        summary=summary,
        dataset="folders",
        labels=labels,
        multi_label=False,
        options=options,
    )
    return summary
