"""A prepared dataset is also a TensorFlow Datasets dataset.

`write` puts TFDS's metadata beside the shards: `dataset_info.json` (every
split with its shards' exact record counts and sizes, a name pattern that
matches `shards.shard_name`, a description and citation), `features.json` and
the class names. `tfds.builder_from_directory(data_dir)` then loads the
directory, and TFDS's tools work on it (docs/DATA_PREP.md, "As a TFDS
dataset"). The shards are read as they are: nothing is renamed or rewritten.

What TFDS sees of a record: TFDS parses every record as a `tf.train.Example`.
A `tf.train.SequenceExample` keeps its context where an Example keeps its
features (the same field number and message type), and the parser skips the
feature lists, so TFDS reads each record's context (id, labels, length,
source, first frame) and never its frames or flow. Those are read by the
project's reader (`avlad_tf.data`), or by `schema.parse_sequence_example` on
the files of `builder.info.splits[split].filepaths`.
"""

import os
import tempfile

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_metadata.proto.v0 import statistics_pb2

from avlad_tf import storage
from avlad_tf.data import schema

# `shards.shard_name` in TFDS's pattern language: `<split>-<i>-of-<n>.tfrecord`.
FILEPATH_TEMPLATE = "{SPLIT}-{SHARD_X_OF_Y}.{FILEFORMAT}"
FILE_FORMAT = "tfrecord"
# The TFDS version follows the record layout: a new schema is a new version.
VERSION = f"{schema.SCHEMA_VERSION}.0.0"
HOMEPAGE = "https://github.com/rohitgirdhar/ActionVLAD"

ACTIONVLAD_CITATION = """@inproceedings{girdhar2017actionvlad,
  title = {{ActionVLAD}: Learning Spatio-Temporal Aggregation for Action Classification},
  author = {Girdhar, Rohit and Ramanan, Deva and Gupta, Abhinav and Sivic, Josef and Russell, Bryan},
  booktitle = {CVPR},
  year = {2017}
}"""
DATASET_CITATIONS = {
    "ucf101": """@article{soomro2012ucf101,
  title = {{UCF101}: A Dataset of 101 Human Actions Classes From Videos in The Wild},
  author = {Soomro, Khurram and Zamir, Amir Roshan and Shah, Mubarak},
  journal = {arXiv preprint arXiv:1212.0402},
  year = {2012}
}""",
    "hmdb51": """@inproceedings{kuehne2011hmdb,
  title = {{HMDB}: A Large Video Database for Human Motion Recognition},
  author = {Kuehne, Hildegard and Jhuang, Hueihan and Garrote, Est{\\'i}baliz and Poggio, Tomaso and Serre, Thomas},
  booktitle = {ICCV},
  year = {2011}
}""",
    "charades": """@inproceedings{sigurdsson2016hollywood,
  title = {Hollywood in Homes: Crowdsourcing Data Collection for Activity Understanding},
  author = {Sigurdsson, Gunnar A. and Varol, G{\\"u}l and Wang, Xiaolong and Farhadi, Ali and Laptev, Ivan and Gupta, Abhinav},
  booktitle = {ECCV},
  year = {2016}
}""",
}


def features(labels):
    """The records' context as TFDS features, nested at the '/' of the schema's
    keys, so TFDS's flat names (`tfds.as_dataframe` columns) are those keys."""
    flat = {
        schema.VIDEO_ID_KEY: tfds.features.Text(doc="the video id"),
        schema.LABEL_INDEX_KEY: tfds.features.Sequence(
            tfds.features.ClassLabel(names=list(labels)),
            doc="the video's labels: one, several (Charades test) or none",
        ),
        schema.LENGTH_KEY: tfds.features.Scalar(
            np.int64, doc="the number of RGB frames stored in the record"
        ),
        schema.SOURCE_KEY: tfds.features.Text(doc="where the frames came from"),
        schema.START_FRAME_KEY: tfds.features.Scalar(
            np.int64, doc="the first stored frame's index in the source video"
        ),
    }
    nested = {}
    for key, feature in flat.items():
        *parents, name = key.split("/")
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        node[name] = feature
    return tfds.features.FeaturesDict(nested)


def split_infos(data_dir, dataset, splits, label_counts, labels, *, tfds_dir):
    """TFDS's `SplitInfo` of every split of `dataset` in the metadata manifest
    `splits` (`writer.Summary.splits`), with its class counts as statistics.
    Shard sizes are read in `data_dir`; TFDS's objects point at the local
    `tfds_dir` (`write`).

    Raises:
        ValueError: if a shard's name is not the one TFDS derives from the
            pattern (a naming the template cannot express).
    """
    infos = []
    for split, entry in splits.items():
        template = tfds.core.ShardedFileTemplate(
            data_dir=tfds_dir,
            template=FILEPATH_TEMPLATE,
            dataset_name=dataset,
            split=split,
            filetype_suffix=FILE_FORMAT,
        )
        files = [shard["file"] for shard in entry["shards"]]
        expected = template.sharded_filenames(len(files)) if files else []
        if files != expected:
            raise ValueError(
                f"{data_dir}: split {split!r} has shards {files[:2]}..., but "
                f"TFDS's pattern {FILEPATH_TEMPLATE} names them {expected[:2]}...."
            )
        infos.append(
            tfds.core.SplitInfo(
                name=split,
                shard_lengths=[shard["num_records"] for shard in entry["shards"]],
                num_bytes=sum(storage.size(storage.join(data_dir, f)) for f in files),
                filename_template=template,
                statistics=_statistics(
                    entry["num_records"], label_counts.get(split, {}), labels
                ),
            )
        )
    return infos


def _statistics(num_records, label_counts, labels):
    """The split's size and class counts, in the statistics TFDS keeps per
    split (TFDV's format): the counts data_prep already has, without reading
    the records again."""
    stats = statistics_pb2.DatasetFeatureStatistics(num_examples=num_records)
    feature = stats.features.add(type=statistics_pb2.FeatureNameStatistics.INT)
    feature.path.step.extend(schema.LABEL_INDEX_KEY.split("/"))
    counted = sorted(
        ((count, index) for index, count in label_counts.items() if count),
        key=lambda pair: (-pair[0], pair[1]),
    )
    string_stats = feature.string_stats
    string_stats.unique = len(counted)
    for rank, (count, index) in enumerate(counted):
        string_stats.top_values.add(value=labels[int(index)], frequency=count)
        string_stats.rank_histogram.buckets.add(
            low_rank=rank, high_rank=rank, label=labels[int(index)], sample_count=count
        )
    return stats


def description(dataset, labels, multi_label):
    """What TFDS shows as the dataset's description."""
    return (
        f"{dataset} as prepared by avlad_tf's data_prep: one "
        f"tf.train.SequenceExample per video, {len(labels)} classes"
        + (", a video may carry several labels" if multi_label else "")
        + ". TFDS reads each record's context (id, labels, length, source, "
        "first frame); "
        "the RGB frames and TV-L1 flow are JPEG feature lists that TFDS "
        "does not parse: read them with the project's reader (avlad_tf.data). "
        "metadata.json beside the shards holds the flow settings and the "
        "record order."
    )


def write(data_dir, *, dataset, labels, multi_label, splits, label_counts):
    """Writes TFDS's metadata files into the prepared dataset `data_dir`.

    Args:
        data_dir: the dataset directory, local or a URL (`avlad_tf.storage`).
        dataset: its name (`--dataset`), which TFDS shows as its name.
        labels: the sorted class names.
        multi_label: whether a video may carry several labels.
        splits: the metadata manifest (`writer.Summary.splits`).
        label_counts: `{split: {label index: videos}}`
            (`writer.Summary.label_counts`).
    """
    citation = "\n\n".join(
        c for c in (ACTIONVLAD_CITATION, DATASET_CITATIONS.get(dataset)) if c
    )
    # TFDS chooses its files' names and contents (the class names go to a
    # file of their own) and writes them through its own paths, which know
    # no `ram://`: they are written locally, then each is placed whole
    # through storage, so any URL works and no reader sees half a file. No
    # path is stored in them; TFDS reads the shards beside them.
    with tempfile.TemporaryDirectory(prefix="avlad_tf-tfds-") as local:
        identity = tfds.core.DatasetIdentity(
            name=dataset,
            version=tfds.core.Version(VERSION),
            data_dir=local,
            module_name="",
        )
        info = tfds.core.DatasetInfo(
            builder=identity,
            description=description(dataset, labels, multi_label),
            features=features(labels),
            homepage=HOMEPAGE,
            citation=citation,
        )
        info.set_file_format(FILE_FORMAT)
        infos = split_infos(
            data_dir, dataset, splits, label_counts, labels, tfds_dir=local
        )
        info.set_splits(tfds.core.SplitDict(infos))
        info.write_to_directory(local)
        # dataset_info.json, which names the others, comes last.
        for name in sorted(os.listdir(local), key=lambda n: n == "dataset_info.json"):
            with open(os.path.join(local, name), encoding="utf-8") as f:
                storage.write_text(storage.join(data_dir, name), f.read())
