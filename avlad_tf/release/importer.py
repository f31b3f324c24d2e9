"""Loads the release's TF-slim checkpoints into avlad_tf Keras models.

docs/RELEASE.md Sec. 6: VGG-16 convs `vgg_16/convX/convX_Y` go to
`blockX_convY` (both HWIO), `NetVLAD/{centers, vlad_W, vlad_B}` to the
`netvlad` layer's `centers`, `assignment_kernel` (`[1, 1, D, K]` -> `[D, K]`)
and `assignment_bias`, `classifier/logits` to the `logits` Dense layer
(`[K·D, C]`, the same cluster-major order as our NetVLAD output), and fc6-fc8
to layers of those names when the model has them. Names with and without the
leading `stream<i>/` scope are both accepted.

Example:
    model = models.build_model(num_classes=51, modality="rgb")
    report = importer.import_checkpoint(model, "hmdb51/rgb/split1.ckpt")
    print(report.summary())
"""

import dataclasses

import keras
import numpy as np

from avlad_tf.release import checkpoint_reader
from avlad_tf.release import names


@dataclasses.dataclass
class ImportReport:
    """What an import did.

    Attributes:
        checkpoint: the checkpoint prefix that was read.
        assigned: model weight path -> checkpoint variable name.
        unused: checkpoint variables that no model weight took (other
            streams, fc8 of a model without it, fusion heads, ...).
        skipped: bookkeeping variables ignored on purpose (optimizer slots,
            `global_step`, `beta1_power` / `beta2_power`).
        unset: model weight paths that the checkpoint did not provide; they
            keep their initial values.
    """

    checkpoint: str
    assigned: dict = dataclasses.field(default_factory=dict)
    unused: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)
    unset: list = dataclasses.field(default_factory=list)

    def summary(self):
        """A multi-line, human-readable account of the import."""
        lines = [
            f"{self.checkpoint}: {len(self.assigned)} weights imported, "
            f"{len(self.unused)} checkpoint variables unused, "
            f"{len(self.skipped)} skipped as optimizer bookkeeping, "
            f"{len(self.unset)} model weights left unset."
        ]
        for title, items in (
            ("unused checkpoint variable", self.unused),
            ("unset model weight", self.unset),
        ):
            lines.extend(f"  {title}: {item}" for item in items)
        if self.skipped:
            lines.append(f"  skipped bookkeeping: {', '.join(self.skipped)}")
        return "\n".join(lines)


def _sublayers(layer):
    """All layers nested in `layer` (depth first), excluding itself."""
    for child in getattr(layer, "layers", ()):
        yield child
        yield from _sublayers(child)


def find_layers(model, scope=None):
    """Maps layer name -> layer for every layer in `model` (or in `scope`).

    Args:
        model: a Keras model; nested models are searched too.
        scope: name of a nested model to restrict the search to, e.g.
            `rgb_stream` in a late-fusion model.

    Raises:
        ValueError: if `scope` is not found, or if a layer name occurs twice
            (a two-stream model without a `scope`).
    """
    root = model
    if scope is not None:
        matches = [l for l in _sublayers(model) if l.name == scope]
        if len(matches) != 1:
            nested = sorted(l.name for l in _sublayers(model) if hasattr(l, "layers"))
            raise ValueError(
                f"scope {scope!r} must name exactly one nested model of "
                f"{model.name!r}; found {len(matches)}. Nested models: "
                f"{nested}."
            )
        root = matches[0]
    layers = {}
    for layer in _sublayers(root):
        if layer.name in layers and layer is not layers[layer.name]:
            raise ValueError(
                f"Layer name {layer.name!r} occurs more than once in "
                f"{root.name!r} (a two-stream model?); pass the nested "
                f"stream model to import into as `scope`."
            )
        layers[layer.name] = layer
    return layers


def _find_weight(layer, weight_name):
    for variable in layer.weights:
        if variable.name == weight_name:
            return variable
    return None


def _fitted_shape(target, ckpt_shape, model_shape):
    """How the checkpoint value must be reshaped, or None if it cannot be."""
    if tuple(ckpt_shape) == tuple(model_shape):
        return tuple(model_shape)
    if (
        target.flatten
        and len(ckpt_shape) == 4
        and len(model_shape) == 2
        and int(np.prod(ckpt_shape[:-1])) == model_shape[0]
        and ckpt_shape[-1] == model_shape[1]
    ):
        return tuple(model_shape)  # [h, w, C, F] -> [h·w·C, F], row-major
    return None


def _mismatch_message(name, ckpt_shape, variable):
    message = (
        f"  {name}: checkpoint shape {list(ckpt_shape)}, model weight "
        f"{variable.path} shape {list(variable.shape)}"
    )
    if name.endswith("conv1/conv1_1/weights") and len(ckpt_shape) == 4:
        message += (
            f" (input channels {ckpt_shape[2]} vs "
            f"{variable.shape[2]}: RGB has 3, flow 2·flow_stack = 20; "
            f"check the modality)"
        )
    elif name.endswith("NetVLAD/centers"):
        message += " (check num_clusters)"
    elif name.endswith("logits/weights"):
        message += " (check num_classes and num_clusters)"
    return message


def _plan(reader, layers, stream, report):
    """Pairs checkpoint variables with model weights; nothing is assigned."""
    plan, claimed, mismatches = [], {}, []
    for name, ckpt_shape in sorted(reader.get_variable_to_shape_map().items()):
        if names.is_bookkeeping(name):
            report.skipped.append(name)
            continue
        index, relative = names.split_stream(name)
        target = names.target_for(relative)
        layer = layers.get(target.layer) if target else None
        variable = _find_weight(layer, target.weight) if layer else None
        if index not in (None, stream) or variable is None:
            report.unused.append(name)
            continue
        if id(variable) in claimed:
            raise ValueError(
                f"{report.checkpoint}: both {claimed[id(variable)]!r} and "
                f"{name!r} map to {variable.path}; the checkpoint mixes the "
                f"names with and without `stream{stream}/`."
            )
        claimed[id(variable)] = name
        shape = _fitted_shape(target, ckpt_shape, variable.shape)
        if shape is None:
            mismatches.append(_mismatch_message(name, ckpt_shape, variable))
        plan.append((name, variable, shape))
    if mismatches:
        raise ValueError(
            f"{report.checkpoint}: shape mismatch between checkpoint and "
            f"model; nothing was imported.\n" + "\n".join(mismatches)
        )
    return plan


def import_checkpoint(
    model, checkpoint, *, stream=0, scope=None, require_complete=False
):
    """Copies a release checkpoint's weights into `model`.

    All shapes are checked before anything is assigned, so a failed import
    leaves the model untouched.

    Args:
        model: an avlad_tf model (layer names per docs/CONTRACTS.md).
        checkpoint: a V1 `.ckpt` file, a V2 prefix or a checkpoint directory.
        stream: which `stream<i>/` scope to read; names without a stream
            scope are always candidates.
        scope: name of the nested model to fill (e.g. `rgb_stream` of a
            late-fusion model); default: the whole model.
        require_complete: raise if any model weight is left unset.

    Returns:
        An `ImportReport`.

    Raises:
        FileNotFoundError / ValueError: unreadable checkpoint (see
            `checkpoint_reader.open_checkpoint`), a shape mismatch (naming the
            variable and both shapes), ambiguous names, or, with
            `require_complete`, unset weights.
    """
    reader, prefix = checkpoint_reader.open_checkpoint(checkpoint)
    report = ImportReport(checkpoint=prefix)
    layers = find_layers(model, scope)
    plan = _plan(reader, layers, stream, report)
    for name, variable, shape in plan:
        value = np.reshape(reader.get_tensor(name), shape)
        variable.assign(value.astype(keras.backend.standardize_dtype(variable.dtype)))
        report.assigned[variable.path] = name
    assigned = {id(variable) for _, variable, _ in plan}
    seen = set()
    for variable in model.weights:
        if id(variable) not in assigned and id(variable) not in seen:
            report.unset.append(variable.path)
        seen.add(id(variable))
    if require_complete and report.unset:
        raise ValueError(
            f"{prefix}: the checkpoint does not provide "
            f"{len(report.unset)} model weights: {report.unset}"
        )
    return report
