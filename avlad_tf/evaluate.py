"""Evaluates a trained stream on a split and writes its scores in the release's layout.

  python -m avlad_tf.evaluate --gin_file=base.gin --workdir=runs/hmdb51_rgb_s1 \
      --gin_bindings="evaluate.split='test_split1'" \
      [--gin_bindings="evaluate.num_crops=5"] [--gin_bindings="evaluate.stream='flow'"]

Loads `<workdir>/<stream>/model.keras`, runs the deterministic evaluation
pipeline (`make_dataset(training=False, with_ids=True)`: 25 uniformly spaced
frames, the release's 1 centre crop or 5 crops pooled into one bag) and writes
`<workdir>/scores/<stream>_<split>_<n>crop.h5` with

- `stream0/logits` float32 `[N, C]`: raw logits, rows in record order, which
  is the split list's order (data prep writes shards in list order), the
  layout of the release's `final_logits/*.h5`, so `avlad_tf.fuse` fuses ours
  with theirs;
- `video_ids` `[N]` and `labels` (int `[N]`, or multi-hot `[N, C]` for
  multi-label data such as Charades).

It prints top-1, top-5 and mean per-class accuracy, and for multi-label data
mAP and wAP (docs/RELEASE.md §9). Without an `evaluate.stream` binding
the entry point evaluates every stream that has a `model.keras` in the
workdir.
"""

import os
import time

from absl import app
from absl import logging
import gin
import h5py
import keras
import numpy as np

from avlad_tf import cli
from avlad_tf import metrics
from avlad_tf.data import video_input
from avlad_tf.models import action_vlad  # also registers the custom layers

STREAMS = ('rgb', 'flow', 'fused')


def scores_path(workdir, stream, split, num_crops):
    """Where `evaluate` writes a stream's scores (docs/CONTRACTS.md, Workdir)."""
    return os.path.join(workdir, 'scores',
                        f'{stream}_{split}_{num_crops}crop.h5')


def load_stream_model(workdir, stream):
    """Loads `<workdir>/<stream>/model.keras` (only our own artifacts)."""
    path = os.path.join(workdir, stream, 'model.keras')
    if not os.path.exists(path):
        found = [s for s in STREAMS
                 if os.path.exists(os.path.join(workdir, s, 'model.keras'))]
        raise FileNotFoundError(
            f'{path} does not exist (streams with a model in {workdir}: '
            f'{found or "none"}); train first with python -m avlad_tf.train.')
    return keras.saving.load_model(path)


def predict_split(model, dataset, *, log_every=50):
    """Runs `model` over an evaluation dataset.

    Args:
      model: a keras model whose inputs are named after the feature keys.
      dataset: yields `(features, labels)` with `features['video_id']`.
      log_every: log progress every this many batches.

    Returns:
      `(logits [N, C], video_ids [N] list of str, labels [N, C])` as NumPy.
    """
    input_names = [t.name.split(':')[0] for t in model.inputs]
    logits, ids, labels = [], [], []
    start = time.time()
    for step, (features, batch_labels) in enumerate(dataset, 1):
        inputs = {name: features[name] for name in input_names}
        logits.append(np.asarray(model.predict_on_batch(inputs)))
        ids.extend(v.decode() for v in features['video_id'].numpy())
        labels.append(batch_labels.numpy())
        if step % log_every == 0:
            logging.info('evaluated %d videos (%.1f videos/s)', len(ids),
                         len(ids) / (time.time() - start))
    if not ids:
        raise ValueError('the evaluation dataset is empty.')
    return np.concatenate(logits), ids, np.concatenate(labels)


def _label_array(labels):
    """Int class indices for single-label data, the multi-hot matrix otherwise.

    A dataset is treated as multi-label when some video does not have exactly
    one label (Charades: several actions, or none).
    """
    per_video = labels.sum(axis=1)
    if np.all(per_video == 1):
        return np.argmax(labels, axis=1).astype(np.int64)
    return (labels > 0).astype(np.int8)


def write_scores(path, logits, video_ids, labels):
    """Writes the score file (gzip level 9, as the release's feature store)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + '.tmp'
    with h5py.File(tmp, 'w') as f:
        f.create_dataset('stream0/logits', data=logits.astype(np.float32),
                         compression='gzip', compression_opts=9)
        f.create_dataset('video_ids', data=np.asarray(video_ids, dtype='S'))
        f.create_dataset('labels', data=labels)
    os.replace(tmp, path)


@gin.configurable(denylist=['workdir'])
def evaluate(*, workdir, stream, split, num_crops=1, batch_size=1,
             normalize_on_device=False,
             make_dataset_fn=video_input.make_dataset):
    """Scores one stream of a trained workdir on a split.

    Args:
      workdir: the training workdir (docs/CONTRACTS.md, Workdir).
      stream: 'rgb', 'flow' or 'fused' (the sub-directory holding model.keras).
      split: split name, e.g. 'test_split1' ('test' for the toy dataset).
      num_crops: 1 (the release's centre crop at (16, 60)) or 5 (pooled into
        one bag, not averaged).
      batch_size: videos per batch (the release evaluated with 1).
      normalize_on_device: the pipeline ships uint8 crops and the model does
        the pixel arithmetic first (`layers.ReleasePixels`): the same logits
        for a quarter of the host-to-device bytes and less host work (5-crop
        batches are otherwise host-bound; README, Performance). Needs frames
        stored at `make_dataset.resize_to`.
      make_dataset_fn: the dataset factory (tests inject their own).

    Returns:
      A dict of metrics as fractions in [0, 1] (`top1`, `top5`,
      `mean_class_accuracy`, or `top1`, `mAP`, `wAP` for multi-label data) plus
      `num_videos` and `scores_path`.
    """
    model = load_stream_model(workdir, stream)
    modalities = tuple(t.name.split(':')[0] for t in model.inputs)
    pixel_dtype = 'float32'
    if normalize_on_device:
        pixel_dtype = 'uint8'
        settings = video_input.bound_settings()
        model = action_vlad.with_uint8_pixels(
            model, bgr_means=settings['bgr_means'],
            convert_before_resize=settings['convert_before_resize'])
    dataset = make_dataset_fn(split=split, training=False, modalities=modalities,
                              batch_size=batch_size, num_crops=num_crops,
                              with_ids=True, pixel_dtype=pixel_dtype)
    logging.info('evaluating %s/%s on %s with %d crop(s)', workdir, stream,
                 split, num_crops)
    logits, video_ids, one_hot = predict_split(model, dataset)
    if len(set(video_ids)) != len(video_ids):
        raise ValueError(f'{split}: the evaluation pipeline yielded repeated '
                         'videos; it must not repeat or shuffle.')
    labels = _label_array(one_hot)
    path = scores_path(workdir, stream, split, num_crops)
    write_scores(path, logits, video_ids, labels)
    result = metrics.classification_report(logits, labels)
    result.update(stream=stream, split=split, num_crops=num_crops,
                  num_videos=len(video_ids), scores_path=path)
    logging.info('%s', format_result(result))
    return result


def format_result(result):
    """One human-readable line per evaluation, metrics in percent."""
    names = ('top1', 'top5', 'mean_class_accuracy', 'mAP', 'wAP')
    values = ', '.join(f'{n} {100 * result[n]:.2f}' for n in names if n in result)
    return (f'{result["stream"]} {result["split"]} {result["num_crops"]} '
            f'crop(s), {result["num_videos"]} videos: {values} -> '
            f'{result["scores_path"]}')




def _bound_or_none(name):
    try:
        return gin.query_parameter(name)
    except ValueError:
        return None


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f'unexpected arguments: {argv[1:]}')
    workdir = cli.parse_flags_into_gin()
    if _bound_or_none('evaluate.split') is None:
        raise app.UsageError(
            "bind the split to evaluate, e.g. --gin_bindings=\"evaluate.split="
            "'test_split1'\".")
    stream = _bound_or_none('evaluate.stream')
    streams = [stream] if stream else [
        s for s in STREAMS
        if os.path.exists(os.path.join(workdir, s, 'model.keras'))]
    if not streams:
        raise app.UsageError(f'no <stream>/model.keras in {workdir}.')
    for s in streams:
        print(format_result(evaluate(workdir=workdir, stream=s)))


if __name__ == '__main__':
    cli.define_flags()
    app.run(main)
