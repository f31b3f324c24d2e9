"""Reading videos and frame folders into resized frames, and JPEG coding.

Every source frame is decoded exactly once, in order (no seeking, which is
unreliable in many codecs). Problems with a source raise `SourceError`, whose
message is the reason written into the preparation report. A path may be a
URL (`avlad_tf.storage`): OpenCV opens only local files, so a video at a URL
is copied to a local temporary file (`local_copy`), removed after use.
"""

import contextlib
import os

import cv2
import numpy as np

from avlad_tf import storage

# The release's frame names (docs/RELEASE.md Sec. 1.1), 1-indexed.
RGB_PATTERN = "image_{:05d}.jpg"
FLOW_X_PATTERN = "flow_x_{:05d}.jpg"
FLOW_Y_PATTERN = "flow_y_{:05d}.jpg"
FIRST_INDEX = 1


class SourceError(Exception):
    """A video or frame folder that cannot be used; the message says why."""


class TruncatedVideo(SourceError):
    """A video that decodes to fewer frames than its container promises.

    Attributes:
        frames: the frames that did decode.
        promised, decoded: the frame counts.
    """

    def __init__(self, frames, promised, decoded=None):
        self.frames, self.promised = frames, promised
        self.decoded = len(frames) if decoded is None else decoded
        super().__init__(
            f"truncated: the container promises {promised} frames but only "
            f"{self.decoded} decode (--keep_truncated keeps them)"
        )


def check_complete(decoded, promised, frames=()):
    """Raises TruncatedVideo when `decoded` falls short of the container's
    `promised` frame count. Containers may miscount by one; a larger
    shortfall is a damaged file."""
    if promised > decoded + 1:
        raise TruncatedVideo(list(frames), promised, decoded)


def resize(image, *, height, width):
    """Resizes to height x width whatever the aspect ratio (as the release);
    a height of None keeps the image's own size."""
    if height is None or image.shape[:2] == (height, width):
        return image
    shrinking = image.shape[0] * image.shape[1] > height * width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


@contextlib.contextmanager
def local_copy(path):
    """Yields a local file with the video at `path`: `path` itself when
    local, else a temporary copy, removed when the block ends.

    Raises:
        SourceError: `path` is a folder, missing or empty.
    """
    if storage.isdir(path):
        raise SourceError("a directory, not a video file")
    try:
        size = storage.stat(path).size
    except FileNotFoundError:
        raise SourceError("missing: no such file") from None
    if size == 0:
        raise SourceError("empty: the file has 0 bytes")
    with storage.local_input(path) as local:
        yield local


def _open(local):
    """An opened `cv2.VideoCapture` of a local file, or SourceError."""
    capture = cv2.VideoCapture(local)
    if not capture.isOpened():
        raise SourceError("unreadable: OpenCV cannot open the video")
    return capture


def stream_video(path, *, height, width, keep_truncated=False):
    """`(fps, frames)`: the container's frame rate (0 if unknown) and an
    iterator over the decoded frames, resized as `read_video` resizes them,
    one at a time (for videos too long to hold).

    Raises:
        SourceError: as `read_video`, when the file cannot be opened.
        TruncatedVideo: from the iterator, after its last frame, as
            `read_video` (unless `keep_truncated`).
    """
    # A URL's local copy lives as long as the iterator: until its last
    # frame, or until it is closed or dropped.
    staged = contextlib.ExitStack()
    try:
        capture = _open(staged.enter_context(local_copy(path)))
    except BaseException:
        staged.close()
        raise
    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    promised = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)

    def frames():
        decoded = 0
        try:
            while True:
                ok, frame = capture.read()
                if not ok or frame is None:
                    break
                decoded += 1
                yield resize(frame, height=height, width=width)
        finally:
            capture.release()
            staged.close()
        if not keep_truncated:
            check_complete(decoded, promised)

    return fps, frames()


def read_video(path, *, height, width, start=0, count=0, keep_truncated=False):
    """Decodes frames [start, start + count) of a video file (count 0: all).

    Returns:
        A list of uint8 BGR frames of shape (height, width, 3), or of the
        video's own size when height and width are None.

    Raises:
        SourceError: if the file is missing, empty or cannot be opened.
        TruncatedVideo: reading the whole video, if fewer frames decode
            than the container promises (its `frames` are those that did),
            unless `keep_truncated`, which returns those frames.
    """
    frames = []
    index = 0
    with local_copy(path) as local:
        capture = _open(local)
        promised = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        try:
            while count <= 0 or index < start + count:
                ok, frame = capture.read()
                if not ok or frame is None:
                    break
                if index >= start:
                    frames.append(resize(frame, height=height, width=width))
                index += 1
        finally:
            capture.release()
    if index == 0:
        raise SourceError("unreadable: no frame could be decoded")
    if count <= 0 and not keep_truncated:
        check_complete(index, promised, frames)
    return frames


def count_frames(path):
    """Decodes a whole video once and returns its number of frames.

    Raises:
        SourceError: as `read_video`, when the file is missing or empty.
    """
    with local_copy(path) as local:
        capture = cv2.VideoCapture(local)
        n = 0
        while capture.isOpened() and capture.grab():
            n += 1
        capture.release()
    return n


def encode_jpeg(image, *, quality):
    """Encodes a BGR or greyscale uint8 image as JPEG bytes."""
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise SourceError(f"cannot encode a JPEG of shape {image.shape}")
    return buffer.tobytes()


def decode_jpeg(data, *, grey, what):
    """Decodes JPEG bytes; raises `SourceError` naming `what` if it fails."""
    flags = cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR
    image = None
    if data:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None:
        raise SourceError(f"corrupt JPEG: {what} cannot be decoded")
    return image


def list_frame_folder(directory):
    """Returns the number n of consecutive `image_%05d.jpg` files (1..n)."""
    if not storage.isdir(directory):
        raise SourceError("missing: no such frame folder")
    names = set(storage.listdir(directory))
    n = 0
    while RGB_PATTERN.format(FIRST_INDEX + n) in names:
        n += 1
    if n == 0:
        raise SourceError(f"empty: no {RGB_PATTERN.format(FIRST_INDEX)} in the folder")
    return n


def read_file(path, *, what):
    """Reads a file's bytes; raises `SourceError` if it is missing/empty."""
    if not storage.isfile(path):
        raise SourceError(f"missing: {what} {os.path.basename(path)}")
    data = storage.read_bytes(path)
    if not data:
        raise SourceError(f"empty: {what} {os.path.basename(path)}")
    return data
