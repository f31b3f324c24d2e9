"""The backbone weights file a model starts from, and the split it saw.

A network fine-tuned with labels on one split's training videos has seen most
of every other split's test videos: each official HMDB51 split shares 71-77 %
of its test videos with each other split's training set
(docs/RELEASE_MODELS.md, "Initialisation per split"). A 3-split run must
therefore start split k from the file trained on split k:

- `resolve`: `build_model.weights` may hold `{split}`, which is filled from
  the run's training split (`train_split2` -> `2`), so one binding starts
  every split of a 3-split run from its own file;
- `record_training_split` / `training_split`: a weights file written by
  `python -m avlad_tf.import_release --backbone_weights` records the dataset
  and training split it was fine-tuned on, as an HDF5 attribute of the file
  (it travels with the file);
- `check_record`: a run whose weights file was trained on videos of the run's
  test split is refused before any slow work. The overlap is counted over the
  release's split lists (`data_prep/lists/<dataset>/`): a prepared dataset's
  split names are those official splits. A file that records no split
  (ImageNet, keras.applications) is accepted.
"""

import functools
import importlib.resources
import json
import re

import h5py

from avlad_tf import storage

PLACEHOLDER = "{split}"
# The HDF5 attribute holding `{"dataset", "train_split"}` as JSON.
_ATTRIBUTE = "avlad_tf_training_split"
_SPLIT_NUMBER = re.compile(r"split(\d+)$")


def split_number(split):
    """`'2'` for `'train_split2'` or `'test_split2'`; None for a split name
    without a number (`'train'`) or no split."""
    match = _SPLIT_NUMBER.search(split or "")
    return match.group(1) if match else None


def resolve(weights, *, train_split, binding="build_model.weights"):
    """`weights` with `{split}` replaced by `train_split`'s number.

    Args:
        weights: `build_model.weights`: None, `'imagenet'` or a file path.
        train_split: the run's training split (`'train_split2'`), or None.
        binding: the binding named in the error.

    Returns:
        `weights`, its `{split}` filled in (`'x_split{split}.weights.h5'` and
        `'train_split2'` give `'x_split2.weights.h5'`).

    Raises:
        ValueError: `weights` holds `{split}` and `train_split` names no split
            number.
    """
    if not isinstance(weights, str) or PLACEHOLDER not in weights:
        return weights
    number = split_number(train_split)
    if number is None:
        raise ValueError(
            f"{binding} = {weights!r}: {PLACEHOLDER} is filled from the "
            f"number of train_stream.train_split (train_split<k>), but the "
            f"split is {train_split!r}; bind a file path without {PLACEHOLDER}."
        )
    return weights.replace(PLACEHOLDER, number)


def record_training_split(path, *, dataset, train_split):
    """Records in the local weights file `path` that it was fine-tuned on
    `train_split` (`'train_split2'`) of `dataset` (`'hmdb51'`)."""
    with h5py.File(path, "a") as f:
        f.attrs[_ATTRIBUTE] = json.dumps(
            {"dataset": dataset, "train_split": train_split}
        )


def training_split(weights):
    """`{"dataset", "train_split"}` that the weights file records, or None
    (no record, `'imagenet'`, None, or no HDF5 file there)."""
    if not isinstance(weights, str) or not storage.isfile(weights):
        return None
    with storage.local_input(weights) as local:  # h5py reads local files only
        if not h5py.is_hdf5(local):
            return None
        with h5py.File(local, "r") as f:
            value = f.attrs.get(_ATTRIBUTE)
    return None if value is None else json.loads(value)


@functools.cache
def split_videos(dataset, split):
    """The video ids in the release's list of `split` of `dataset`
    (`data_prep/lists/<dataset>/<split>.txt`), or None where it has none."""
    if not dataset or not split:
        return None
    lists = importlib.resources.files("data_prep").joinpath("lists", dataset)
    path = lists.joinpath(f"{split}.txt")
    if not path.is_file():
        return None
    with path.open(encoding="utf-8") as f:
        return frozenset(line.split()[0] for line in f if line.strip())


def check_test_overlap(weights, *, dataset, test_split, binding):
    """Raises ValueError if the weights file was trained on videos of
    `test_split` of `dataset` (a file path already resolved).

    Nothing is refused where the overlap cannot be counted: a file with no
    recorded split, another dataset, or a split the release lists lack.
    """
    trained = training_split(weights)
    if trained is None or trained["dataset"] != dataset:
        return
    seen = split_videos(dataset, trained["train_split"])
    tested = split_videos(dataset, test_split)
    if seen is None or tested is None or not seen & tested:
        return
    raise ValueError(
        f"{binding} = {weights!r} was fine-tuned on {dataset} "
        f"{trained['train_split']}, which holds {len(seen & tested)} of the "
        f"{len(tested)} videos of the run's test split {test_split}, so its "
        f"test results would be inflated; bind the file trained on the run's "
        f"own split, e.g. a path with {PLACEHOLDER} "
        f"('flow_vgg16_split{PLACEHOLDER}.weights.h5'), filled from "
        f"train_stream.train_split."
    )


def check_record(record, info):
    """Raises ValueError if a stream of the run starts from weights trained
    on videos of the run's test split.

    The test split is `train.evaluate_split`, else the one numbered as the
    training split (`test_split2` for `train_split2`), which an evaluation
    of the run would read.

    Args:
        record: the run's record (`run_record.build`).
        info: the dataset's checked metadata (its `dataset` name).
    """
    for stream, entry in record["streams"].items():
        binding = f"{stream}/build_model.weights"
        train_split = entry["train_split"]
        weights = resolve(
            entry["training"]["build_model"]["weights"],
            train_split=train_split,
            binding=binding,
        )
        test_split = record["data"]["evaluate_split"]
        if test_split is None and split_number(train_split) is not None:
            test_split = f"test_split{split_number(train_split)}"
        check_test_overlap(
            weights,
            dataset=info.get("dataset"),
            test_split=test_split,
            binding=binding,
        )
