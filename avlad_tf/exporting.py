"""SavedModel export of a trained workdir, for TF Serving and `avlad_tf.predict`.

  python -m avlad_tf.export --gin_file=toy/late_fuse.gin --workdir=runs/toy

Reads `WORKDIR/<stream>/model.keras` (`fused`, or `rgb` and/or `flow`) and
`WORKDIR/labels.txt`, and writes a SavedModel to `WORKDIR/export` with
evaluation preprocessing (resize, 1 or 5 crops, mean subtraction) in the graph:

* `serving_default`: inputs `rgb` uint8 `[B, T, H, W, 3]` (decoded frames,
  RGB order) and/or `flow` uint8 `[B, T, H, W, 2L]` (quantised flow,
  x1, y1, ..., xL, yL), one per modality of the model. Outputs
  `probabilities` and `logits` `[B, C]`; the L2-normalised ActionVLAD
  vector and the soft assignments `[B, T·crops, h, w, K]` (NetVLAD only) of
  each stream as `descriptor` / `assignments` for one stream, or
  `rgb_descriptor`, `flow_descriptor`, `rgb_assignments`, `flow_assignments`
  for a late-fused two-stream model.
* `serialized_examples`: input `examples`, string `[B]` SequenceExamples in
  the project's schema; samples and decodes frames as evaluation does. Same
  outputs plus `video_id`.
* `class_names`: no input, output `class_names` string `[C]`.

Late fusion of two streams follows the release: (1/3)·RGB + (2/3)·flow on raw
logits (docs/RELEASE.md Sec. 9.2); probabilities are the softmax (sigmoid
for multi-label data) of the fused logits. `assets/labels.txt` holds the class
names and `assets/avlad_export.json` what a client needs to build inputs
(`num_frames`, `flow_stack`, stored frame size, modalities, ...).
"""

import json
import os
import shutil
import tempfile

from absl import app
from absl import logging
import gin
import keras
import tensorflow as tf

from avlad_tf import cli
from avlad_tf import serving
from avlad_tf.data import schema
from avlad_tf.data import video_input
from avlad_tf.layers import pixels
# Importing the models registers every custom layer for `load_model`.
from avlad_tf.models import action_vlad
from avlad_tf.models import fusion as fusion_lib

EXPORT_CONFIG_FILE = "avlad_export.json"
LABELS_FILE = "labels.txt"
EXPORT_FORMAT_VERSION = 1
# A `fused` model (early / concat fusion) takes both modalities itself.
STREAM_DIRS = ("fused", "rgb", "flow")

def find_stream_models(workdir):
    """Returns `{stream: path}` of the trained models in `workdir`.

    A `fused` model wins over per-stream models; otherwise `rgb` and/or `flow`
    (both: late fusion).

    Raises:
        FileNotFoundError: naming the paths looked for.
    """
    paths = {s: os.path.join(workdir, s, "model.keras") for s in STREAM_DIRS}
    if os.path.exists(paths["fused"]):
        return {"fused": paths["fused"]}
    found = {s: p for s, p in paths.items() if s != "fused" and os.path.exists(p)}
    if not found:
        raise FileNotFoundError(
            f"{workdir}: no trained model; expected one of "
            f"{', '.join(paths.values())}. Train first with "
            f"`python -m avlad_tf.train`.")
    return found


def read_class_names(workdir, *, num_classes):
    """Reads `WORKDIR/labels.txt` and checks it against the model."""
    path = os.path.join(workdir, LABELS_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} does not exist: the workdir has no class names.")
    with open(path, encoding="utf-8") as f:
        names = [line.strip() for line in f if line.strip()]
    if len(names) != num_classes:
        raise ValueError(
            f"{path} lists {len(names)} classes but the model has "
            f"{num_classes} logits.")
    return names


def late_fusion_weights():
    """`{"rgb": w, "flow": w}`: `build_model.late_fusion_weights` as bound.

    The default is the models package's, the release's 1 : 2 on raw logits.
    """
    w_rgb, w_flow = gin.get_bindings(action_vlad.build_model).get(
        "late_fusion_weights", fusion_lib.DEFAULT_LATE_WEIGHTS)
    return {"rgb": float(w_rgb), "flow": float(w_flow)}


def _data_metadata(settings):
    """The prepared dataset's metadata when gin points at one, else None."""
    data_dir = settings.get("data_dir")
    if not isinstance(data_dir, str):
        return None
    try:
        return schema.read_metadata(data_dir)  # no shards needed here
    except FileNotFoundError:
        logging.warning("%s has no metadata; assuming frames stored at "
                        "resize_to and single-label data.", data_dir)
        return None


def _model_input_channels(model):
    return {t.name.split(":")[0]: t.shape[-1] for t in model.inputs}


def crops_per_modality(num_crops, modalities):
    """`{modality: 1 or 5}` from an int or a `{modality: n}` mapping."""
    if isinstance(num_crops, int):
        num_crops = {m: num_crops for m in modalities}
    crops = {m: num_crops.get(m) for m in modalities}
    if any(n not in (1, 5) for n in crops.values()):
        raise ValueError("num_crops must be 1 or 5, or a mapping such as "
                         f"{{'rgb': 1, 'flow': 5}}. Received: {num_crops!r}")
    return crops


def build_export_config(*, models, class_names, settings, metadata, num_crops,
                        streams):
    """The JSON-able description stored in `assets/avlad_export.json`."""
    channels, input_rules = {}, {}
    for model in models.values():
        channels.update(_model_input_channels(model))
        rule = pixels.input_rule_of(model)
        input_rules.update({m: rule for m in _model_input_channels(model)})
    modalities = [m for m in ("rgb", "flow") if m in channels]
    image_sizes = {t.shape[2] for m in models.values() for t in m.inputs}
    if image_sizes != {settings.get("image_size")}:
        raise ValueError(
            f"The models take {sorted(image_sizes)}-pixel crops but "
            f"make_dataset.image_size is {settings.get('image_size')}; export "
            f"with the training run's gin files.")
    flow_stack = settings.get("flow_stack", 10)
    if "flow" in channels and channels["flow"] != 2 * flow_stack:
        raise ValueError(
            f"The flow model takes {channels['flow']} channels but gin's "
            f"flow_stack is {flow_stack} (2·flow_stack channels expected).")
    metadata = metadata or {}
    resize_to = tuple(settings.get("resize_to", (256, 340)))
    if "fused" in streams:
        fusion = "fused"
    elif len(streams) == 2:
        fusion = "late"
    else:
        fusion = "single"
    return {
        "format_version": EXPORT_FORMAT_VERSION,
        "streams": list(streams),
        "modalities": modalities,
        "channels": {m: int(channels[m]) for m in modalities},
        # Applied inside the served graph (`layers.pixels.INPUT_RULES`);
        # clients send uint8 frames either way.
        "input_rule": {m: input_rules[m] for m in modalities},
        "fusion": fusion,
        "fusion_weights": late_fusion_weights() if fusion == "late" else None,
        # Separate streams sample independently (evaluate runs them one by
        # one); a fused model reads both from one record, by default with
        # the flow stride for both (`make_dataset.joint_sampling`).
        "joint_sampling": (fusion == "fused"
                           and settings.get("joint_sampling") == "shared"),
        "sampling": settings.get("sampling_mode", "release"),
        "num_frames": int(settings.get("num_frames", 25)),
        "flow_stack": int(flow_stack),
        "num_crops": crops_per_modality(num_crops, modalities),
        "image_size": int(settings["image_size"]),
        "resize_to": list(resize_to),
        # Without metadata, frames are assumed stored at `resize_to`, as
        # data_prep writes them.
        "frame_height": int(metadata.get("frame_height", resize_to[0])),
        "frame_width": int(metadata.get("frame_width", resize_to[1])),
        "flow": schema.flow_settings(),
        "multi_label": bool(metadata.get("multi_label", False)),
        "class_names": list(class_names),
    }


def load_stream_models(paths):
    """Loads each `model.keras` (our own artefacts only, safe_mode on)."""
    return {s: keras.saving.load_model(p, compile=False, safe_mode=True)
            for s, p in paths.items()}


@gin.configurable
def export(*, workdir, export_dir=None, num_crops=1):
    """Writes the SavedModel of a trained workdir.

    Args:
        workdir: the training workdir (`<stream>/model.keras`, `labels.txt`).
        export_dir: where to write; default `WORKDIR/export`. An existing
            export there is replaced only once the new one is complete.
        num_crops: 1 or 5 for every stream, or per modality, e.g.
            `{'rgb': 1, 'flow': 5}` as the release's README numbers were
            computed (Sec. 9.2); 5 crops of every frame are pooled into one
            ActionVLAD bag, not averaged.

    Returns:
        The export directory.
    """
    export_dir = export_dir or os.path.join(workdir, "export")
    paths = find_stream_models(workdir)
    logging.info("Exporting %s", ", ".join(f"{s}: {p}" for s, p in paths.items()))
    models = load_stream_models(paths)
    num_classes = {int(m.outputs[0].shape[-1]) for m in models.values()}
    if len(num_classes) != 1:
        raise ValueError(f"The streams disagree on the number of classes: "
                         f"{sorted(num_classes)}.")
    class_names = read_class_names(workdir, num_classes=num_classes.pop())
    settings = video_input.bound_settings()
    config = build_export_config(
        models=models, class_names=class_names, settings=settings,
        metadata=_data_metadata(settings), num_crops=num_crops,
        streams=list(paths))
    module = serving.ServingModule(
        models=models, config=config, preprocess_kwargs=settings)
    _write_atomically(module, export_dir, config)
    logging.info("Wrote the SavedModel to %s", export_dir)
    return export_dir


def _write_atomically(module, export_dir, config):
    """Saves into a sibling temp dir, then swaps it in (no half exports)."""
    parent = os.path.dirname(os.path.abspath(export_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        assets = os.path.join(tmp, "extra_assets")
        os.makedirs(assets)
        labels_path = os.path.join(assets, LABELS_FILE)
        with open(labels_path, "w", encoding="utf-8") as f:
            f.writelines(name + "\n" for name in config["class_names"])
        config_path = os.path.join(assets, EXPORT_CONFIG_FILE)
        with open(config_path, "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2, sort_keys=True)
        module.attach_assets(labels_path=labels_path, config_path=config_path)
        saved = os.path.join(tmp, "saved_model")
        tf.saved_model.save(module, saved, signatures=module.signatures())
        if os.path.exists(export_dir):
            old = os.path.join(tmp, "previous")
            os.replace(export_dir, old)
        os.replace(saved, export_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    print(export(workdir=cli.parse_flags_into_gin()))


if __name__ == "__main__":
    cli.define_flags()
    app.run(main)
