"""Kinetics from the release's CSVs and a copy of its clips, as the common
download scripts lay it out, with clips missing (data_prep/kinetics.py)."""

import json
import os

from absl.testing import absltest
import pytest
import tensorflow as tf

from avlad_tf.data import schema
from data_prep import datasets
from data_prep import kinetics
from data_prep import resume
from tests import testing
from tests.data_prep import prep_fixtures
from tests.data_prep import prepare_test

HEADER = "label,youtube_id,time_start,time_end,split,is_cc\n"
# Sorted, as the label map is; the third has a space, capitals and
# parentheses, the hardest of the release's class names for folder names.
CLASSES = ["abseiling", "air drumming", "passing American football (in game)"]
# The class folders as three download set-ups name them: ActivityNet's
# download.py (the label), mmaction2's rename_classnames.sh (spaces as `_`),
# and its older version (also `(`, `)` as `-`).
FOLDERS = ["abseiling", "air_drumming", "passing_American_football_-in_game-"]
TRAIN = [  # (class, youtube id, start, end, on disk)
    (0, "0wR5jVB-WPk", 417, 427, True),
    (0, "3caPS4FHFF8", 36, 46, True),
    (1, "--nQbRBEz2s", 104, 114, True),
    (1, "2cPLjY5AWXU", 1, 11, False),  # gone from YouTube
    (2, "_DNb_6w2cZM", 9, 19, True),
]
VAL = [
    (0, "3yaoNwz99xM", 62, 72, True),
    (1, "6929uJdI-iU", 1, 11, True),
    (2, "Ww61iwaFGrM", 1279, 1289, False),
]
MISSING = ["2cPLjY5AWXU_000001_000011", "Ww61iwaFGrM_001279_001289"]


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _csv(rows, split):
    lines = (
        f'"{CLASSES[c]}",{yid},{start},{end},{split},0\n'
        for c, yid, start, end, _ in rows
    )
    return HEADER + "".join(lines)


def _name(yid, start, end):
    return f"{yid}_{start:06d}_{end:06d}"


def make_copy(root):
    """`root/lists/` with the release's CSVs; `root/videos/<class>/<clip>.mp4`
    for the clips on disk (12 frames each). Returns (videos, lists)."""
    videos, lists = os.path.join(root, "videos"), os.path.join(root, "lists")
    _write(os.path.join(lists, "kinetics_400_train.csv"), _csv(TRAIN, "train"))
    _write(os.path.join(lists, "validate.csv"), _csv(VAL, "validate"))
    for i, (c, yid, start, end, present) in enumerate(TRAIN + VAL):
        if present:
            path = os.path.join(videos, FOLDERS[c], _name(yid, start, end) + ".mp4")
            prep_fixtures.write_video(path, 12, first=i, height=24, width=32)
    return videos, lists


class KineticsItemsTest(absltest.TestCase):
    """The CSVs and the clip layout → items; no video is read."""

    def setUp(self):
        super().setUp()
        self.tmp = self.create_tempdir().full_path

    def _touch(self, *parts):
        _write(os.path.join(self.tmp, "videos", *parts), "")

    def test_ids_labels_label_map_and_missing_paths(self):
        videos, lists = make_copy(self.tmp)
        labels, splits = datasets.items("kinetics400", input_dir=videos, list_dir=lists)
        self.assertEqual(labels, CLASSES)
        self.assertEqual(sorted(splits), ["train", "val"])
        for split, rows in (("train", TRAIN), ("val", VAL)):
            items = splits[split]
            self.assertEqual(
                [i.video_id for i in items], [_name(*r[1:4]) for r in rows]
            )
            self.assertEqual([i.labels for i in items], [(r[0],) for r in rows])
            for item, (c, *_, present) in zip(items, rows):
                # Trimmed clips: whole files. A missing clip is where the
                # split's other clips of its class are.
                self.assertEqual((item.start_frame, item.clip_length), (0, 0))
                self.assertEqual(os.path.exists(item.path), present)
                self.assertEqual(
                    item.path,
                    os.path.join(videos, FOLDERS[c], item.video_id + ".mp4"),
                )

    def test_split_folders_unlabelled_test_and_a_flat_copy(self):
        lists = os.path.join(self.tmp, "lists")
        _write(
            os.path.join(lists, "train.csv"),
            HEADER + "hurling (sport),aaaaaaaaaaa,0,10,train,0\n"
            "massaging person's head,bbbbbbbbbbb,5,15,train,0\n",
        )
        _write(
            os.path.join(lists, "kinetics-600_test.csv"),
            "youtube_id,time_start,time_end,split\n"
            "ccccccccccc,1,11,test\nddddddddddd,2.0,12,test\n",
        )
        self._touch("videos_train", "hurling_(sport)", "aaaaaaaaaaa_000000_000010.mp4")
        self._touch("train", "bbbbbbbbbbb_000005_000015.mp4")  # CVDF's tars
        self._touch("test", "ccccccccccc_000001_000011.mp4")  # download.py
        self._touch("ddddddddddd_000002_000012.mkv")  # flat
        labels, splits = kinetics.kinetics_items(
            "kinetics600",
            list_dir=lists,
            root=os.path.join(self.tmp, "videos"),
            split_names=["train", "test"],
        )
        self.assertEqual(labels, ["hurling (sport)", "massaging person's head"])
        self.assertEqual([i.labels for i in splits["train"]], [(0,), (1,)])
        self.assertEqual([i.labels for i in splits["test"]], [(), ()])
        paths = [i.path for s in ("train", "test") for i in splits[s]]
        self.assertTrue(all(os.path.exists(p) for p in paths), paths)
        # An unlabelled test split prepared alone keeps the train CSV's map.
        alone, _ = kinetics.kinetics_items(
            "kinetics600", list_dir=lists, root=self.tmp, split_names=["test"]
        )
        self.assertEqual(alone, labels)

    def test_a_clip_in_two_folders_is_taken_from_its_class(self):
        lists = os.path.join(self.tmp, "lists")
        _write(
            os.path.join(lists, "val.csv"),
            HEADER + "a b,xxxxxxxxxxx,0,10,val,0\nc,yyyyyyyyyyy,0,10,val,0\n",
        )
        self._touch("c", "xxxxxxxxxxx_000000_000010.mp4")
        self._touch("a b", "xxxxxxxxxxx_000000_000010.mp4")
        self._touch("a_b", "yyyyyyyyyyy_000000_000010.mp4")  # misfiled
        _, splits = kinetics.kinetics_items(
            "kinetics400",
            list_dir=lists,
            root=os.path.join(self.tmp, "videos"),
            split_names=["val"],
        )
        first, second = splits["val"]
        self.assertEqual(os.path.basename(os.path.dirname(first.path)), "a b")
        # Found only in another class's folder: used, labelled by the CSV.
        self.assertEqual(os.path.basename(os.path.dirname(second.path)), "a_b")
        self.assertEqual(second.labels, (1,))

    def test_a_clip_missing_from_two_splits_is_one_video(self):
        lists = os.path.join(self.tmp, "lists")
        for split in ("train", "val"):
            _write(
                os.path.join(lists, f"{split}.csv"),
                HEADER
                + f"a,{split[0] * 11},0,10,{split},0\n"
                + f"a,zzzzzzzzzzz,0,10,{split},0\n",  # missing, in both
            )
            self._touch(f"videos_{split}", "a", f"{split[0] * 11}_000000_000010.mp4")
        _, splits = kinetics.kinetics_items(
            "kinetics400",
            list_dir=lists,
            root=os.path.join(self.tmp, "videos"),
            split_names=["train", "val"],
        )
        gone = [splits[s][1] for s in ("train", "val")]
        self.assertEqual(gone[0].path, gone[1].path)
        self.assertFalse(os.path.exists(gone[0].path))
        resume.check_unique_ids(splits)  # one video, not two

    def test_bad_csvs_are_refused_by_name(self):
        lists = os.path.join(self.tmp, "lists")
        cases = {
            "youtube_id,start,end\nx,0,10\n": r"no time_start, time_end column",
            HEADER + "a,x,0,10,val,0\n": r"line 2: split 'val' in the CSV of 'train'",
            HEADER + "a,x,0.5,10,train,0\n": r"'0.5' is not a whole number",
            HEADER + "a,,0,10,train,0\n": r"line 2: no youtube_id",
            HEADER + "a,x,0,10,train,0\nb,x,0,10,train,0\n": (
                r"line 3: x_000000_000010 is also labelled 'a'"
            ),
        }
        for text, message in cases.items():
            with self.subTest(message):
                _write(os.path.join(lists, "train.csv"), text)
                with self.assertRaisesRegex(ValueError, message):
                    kinetics.kinetics_items(
                        "kinetics400",
                        list_dir=lists,
                        root=self.tmp,
                        split_names=["train"],
                    )
        _write(os.path.join(lists, "kinetics600_holdout_test.csv"), HEADER)
        _write(os.path.join(lists, "k600_test.csv"), HEADER)
        with self.assertRaisesRegex(ValueError, "could all be split 'test'"):
            kinetics.find_csv(lists, "test")
        self.assertEndsWith(
            kinetics.find_csv(lists, "holdout_test"), "kinetics600_holdout_test.csv"
        )
        with self.assertRaisesRegex(ValueError, "needs --list_dir"):
            datasets.items("kinetics600", input_dir=self.tmp)


def _records(data_dir, split):
    """`[(video id, labels)]` of a prepared split, in record order."""
    metadata = schema.read_metadata(data_dir)
    out = []
    for shard in metadata["splits"][split]["shards"]:
        for record in tf.data.TFRecordDataset(os.path.join(data_dir, shard["file"])):
            parsed = schema.parse_sequence_example(record)
            out.append(
                (
                    parsed[schema.VIDEO_ID_KEY].numpy().decode(),
                    tuple(parsed[schema.LABEL_INDEX_KEY].numpy().tolist()),
                )
            )
    return out


class KineticsPrepareTest(absltest.TestCase):
    """`python -m data_prep.prepare --dataset=kinetics400` end to end."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = testing.class_tempdir(cls)
        cls.videos, cls.lists = make_copy(cls.tmp)

    def _args(self, output_dir, *extra):
        return [
            "--dataset=kinetics400",
            f"--input_dir={self.videos}",
            f"--list_dir={self.lists}",
            f"--output_dir={output_dir}",
            "--frame_size=24,32",
            "--records_per_shard=2",
            "--flow_backend=opencv",
            "--flow_preset=opencv",
            *extra,
        ]

    @pytest.mark.slow
    def test_missing_clips_are_reported_and_beam_writes_the_same(self):
        local = os.path.join(self.tmp, "local")
        result = prepare_test._run(*self._args(local, "--workers=1"))  # pylint: disable=protected-access
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("kinetics400: 6 of the CSVs' 8 clips are under", result.stderr)
        self.assertIn("2 missing (train 1, val 1)", result.stderr)
        self.assertIn("Warning: the CSVs in", result.stderr)  # 3, not 400
        with open(os.path.join(local, "report.json")) as f:
            report = json.load(f)
        left_out = {e["video_id"]: e for e in report["left_out"]}
        self.assertEqual(sorted(left_out), MISSING)
        for entry in left_out.values():
            self.assertStartsWith(entry["reason"], "missing")
        self.assertEqual(
            left_out[MISSING[0]]["path"],
            os.path.join(self.videos, "air_drumming", MISSING[0] + ".mp4"),
        )
        metadata = schema.read_metadata(local)
        self.assertEqual(metadata["dataset"], "kinetics400")
        self.assertEqual(metadata["labels"], CLASSES)
        with open(os.path.join(local, schema.LABELS_FILE)) as f:
            self.assertEqual(f.read().splitlines(), CLASSES)
        expected = {
            split: {(_name(*r[1:4]), (r[0],)) for r in rows if r[4]}
            for split, rows in (("train", TRAIN), ("val", VAL))
        }
        for split, records in expected.items():
            self.assertCountEqual(_records(local, split), records)

        allowed = prepare_test._run(*self._args(local, "--allow_missing"))  # pylint: disable=protected-access
        self.assertEqual(allowed.returncode, 0, allowed.stderr)
        self.assertIn("2 videos left out", allowed.stderr)

        beam = os.path.join(self.tmp, "beam")
        result = prepare_test._run(  # pylint: disable=protected-access
            *self._args(beam, "--allow_missing", "--runner=DirectRunner")
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        names = sorted(n for n in os.listdir(local) if not n.startswith("."))
        self.assertEqual(
            sorted(n for n in os.listdir(beam) if not n.startswith(".")), names
        )
        for name in names:
            with open(os.path.join(local, name), "rb") as a:
                with open(os.path.join(beam, name), "rb") as b:
                    self.assertEqual(a.read(), b.read(), name)


if __name__ == "__main__":
    absltest.main()
