"""Running top-5 of a video of any length at bounded memory (library of
`python -m avlad_tf.predict --streaming`).

The video is decoded one frame at a time. Every `stride`-th frame j is a
sample: its RGB frame and its flow stack j -> j + L (the default stride is
the stack length L, so the stacks tile the video and every frame pair's
flow is computed once). `chunk_frames` samples at a time go through the
SavedModel's `streaming_feed` (`avlad_tf.serving.streaming`), which adds them to
the pooling state; every `report_every` seconds of video, `streaming_finish`
on the current state gives the running top-5. Held at any time: the frames
of one chunk (chunk_frames x stride + L + 1) and the state, whatever the
video's length.
"""

import time

import numpy as np
import tensorflow as tf

from avlad_tf.serving import prediction
from data_prep import video_io


class Streamer:
    """One export's streaming signatures and flow function.

    Raises:
        ValueError: the export has no streaming signatures (a fused model, or
            an aggregator without a streaming state).
    """

    def __init__(self, export_dir, *, flow_backend="keras"):
        self.config = prediction.read_config(export_dir)
        if not self.config.get("streaming"):
            raise ValueError(
                f"{export_dir} has no streaming signatures (its config says "
                "streaming: false; fused models, aggregators without a "
                "running state and whole-clip models such as I3D, whose "
                "temporal convolutions read the whole clip at once, do not "
                "stream); predict without --streaming."
            )
        signatures = tf.saved_model.load(export_dir).signatures
        self.start = signatures["streaming_start"]
        self.feed = signatures["streaming_feed"]
        self.finish = signatures["streaming_finish"]
        self.pair_flow = prediction.flow_function(self.config, backend=flow_backend)
        modalities = self.config["modalities"]
        self.stack = self.config["flow_stack"] if "flow" in modalities else 0

    def _feed(self, state, samples, window, chunk_frames):
        """Adds `samples` (frame indices; `window` holds their frames) to
        `state` as one chunk of `chunk_frames`, padded and masked."""
        inputs, mask = self._chunk_inputs(samples, window, chunk_frames)
        return self.feed(**state, **inputs, mask=mask)

    def _chunk_inputs(self, samples, window, chunk_frames):
        """`streaming_feed`'s frames, flow stacks and mask for `samples`."""
        inputs = {}
        size = self.config["frame_height"], self.config["frame_width"]
        if "rgb" in self.config["modalities"]:
            rgb = np.stack([prediction.stored(window[j], size) for j in samples])
            inputs["rgb"] = rgb[..., ::-1]  # BGR -> RGB
        if self.stack:
            base = samples[0]
            frames = [window[k] for k in range(base, samples[-1] + self.stack + 1)]
            stacks = np.asarray(samples)[:, None] + np.arange(self.stack) - base
            inputs["flow"] = prediction.stacked_flow(
                frames, stacks, self.pair_flow, size=size
            )
        real = len(samples)
        mask = np.zeros((1, chunk_frames), np.float32)
        mask[0, :real] = 1.0
        padded = {}
        for name, array in inputs.items():
            block = np.zeros((chunk_frames,) + array.shape[1:], np.uint8)
            block[:real] = array
            padded[name] = tf.constant(block[None])
        return padded, tf.constant(mask)

    def top5(self, state):
        probabilities = self.finish(**state)["probabilities"].numpy()[0]
        return prediction.top_k(probabilities, self.config["class_names"])

    def run(self, path, **kwargs):
        """Streams one video (`_stream`'s keywords); returns predict's result
        dict plus `reports` (`[{"second", "top5"}]`) and `samples`. A URL is
        read from a local copy (`video_io.local_copy`).

        Raises:
            video_io.SourceError: the file cannot be opened, or it is
                truncated (after its last report) and not `keep_truncated`.
            prediction.VideoError: too few frames for one sample.
        """
        with video_io.local_copy(path) as local:
            return dict(self._stream(local, **kwargs), video=path)

    def _stream(
        self,
        path,
        *,
        stride=None,
        chunk_frames=16,
        report_every=10.0,
        on_report=None,
        keep_truncated=False,
    ):
        """`run` of the local file `path`."""
        stride = stride or max(self.stack, 1)
        height, width = prediction.decode_size(self.config)
        fps, frames = video_io.stream_video(
            path, height=height, width=width, keep_truncated=keep_truncated
        )
        report_frames = max(1, round(report_every * (fps or 25.0)))
        state = self.start(batch_size=tf.constant(1))
        window, samples, reports = {}, [], []
        fed, count, reported_at, started = 0, 0, 0, time.perf_counter()

        def flush():
            """Feeds the pending samples; drops frames no later sample reads."""
            nonlocal state, window, samples, fed
            state = self._feed(state, samples, window, chunk_frames)
            fed += len(samples)
            window = {k: v for k, v in window.items() if k >= samples[-1] + stride}
            samples = []

        for index, frame in enumerate(frames):
            count = index + 1
            window[index] = frame
            sample = index - self.stack  # its flow stack ends at this frame
            if sample >= 0 and sample % stride == 0:
                samples.append(sample)
            if len(samples) == chunk_frames:
                flush()
            if count % report_frames == 0:
                if samples:
                    flush()
                if fed:
                    reports.append(self._report(state, count, fps, on_report))
                    reported_at = count
        if samples:
            flush()
        if not fed:
            raise prediction.VideoError(
                f"too short: {count} frame(s) decoded, but one sample with its "
                f"{self.stack}-frame flow stack needs {self.stack + 1}"
            )
        # A video whose length is a multiple of the interval was reported
        # at its last frame already: that report is the final one.
        if reported_at == count:
            final = reports.pop()
        else:
            final = self._report(state, count, fps, on_report)
        return {
            "video": path,
            "top5": final["top5"],
            "frames": count,
            "samples": fed,
            "reports": reports + [final],
            "seconds": {"total": time.perf_counter() - started},
        }

    def _report(self, state, frames, fps, on_report):
        report = {"second": frames / (fps or 25.0), "top5": self.top5(state)}
        if on_report:
            on_report(report)
        return report
