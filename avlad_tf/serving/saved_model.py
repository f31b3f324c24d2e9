"""SavedModel export of a trained workdir, for TF Serving and `avlad_tf.predict` (library).

The program is `python -m avlad_tf.export --workdir=runs/toy`. `export`
reads `WORKDIR/<stream>/model.keras` (`fused`, or `rgb` and/or `flow`) and
the run's record (`WORKDIR/run.json`: labels, input settings, crops per
stream, fusion weights), and writes a SavedModel to `WORKDIR/export` with
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

Late fusion of two streams uses the run's weights (`train.fuse_weights`; the
release's 1 : 2 on raw logits, docs/RELEASE.md Sec. 9.2); probabilities are the softmax (sigmoid
for multi-label data) of the fused logits. `assets/labels.txt` holds the class
names and `assets/avlad_export.json` what a client needs to build inputs
(`num_frames`, `flow_stack`, stored frame size, modalities, ...).
"""

import json
import os
import tempfile

from absl import logging
import keras
import tensorflow as tf

from avlad_tf import run_record
from avlad_tf import serving
from avlad_tf import settings
from avlad_tf import storage
from avlad_tf.data import schema
from avlad_tf.layers import pixels

# Importing the models' factory registers every custom layer for
# `load_model` (inspection alone no longer imports the stream model).
from avlad_tf.models import action_vlad  # noqa: F401
from avlad_tf.models import inspection
from avlad_tf.serving import graph

LABELS_FILE = "labels.txt"
# A `fused` model (early / concat fusion) takes both modalities itself.
STREAM_DIRS = ("fused", "rgb", "flow")


def find_stream_models(workdir):
    """Returns `{stream: path}` of the trained models in `workdir`.

    A `fused` model wins over per-stream models; otherwise `rgb` and/or `flow`
    (both: late fusion).

    Raises:
        FileNotFoundError: naming the paths looked for.
    """
    paths = {s: storage.join(workdir, s, "model.keras") for s in STREAM_DIRS}
    if storage.exists(paths["fused"]):
        return {"fused": paths["fused"]}
    found = {s: p for s, p in paths.items() if s != "fused" and storage.exists(p)}
    if not found:
        raise FileNotFoundError(
            f"{workdir}: no trained model; expected one of "
            f"{', '.join(paths.values())}. Train first with "
            f"`python -m avlad_tf.train`."
        )
    return found


# Input settings that only shape training batches; the served graph
# evaluates.
_TRAINING_ONLY = ("scale_ratios", "shuffle_buffer", "cycle_length")


def _input_settings(record, streams):
    """The one input setting of the exported graph: every stream's must agree
    (apart from crops, which the graph applies per modality, and settings
    that only shape training batches). `train` checks this before training
    when it is to export."""
    inputs = {s: run_record.stream(record, s)["input"] for s in streams}
    first, *others = streams
    for other in others:
        differing = sorted(
            k
            for k in inputs[first]
            if k not in _TRAINING_ONLY and inputs[first][k] != inputs[other].get(k)
        )
        if differing:
            raise ValueError(
                f"streams {first} and {other} were trained with different "
                f"input settings ({', '.join(differing)}); one SavedModel "
                f"graph preprocesses both the same way."
            )
    return inputs[first]


def check_exportable(record):
    """Raises the ValueError `export` would, from the record alone."""
    streams = list(record["streams"])
    if "fused" not in streams:
        _input_settings(record, streams)


def crops_per_modality(num_crops, modalities):
    """`{modality: 1 or 5}` from an int or a `{modality: n}` mapping."""
    if isinstance(num_crops, int):
        num_crops = {m: num_crops for m in modalities}
    crops = {m: num_crops.get(m) for m in modalities}
    if any(n not in (1, 5) for n in crops.values()):
        raise ValueError(
            "num_crops must be 1 or 5, or a mapping such as "
            f"{{'rgb': 1, 'flow': 5}}. Received: {num_crops!r}"
        )
    return crops


def _recorded_crops(record, streams):
    """`{modality: crops}` as the run evaluated each stream."""
    crops = {}
    for stream in streams:
        entry = run_record.stream(record, stream)
        crops.update({m: entry["num_crops"] for m in entry["modalities"]})
    return crops


def build_export_config(*, models, record, num_crops, streams):
    """The JSON-able description stored in `assets/avlad_export.json`."""
    channels, input_rules = {}, {}
    for model in models.values():
        names = inspection.input_names(model)
        channels.update({n: t.shape[-1] for n, t in zip(names, model.inputs)})
        input_rules.update({n: pixels.input_rule_of(model) for n in names})
    modalities = [m for m in ("rgb", "flow") if m in channels]
    inputs = _input_settings(record, streams)
    data = record["data"]
    if "fused" in streams:
        fusion = "fused"
    elif len(streams) == 2:
        fusion = "late"
    else:
        fusion = "single"
    weights = None
    if fusion == "late":
        weights = (record.get("fusion") or {}).get("weights")
        if not weights:
            raise ValueError(
                f"the run trained {streams} but records no fusion weights "
                f"(train.fuse_weights); export one stream, or retrain."
            )
        total = sum(weights[s] for s in streams)
        weights = {s: weights[s] / total for s in streams}
    resize_to = tuple(inputs["resize_to"])
    crops = crops_per_modality(num_crops, modalities)
    for model in models.values():
        for name in inspection.input_names(model):
            inspection.check_crops(model, crops[name])
    return {
        "format_version": serving.FORMAT_VERSION,
        "streams": list(streams),
        "modalities": modalities,
        "channels": {m: int(channels[m]) for m in modalities},
        # Applied inside the served graph (`layers.pixels.INPUT_RULES`);
        # clients send uint8 frames either way.
        "input_rule": {m: input_rules[m] for m in modalities},
        "fusion": fusion,
        "fusion_weights": weights,
        # Separate streams sample independently (evaluate runs them one by
        # one); a fused model reads both from one record, by default with
        # the flow stride for both (`make_dataset.joint_sampling`).
        "joint_sampling": (
            inputs["joint_sampling"] if fusion == "fused" else "independent"
        ),
        "sampling": inputs["sampling_mode"],
        # Runs from before clip sampling record neither (sampling.py).
        "clip_stride": int(inputs.get("clip_stride", 1)),
        "num_clips": int(inputs.get("num_clips", 1)),
        "num_frames": int(inputs["num_frames"]),
        "flow_stack": int(inputs["flow_stack"]),
        "num_crops": crops,
        "image_size": int(inputs["image_size"]),
        "resize_to": list(resize_to),
        # Without a frame size in the dataset's metadata, frames are assumed
        # stored at `resize_to`, as data_prep writes them.
        "frame_height": int(data.get("frame_height") or resize_to[0]),
        "frame_width": int(data.get("frame_width") or resize_to[1]),
        # The flow convention and the family the model learnt from, which
        # predict and the `frames` signature compute (docs/FLOW.md).
        "flow": dict(
            schema.flow_settings(), **schema.flow_family(data.get("flow", {}))
        ),
        "multi_label": bool(data["multi_label"]),
        "class_names": list(data["labels"]),
    }


def load_stream_models(paths):
    return {
        s: keras.saving.load_model(p, compile=False, safe_mode=True)
        for s, p in paths.items()
    }


@settings.configurable(evaluation=("export_dir", "num_crops"), call=("workdir",))
def export(*, workdir, export_dir=None, num_crops=None):
    """Writes the SavedModel of a trained workdir.

    Args:
        workdir: the training workdir (`<stream>/model.keras`, `run.json`).
        export_dir: where to write; default `WORKDIR/export`. An existing
            export there is replaced only once the new one is complete.
        num_crops: None: each stream's crops as the run evaluated them (the
            release: RGB 1, flow 5, Sec. 9.2); or 1 or 5 for every stream,
            or per modality, e.g. `{'rgb': 1, 'flow': 5}`. Crops of every
            frame are pooled into one ActionVLAD bag, not averaged.

    Returns:
        The export directory.
    """
    paths = find_stream_models(workdir)
    record = run_record.read(workdir)
    export_dir = export_dir or storage.join(workdir, "export")
    logging.info("Exporting %s", ", ".join(f"{s}: {p}" for s, p in paths.items()))
    models = load_stream_models(paths)
    num_classes = {int(m.outputs[0].shape[-1]) for m in models.values()}
    if num_classes != {len(record["data"]["labels"])}:
        raise ValueError(
            f"{run_record.path(workdir)} lists {len(record['data']['labels'])} "
            f"classes but the models have {sorted(num_classes)} logits."
        )
    config = build_export_config(
        models=models,
        record=record,
        streams=list(paths),
        num_crops=num_crops or _recorded_crops(record, list(paths)),
    )
    module = graph.ServingModule(
        models=models,
        config=config,
        preprocess_kwargs=_input_settings(record, list(paths)),
    )
    # Clients read which signatures exist from the config asset.
    config["streaming"] = module.can_stream
    write_atomically(module, export_dir, config)
    logging.info("Wrote the SavedModel to %s", export_dir)
    return export_dir


def write_atomically(module, export_dir, config):
    """Saves into a sibling temporary directory, then swaps it in
    (`storage.replacing_directory`: no half exports)."""
    storage.make_parent(export_dir)
    # The assets are local scratch files: the SavedModel copies them in.
    with tempfile.TemporaryDirectory(prefix="avlad_tf-export-") as assets:
        labels_path = os.path.join(assets, LABELS_FILE)
        with open(labels_path, "w", encoding="utf-8") as f:
            f.writelines(name + "\n" for name in config["class_names"])
        config_path = os.path.join(assets, serving.CONFIG_FILE)
        with open(config_path, "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2, sort_keys=True)
        module.attach_assets(labels_path=labels_path, config_path=config_path)
        with storage.replacing_directory(export_dir) as saved:
            # tf.saved_model writes URLs itself.
            tf.saved_model.save(module, saved, signatures=module.signatures())
