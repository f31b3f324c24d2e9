"""Tests for data_prep.resume: reruns never keep output that disagrees.

Items are stand-ins with `records.Item`'s attributes (importing `records`
pulls in TensorFlow and OpenCV; `resume` reads attributes only).
"""

import hashlib
import json
import os
import types
import uuid

from absl.testing import absltest

from avlad_tf import storage
from data_prep import resume


def _item(video_id, path=None, labels=(0,), start_frame=0, clip_length=0):
    return types.SimpleNamespace(
        video_id=video_id,
        path=path or f"/videos/{video_id}.avi",
        labels=labels,
        start_frame=start_frame,
        clip_length=clip_length,
    )


def _fingerprint(**changes):
    fingerprint = {
        "dataset": "hmdb51",
        "records_per_shard": 100,
        "record_options": {"flow_preset": "opencv", "jpeg_quality": 95},
    }
    fingerprint.update(changes)
    return fingerprint


def _inputs(ids, split="train"):
    return resume.describe_inputs({split: [_item(i) for i in ids]})


class UniqueIdsTest(absltest.TestCase):
    def test_distinct_ids_and_one_video_in_several_splits_pass(self):
        resume.check_unique_ids(
            {"train": [_item("a"), _item("b")], "test": [_item("a"), _item("c")]}
        )

    def test_two_files_under_one_id_are_named(self):
        with self.assertRaisesRegex(
            ValueError,
            r"^/x/a\.avi and /y/a\.avi would both be stored as video id 'a' "
            r"\(test\); rename one of them\.$",
        ):
            resume.check_unique_ids(
                {"train": [_item("a", "/x/a.avi")], "test": [_item("a", "/y/a.avi")]}
            )

    def test_one_video_twice_in_a_split(self):
        with self.assertRaisesRegex(ValueError, r"video id 'a' \(train\)"):
            resume.check_unique_ids({"train": [_item("a"), _item("b"), _item("a")]})


class DescribeInputsTest(absltest.TestCase):
    def test_one_json_list_per_item_in_order(self):
        described = resume.describe_inputs(
            {
                "train": [
                    _item("b", "/v/b.avi", labels=(2,)),
                    _item("a", "/v/a", labels=(1, 3), start_frame=5, clip_length=9),
                ]
            }
        )
        # Missing files: no size or modification time.
        self.assertEqual(
            described,
            {
                "train": [
                    ["b", "/v/b.avi", [2], 0, 0, None, None],
                    ["a", "/v/a", [1, 3], 5, 9, None, None],
                ]
            },
        )
        # What JSON reads back, so that it compares equal to inputs.json.
        self.assertEqual(json.loads(json.dumps(described)), described)

    def test_sources_and_progress_at_a_url(self):
        # ram:// (TensorFlow's in-memory filesystem) stands in for a bucket.
        root = f"ram://resume_test/{uuid.uuid4().hex}"
        storage.makedirs(storage.join(root, "v", "frames"))
        for name in ("v/a.avi", "v/frames/image_00001.jpg"):
            with storage.open_file(storage.join(root, name), "wb") as f:
                f.write(b"12345")
        video, folder = storage.join(root, "v/a.avi"), storage.join(root, "v/frames")
        self.assertEqual(resume.source_stat(video), [5, 0])  # ram:// keeps no times
        self.assertEqual(resume.source_stat(folder), [1, 0])  # its entries
        self.assertIsNone(resume.source_stat(storage.join(root, "v/none.avi")))
        progress = storage.join(root, "out", ".progress")
        storage.makedirs(progress)
        inputs = resume.describe_inputs({"train": [_item("a", video)]})
        resume.check_settings(progress, _fingerprint(), inputs)
        resume.check_settings(progress, _fingerprint(), inputs)  # a rerun
        with self.assertRaisesRegex(ValueError, f"^{root}/out was prepared with"):
            resume.check_settings(progress, _fingerprint(dataset="x"), inputs)

    def test_many_sources_at_a_url_keep_their_order_and_splits(self):
        # Stat-ed 32 at a time (a bucket's round trips): each entry still
        # carries its own source's size, in list order, split by split.
        root = f"ram://resume_test/{uuid.uuid4().hex}"
        storage.makedirs(root)
        splits = {"train": [], "test": []}
        for n in range(100):
            path = storage.join(root, f"{n}.avi")
            if n % 7:  # every 7th source is missing
                with storage.open_file(path, "wb") as f:
                    f.write(b"x" * (n + 1))
            splits["train" if n < 60 else "test"].append(_item(str(n), path))
        described = resume.describe_inputs(splits)
        for split, items in splits.items():
            self.assertEqual(
                [e[0] for e in described[split]], [i.video_id for i in items]
            )
            for entry in described[split]:
                n = int(entry[0])
                self.assertEqual(entry[5:], [n + 1, 0] if n % 7 else [None, None])


class CheckSettingsTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        self.output_dir = self.create_tempdir().full_path
        self.progress_dir = os.path.join(self.output_dir, ".progress")
        os.makedirs(self.progress_dir)

    def test_first_run_records_settings_and_inputs(self):
        inputs = _inputs(["a", "b"])
        fingerprint = _fingerprint(splits=("test", "train"))
        resume.check_settings(self.progress_dir, fingerprint, inputs)
        options = resume.read_json(os.path.join(self.progress_dir, "options.json"))
        self.assertEqual(options["splits"], ["test", "train"])  # as JSON
        self.assertEqual(options["record_options"], fingerprint["record_options"])
        self.assertEqual(
            resume.read_json(os.path.join(self.progress_dir, "inputs.json")), inputs
        )
        # A rerun with the same settings and input is accepted.
        resume.check_settings(self.progress_dir, fingerprint, _inputs(["a", "b"]))

    def test_a_changed_setting_is_refused_by_its_dotted_name(self):
        resume.check_settings(self.progress_dir, _fingerprint(), _inputs(["a"]))
        changed = _fingerprint(
            record_options={"flow_preset": "opencv_cuda", "jpeg_quality": 95}
        )
        with self.assertRaises(ValueError) as raised:
            resume.check_settings(self.progress_dir, changed, _inputs(["a"]))
        message = str(raised.exception)
        self.assertEqual(
            message,
            f"{self.output_dir} was prepared with other settings "
            "(record_options.flow_preset: 'opencv' -> 'opencv_cuda'). Use a new "
            f"--output_dir, or delete {self.output_dir} to prepare it again.",
        )

    def test_added_and_removed_settings_are_named(self):
        resume.check_settings(self.progress_dir, _fingerprint(), _inputs(["a"]))
        changed = _fingerprint(seed=3)
        del changed["records_per_shard"]
        with self.assertRaisesRegex(
            ValueError, r"\(records_per_shard: 100 -> None; seed: None -> 3\)"
        ):
            resume.check_settings(self.progress_dir, changed, _inputs(["a"]))

    def test_input_changes_are_named_by_id(self):
        resume.check_settings(
            self.progress_dir, _fingerprint(), _inputs(["a", "b", "c"])
        )
        current = _inputs(["a", "c", "d"])
        current["train"][0][2] = [7]  # a's labels
        with self.assertRaises(ValueError) as raised:
            resume.check_settings(self.progress_dir, _fingerprint(), current)
        self.assertEqual(
            str(raised.exception),
            f"{self.output_dir} was prepared from another input: "
            "train: 1 added (d); train: 1 removed (b); train: 1 changed (a) (a "
            "changed video: another path, labels, clip, or a file replaced under "
            f"the same name). Use a new --output_dir, or delete {self.output_dir} "
            "to prepare it again.",
        )

    def test_a_video_replaced_under_the_same_name_is_refused(self):
        video = os.path.join(self.create_tempdir().full_path, "a.avi")
        with open(video, "wb") as f:
            f.write(b"first video")
        splits = {"train": [_item("a", video)]}
        resume.check_settings(
            self.progress_dir, _fingerprint(), resume.describe_inputs(splits)
        )
        with open(video, "wb") as f:
            f.write(b"another, longer video")
        with self.assertRaisesRegex(ValueError, r"train: 1 changed \(a\)"):
            resume.check_settings(
                self.progress_dir, _fingerprint(), resume.describe_inputs(splits)
            )

    def test_an_older_record_without_the_stat_is_kept_and_upgraded(self):
        current = _inputs(["a", "b"])
        older = {"train": [entry[:5] for entry in current["train"]]}
        resume.check_settings(self.progress_dir, _fingerprint(), older)
        resume.check_settings(self.progress_dir, _fingerprint(), current)
        path = os.path.join(self.progress_dir, resume.INPUTS_FILE)
        self.assertEqual(resume.read_json(path), current)

    def test_a_new_split_and_many_added_videos(self):
        resume.check_settings(self.progress_dir, _fingerprint(), _inputs(["a"]))
        current = dict(_inputs(["a"]), **_inputs([f"v{i}" for i in range(7)], "test"))
        with self.assertRaisesRegex(
            ValueError,
            r"input: test: 7 added \(v0, v1, v2, v3, v4 and 2 more\)\. Use",
        ):
            resume.check_settings(self.progress_dir, _fingerprint(), current)

    def test_the_same_videos_in_another_order(self):
        resume.check_settings(self.progress_dir, _fingerprint(), _inputs(["a", "b"]))
        with self.assertRaisesRegex(
            ValueError, "train: the same videos in another order"
        ):
            resume.check_settings(
                self.progress_dir, _fingerprint(), _inputs(["b", "a"])
            )

    def test_settings_are_checked_before_inputs(self):
        resume.check_settings(self.progress_dir, _fingerprint(), _inputs(["a"]))
        with self.assertRaisesRegex(ValueError, "other settings"):
            resume.check_settings(
                self.progress_dir, _fingerprint(dataset="ucf101"), _inputs(["b"])
            )


class ShardStateTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        tmp = self.create_tempdir().full_path
        self.shard = os.path.join(tmp, "train-00000.tfrecord")
        self.note = os.path.join(tmp, "train-00000.json")
        self.content = b"records" * 1000

    def _finish(self):
        with open(self.shard, "wb") as f:
            f.write(self.content)
        resume.write_json(
            self.note,
            {
                "num_records": 2,
                "size": len(self.content),
                "sha256": hashlib.sha256(self.content).hexdigest(),
            },
        )

    def test_checksum_is_sha256(self):
        with open(self.shard, "wb") as f:
            f.write(self.content)
        self.assertEqual(
            resume.checksum(self.shard), hashlib.sha256(self.content).hexdigest()
        )

    def test_todo_without_a_note(self):
        self.assertEqual(resume.shard_state(self.shard, self.note), "todo")
        with open(self.shard, "wb") as f:  # a half-written shard, no note
            f.write(b"half")
        self.assertEqual(resume.shard_state(self.shard, self.note), "todo")

    def test_finished_when_the_checksum_matches(self):
        self._finish()
        self.assertEqual(resume.shard_state(self.shard, self.note), "finished")

    def test_damaged_when_missing_or_changed(self):
        self._finish()
        with open(self.shard, "r+b") as f:
            f.write(b"R")  # same size, other bytes
        self.assertEqual(resume.shard_state(self.shard, self.note), "damaged")
        os.remove(self.shard)
        self.assertEqual(resume.shard_state(self.shard, self.note), "damaged")

    def test_written_note_checks_presence_and_size_only(self):
        self.assertIsNone(resume.written_note(self.shard, self.note))
        self._finish()
        note = resume.written_note(self.shard, self.note)
        self.assertEqual(note["num_records"], 2)
        with open(self.shard, "r+b") as f:
            f.write(b"R")  # same size: not read, so still the note
        self.assertEqual(resume.written_note(self.shard, self.note), note)
        with open(self.shard, "ab") as f:
            f.write(b"more")
        self.assertIsNone(resume.written_note(self.shard, self.note))
        os.remove(self.shard)
        self.assertIsNone(resume.written_note(self.shard, self.note))

    def test_write_json_sorts_keys_and_leaves_no_temporary_file(self):
        resume.write_json(self.note, {"b": 1, "a": [1, 2]})
        with open(self.note) as f:
            text = f.read()
        self.assertLess(text.index('"a"'), text.index('"b"'))
        self.assertEqual(resume.read_json(self.note), {"a": [1, 2], "b": 1})
        self.assertEqual(os.listdir(os.path.dirname(self.note)), ["train-00000.json"])


if __name__ == "__main__":
    absltest.main()
