"""SavedModel export of a whole-clip model (I3D), and the client's half of
its input rule (library; `python -m avlad_tf.import_i3d` writes one,
`python -m avlad_tf.predict` reads it).

I3D's own preprocessing (DeepMind's `kinetics-i3d`, docs/I3D.md): every
frame of the clip, its shorter side resized to 256 (bilinear, aspect kept),
a centre crop of 224, RGB scaled to [-1, 1]; flow is TV-L1 of consecutive
grey frames (at that size), clipped to ±20 and scaled to [-1, 1]. The model
runs over the whole clip, as DeepMind evaluates. The client resizes
(`resize_short_side`, also the frames flow is computed on) and computes flow
(`prepare_clip`); the served graph crops and scales:

* `serving_default`: `rgb` uint8 `[B, T, H, W, 3]` (RGB order) or `flow`
  uint8 `[B, T, H, W, 2]` (x, y quantised as `schema.quantize_flow`), with
  H, W >= 224; outputs `logits` and `probabilities` `[B, C]`.
* `class_names`: no input, output `class_names` string `[C]`.

The config asset says `"input": "whole_clip"` and `"streaming": false`:
I3D's temporal convolutions and pools read the whole clip at once, so
there is no running state to stream.
"""

import cv2
import numpy as np
import tensorflow as tf

from avlad_tf import serving
from avlad_tf.data import schema
from data_prep import flow as flow_lib
from data_prep import video_io

WHOLE_CLIP = "whole_clip"
SHORT_SIDE = 256
CROP = 224
# DeepMind's flow preprocessing computes OpenCV's CPU TV-L1 with its
# defaults (docs/I3D.md): the `opencv` family.
FLOW_FAMILY = {"preset": "opencv", "parameters": {}, "frame_size": "native"}


def export_config(*, modality, class_names):
    """The client config (`assets/avlad_export.json`) of a whole-clip model."""
    config = {
        "format_version": serving.FORMAT_VERSION,
        "input": WHOLE_CLIP,
        "modalities": [modality],
        "channels": {modality: 3 if modality == "rgb" else 2},
        "short_side": SHORT_SIDE,
        "crop": CROP,
        "streaming": False,
        "multi_label": False,
        "class_names": list(class_names),
    }
    if modality == "flow":
        config["flow"] = dict(schema.flow_settings(), **FLOW_FAMILY)
    return config


class ClipServingModule(tf.Module):
    """The exported graph: centre crop, scaling, the model, softmax."""

    def __init__(self, model, config):
        super().__init__(name="avlad_clip")
        self.model = model
        (self._modality,) = config["modalities"]
        self._channels = config["channels"][self._modality]
        self._crop = config["crop"]
        self.class_names_tensor = tf.constant(config["class_names"])

    def attach_assets(self, *, labels_path, config_path):
        """Ships the class names and the client config as SavedModel assets."""
        self.labels_asset = tf.saved_model.Asset(labels_path)
        self.config_asset = tf.saved_model.Asset(config_path)

    def preprocess(self, video):
        """uint8 `[B, T, H, W, C]` -> float32 `[B, T, 224, 224, C]` in [-1, 1]."""
        shape = tf.shape(video)
        top, left = (shape[2] - self._crop) // 2, (shape[3] - self._crop) // 2
        tf.debugging.assert_greater_equal(
            tf.minimum(shape[2], shape[3]),
            self._crop,
            message=f"frames must be at least {self._crop} pixels high and wide",
        )
        crop = video[:, :, top : top + self._crop, left : left + self._crop]
        x = tf.cast(crop, tf.float32)
        if self._modality == "rgb":
            return x / 127.5 - 1.0
        pixels = x * (2.0 * schema.FLOW_BOUND / 255.0) - schema.FLOW_BOUND
        return pixels / schema.FLOW_BOUND  # ±20 px -> ±1

    def run(self, video):
        logits = self.model(self.preprocess(video), training=False)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

    def signatures(self):
        """`serving_default` and `class_names`."""
        spec = tf.TensorSpec(
            [None, None, None, None, self._channels], tf.uint8, name=self._modality
        )
        self.serve = tf.function(lambda video: self.run(video), input_signature=[spec])
        self.class_names = tf.function(
            lambda: {"class_names": self.class_names_tensor}, input_signature=[]
        )
        return {"serving_default": self.serve, "class_names": self.class_names}


def resize_short_side(frame, size=SHORT_SIDE):
    """`frame` with its shorter side `size`, bilinear, aspect kept."""
    height, width = frame.shape[:2]
    scale = size / min(height, width)
    shape = (max(size, round(width * scale)), max(size, round(height * scale)))
    return cv2.resize(frame, shape, interpolation=cv2.INTER_LINEAR)


def prepare_clip(path, config, pair_flow, *, keep_truncated=False):
    """`{modality: uint8 [1, T, H, W, C]}` of every frame of the video at
    `path` (flow: every consecutive pair), resized as I3D's input rule.

    Raises:
        video_io.SourceError: the file is missing or unreadable.
        ValueError: fewer frames than the model needs.
    """
    frames = [
        resize_short_side(f, config["short_side"])
        for f in video_io.read_video(
            path, height=None, width=None, keep_truncated=keep_truncated
        )
    ]  # BGR
    # Conv3d_1a (stride 2), MaxPool3d_4a and _5a (stride 2) and the 2-step
    # logits pool: at least 9 input steps.
    needed = 9 + (config["modalities"] == ["flow"])
    if len(frames) < needed:
        raise ValueError(
            f"too short: {len(frames)} frame(s) decoded, I3D needs at least {needed}"
        )
    if config["modalities"] == ["rgb"]:
        return {"rgb": np.stack(frames)[None, ..., ::-1].copy()}  # BGR -> RGB
    grey = flow_lib.greys(frames)  # (T, H, W)
    flow = schema.quantize_flow(pair_flow(grey[:-1], grey[1:]))  # (T-1, H, W, 2)
    return {"flow": flow[None]}


def export(model, export_dir, *, modality, class_names):
    """Writes the SavedModel of a whole-clip `model` to `export_dir` (an
    existing export there is replaced only once the new one is complete).

    Raises:
        ValueError: as many class names as logits, or it names both counts.
    """
    # The writer of every export: heavy, so imported when one is written.
    from avlad_tf.serving import saved_model  # pylint: disable=import-outside-toplevel

    if len(class_names) != model.outputs[0].shape[-1]:
        raise ValueError(
            f"{len(class_names)} class names for {model.outputs[0].shape[-1]} logits."
        )
    config = export_config(modality=modality, class_names=class_names)
    saved_model.write_atomically(ClipServingModule(model, config), export_dir, config)
    return export_dir
