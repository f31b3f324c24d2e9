"""Which source reads each `--dataset` of `data_prep.prepare`, and how.

`items` turns the dataset flags' values into `(labels, {split: [Item]})`
through `data_prep.sources` (UCF101, HMDB51, Charades, class folders) or
`data_prep.kinetics`; docs/DATA_PREP.md describes each layout.
"""

import os

from avlad_tf import storage
from data_prep import kinetics
from data_prep import sources

DATASETS = ("ucf101", "hmdb51", "charades", "folders", *kinetics.NUM_CLASSES)


def items(
    dataset,
    *,
    input_dir,
    list_dir="",
    split_names=None,
    flow_dir="",
    charades_csv="",
    test_fraction=0.3,
):
    """`(labels, {split: [records.Item]})` of `dataset` (one of `DATASETS`).

    Args:
        dataset: the layout.
        input_dir: the videos or the release's frame folders.
        list_dir: the split lists or CSVs ('': the shipped lists, where the
            dataset has them; Kinetics needs it).
        split_names: the splits to write (None: the dataset's default).
        flow_dir: the release's flow folders when not beside the frames.
        charades_csv: the Charades test CSV ('': in `list_dir`).
        test_fraction: `folders`: the last fraction of each class is test.

    Raises:
        ValueError: splits or lists that do not fit `dataset`.
    """
    if dataset == "folders":
        split_names = tuple(split_names or ("train", "test"))
        if len(split_names) != 2:
            raise ValueError("--dataset=folders takes two --splits names")
        return sources.class_folder_items(
            input_dir, test_fraction=test_fraction, split_names=split_names
        )
    if dataset in kinetics.NUM_CLASSES:
        if not list_dir:
            raise ValueError(
                f"--dataset={dataset} needs --list_dir, the folder of the "
                "release's CSVs (train.csv, validate.csv, ...)"
            )
        return kinetics.kinetics_items(
            dataset,
            list_dir=list_dir,
            root=input_dir,
            split_names=split_names or kinetics.DEFAULT_SPLITS,
        )
    split_names = split_names or ["train_split1", "test_split1"]
    list_dir = list_dir or os.path.join(sources.LISTS_DIR, dataset)
    common = dict(
        list_dir=list_dir, root=input_dir, split_names=split_names, flow_root=flow_dir
    )
    if dataset == "charades":
        return sources.charades_items(csv_path=charades_csv, **common)
    if dataset == "ucf101" and storage.isfile(storage.join(list_dir, "classInd.txt")):
        return sources.ucf101_official_items(**common)
    if dataset == "hmdb51" and any(
        "_test_split" in f for f in storage.listdir(list_dir)
    ):
        return sources.hmdb51_official_items(**common)
    return sources.release_list_items(dataset, **common)
