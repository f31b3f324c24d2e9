"""Split lists → items: release lists, official formats, Charades."""

import os

from absl.testing import absltest
import tensorflow as tf

from avlad_tf.data import schema
from avlad_tf.training import stream_model
from data_prep import records
from data_prep import sources
from data_prep import writer
from tests.data_prep import prep_fixtures


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


class ReleaseListsTest(absltest.TestCase):
    def test_shipped_lists_give_the_release_label_maps(self):
        expected = {"ucf101": (101, 9537, 3783), "hmdb51": (51, 3570, 1530)}
        for dataset, (classes, train, test) in expected.items():
            with self.subTest(dataset):
                labels, splits = sources.release_list_items(
                    dataset,
                    list_dir=os.path.join(sources.LISTS_DIR, dataset),
                    root="/nonexistent",
                    split_names=["train_split1", "test_split1"],
                )
                self.assertLen(labels, classes)
                self.assertLen(splits["train_split1"], train)
                self.assertLen(splits["test_split1"], test)
        labels, _ = sources.release_list_items(
            "ucf101",
            list_dir=os.path.join(sources.LISTS_DIR, "ucf101"),
            root="/x",
            split_names=["test_split1"],
        )
        # classInd order: case-insensitive (Hammering before HammerThrow).
        self.assertEqual(labels, sorted(labels, key=str.lower))
        self.assertLess(labels.index("Hammering"), labels.index("HammerThrow"))

    def test_hmdb_renamed_ids_find_the_original_videos(self):
        _, splits = sources.release_list_items(
            "hmdb51",
            list_dir=os.path.join(sources.LISTS_DIR, "hmdb51"),
            root="/videos",
            split_names=["train_split1"],
        )
        first = splits["train_split1"][0]
        self.assertEqual(first.video_id, "brush_hair/1")
        self.assertEqual(
            first.path, "/videos/brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi"
        )

    def test_release_frame_folders_with_flow_elsewhere(self):
        tmp = self.create_tempdir().full_path
        frames, flow = os.path.join(tmp, "frames"), os.path.join(tmp, "flow")
        folder = prep_fixtures.write_frame_folder(
            os.path.join(frames, "wave", "7"), 11, height=24, width=32
        )
        os.makedirs(os.path.join(flow, "wave", "7"))
        for name in os.listdir(folder):
            if name.startswith("flow_"):
                os.rename(
                    os.path.join(folder, name), os.path.join(flow, "wave", "7", name)
                )
        _write(os.path.join(tmp, "lists", "train_split1.txt"), "wave/7 11 0\n")
        labels, splits = sources.release_list_items(
            "hmdb51",
            list_dir=os.path.join(tmp, "lists"),
            root=frames,
            flow_root=flow,
            split_names=["train_split1"],
        )
        self.assertEqual(labels, ["wave"])
        item = splits["train_split1"][0]
        self.assertEqual(item.flow_path, os.path.join(flow, "wave", "7"))
        parsed = schema.parse_sequence_example(
            records.encode_item(item, records.Options(height=24, width=32))[0]
        )
        self.assertEqual(int(parsed[schema.LENGTH_KEY]), 11)
        self.assertLen(parsed[schema.FLOW_Y_KEY], 10)

    def test_official_ucf101_lists(self):
        tmp = self.create_tempdir().full_path
        _write(os.path.join(tmp, "classInd.txt"), "1 Archery\n2 Bowling\n")
        _write(
            os.path.join(tmp, "trainlist01.txt"),
            "Archery/v_Archery_g08_c01.avi 1\nBowling/v_Bowling_g09_c02.avi 2\n",
        )
        _write(os.path.join(tmp, "testlist01.txt"), "Bowling/v_Bowling_g01_c01.avi\n")
        labels, splits = sources.ucf101_official_items(
            list_dir=tmp, root="/u", split_names=["train_split1", "test_split1"]
        )
        self.assertEqual(labels, ["Archery", "Bowling"])
        self.assertEqual([i.labels for i in splits["train_split1"]], [(0,), (1,)])
        self.assertEqual(
            splits["test_split1"][0].path, "/u/Bowling/v_Bowling_g01_c01.avi"
        )

    def test_official_hmdb51_lists(self):
        tmp = self.create_tempdir().full_path
        _write(
            os.path.join(tmp, "brush_hair_test_split1.txt"),
            "April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1 \n"
            "April_09_brush_hair_u_nm_np1_ba_goo_1.avi 2 \n"
            "April_09_brush_hair_u_nm_np1_ba_goo_2.avi 0 \n",
        )
        _write(os.path.join(tmp, "wave_test_split1.txt"), "hi_wave.avi 2\n")
        labels, splits = sources.hmdb51_official_items(
            list_dir=tmp, root="/h", split_names=["train_split1", "test_split1"]
        )
        self.assertEqual(labels, ["brush_hair", "wave"])
        self.assertEqual(
            [i.video_id for i in splits["train_split1"]], ["brush_hair/1"]
        )  # the release's renamed id
        self.assertEqual(
            [(i.video_id, i.labels) for i in splits["test_split1"]],
            [("brush_hair/2", (0,)), ("wave/hi_wave", (1,))],
        )


class ClassFoldersTest(absltest.TestCase):
    def test_a_class_name_with_a_newline_is_refused(self):
        root = self.create_tempdir().full_path
        for name in ("walk", "run\nfast"):
            os.makedirs(os.path.join(root, name))
        with self.assertRaisesRegex(ValueError, r"class folder name 'run\\nfast'"):
            sources.class_folder_items(root, test_fraction=0.5)


class CharadesTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        tmp = self.create_tempdir().full_path
        self.lists, self.root = os.path.join(tmp, "lists"), os.path.join(tmp, "videos")
        _write(
            os.path.join(self.lists, "Charades_v1_test.csv"),
            "id,subject,scene,quality,relevance,verified,script,objects,"
            "descriptions,actions\n"
            'YSKX3,S,Room,5,6,Yes,"a, b",bed,"x",c077 1.0 2.0;c003 0.5 '
            "1.5;c077 2.1 2.5\nEMPTY,S,Room,5,6,Yes,s,o,d,\n",
        )
        _write(
            os.path.join(self.lists, "test_split1.txt"),
            "Y/YSKX3.mp4 20 -1\nE/EMPTY.mp4 20 -1\n",
        )
        _write(
            os.path.join(self.lists, "train_split1.txt"),
            "4/46GP8.mp4 5 12 92\n4/46GP8.mp4 0 11 147\n",
        )
        prep_fixtures.write_video(os.path.join(self.root, "Y", "YSKX3.mp4"), 20)
        # The official zip's flat layout is found too.
        prep_fixtures.write_video(os.path.join(self.root, "46GP8.mp4"), 20)

    def test_test_videos_are_multi_label(self):
        labels, splits = sources.charades_items(
            list_dir=self.lists, root=self.root, split_names=["test_split1"]
        )
        self.assertLen(labels, 157)
        self.assertEqual(labels[92], "c092")
        items = splits["test_split1"]
        self.assertEqual(
            [(i.video_id, i.labels) for i in items], [("YSKX3", (3, 77)), ("EMPTY", ())]
        )
        serialized, _, _ = records.encode_item(
            items[0], records.Options(height=24, width=32)
        )
        parsed = schema.parse_sequence_example(serialized)
        self.assertEqual(list(parsed[schema.LABEL_INDEX_KEY].numpy()), [3, 77])
        self.assertEqual(int(parsed[schema.LENGTH_KEY]), 20)

    def test_training_clips_train_with_softmax_by_default(self):
        # The paper trains Charades' one-label clips with softmax; the
        # dataset is multi-label (its test videos), which used to select the
        # summed sigmoid loss for training too.
        labels, splits = sources.charades_items(
            list_dir=self.lists,
            root=self.root,
            split_names=["train_split1", "test_split1"],
        )
        out = self.create_tempdir().full_path
        options = records.Options(height=24, width=32, min_frames=2)
        summary = writer.write_dataset(output_dir=out, splits=splits, options=options)
        writer.finish(
            output_dir=out,
            summary=summary,
            dataset="charades",
            labels=labels,
            multi_label=True,
            options=options,
        )
        info = schema.read_metadata(out)
        training_loss = stream_model.training_loss
        self.assertEqual(info["splits"]["train_split1"]["max_labels_per_video"], 1)
        self.assertEqual(info["splits"]["test_split1"]["max_labels_per_video"], 2)
        self.assertEqual(training_loss(info, "train_split1", "auto"), "softmax")
        self.assertEqual(training_loss(info, "test_split1", "auto"), "sigmoid")
        self.assertEqual(training_loss(info, "train_split1", "sigmoid"), "sigmoid")
        # Datasets prepared before the field existed: the dataset decides.
        del info["splits"]["train_split1"]["max_labels_per_video"]
        self.assertEqual(training_loss(info, "train_split1", "auto"), "sigmoid")
        with self.assertRaisesRegex(ValueError, "train_stream.loss"):
            training_loss(info, "train_split1", "hinge")

    def test_training_clips_are_cut_at_the_action_boundaries(self):
        _, splits = sources.charades_items(
            list_dir=self.lists, root=self.root, split_names=["train_split1"]
        )
        clip = splits["train_split1"][0]
        self.assertEqual(clip.video_id, "46GP8@5-17/c092")
        self.assertEqual(clip.path, os.path.join(self.root, "46GP8.mp4"))
        parsed = schema.parse_sequence_example(
            records.encode_item(clip, records.Options(height=48, width=64))[0]
        )
        self.assertEqual(int(parsed[schema.LENGTH_KEY]), 12)
        self.assertEqual(int(parsed[schema.START_FRAME_KEY]), 5)
        self.assertEqual(list(parsed[schema.LABEL_INDEX_KEY].numpy()), [92])
        # Frame j of the clip is frame 5 + j of the video (corner brightness).
        for j in (0, 11):
            image = tf.io.decode_jpeg(parsed[schema.RGB_KEY][j]).numpy()
            expected = prep_fixtures.mean_brightness_of_corner(
                prep_fixtures.frame(5 + j)
            )
            self.assertAlmostEqual(
                prep_fixtures.mean_brightness_of_corner(image), expected, delta=6
            )


if __name__ == "__main__":
    absltest.main()
