"""Every path avlad_tf takes may be a URL: its files on TensorFlow's in-memory
`ram://` filesystem, the stand-in for object storage (docs/STORAGE.md).

`ram://` is per process: the test of the README's main command runs the
program and checks its workdir in one subprocess.
"""

import json
import os
import subprocess
import sys
import textwrap
import uuid

from absl.testing import absltest
import gin
import keras
import numpy as np
import pytest
import tensorflow as tf

from avlad_tf import kmeans
from avlad_tf import run_record
from avlad_tf import storage
from avlad_tf.data import manifest
from avlad_tf.data import video_input
from avlad_tf.evaluation import late_fusion
from avlad_tf.evaluation import score_files
from avlad_tf.models import backbones
from avlad_tf.models import initial_weights
from avlad_tf.serving import prediction
from avlad_tf.serving import saved_model
from avlad_tf.training import checkpointing
from avlad_tf.training import results
from avlad_tf.training import stage as stage_lib
from avlad_tf.training import summaries
from avlad_tf.visualization import curves
from avlad_tf.visualization import plotting
from data_prep import video_io
from tests import fake_data
from tests import fake_run
from tests import testing
from tests.serving import prediction_test


def ram_dir(name):
    """A fresh `ram://` folder: the filesystem is shared by the process, and
    takes a name for a folder of every name it begins (`run`, `run2`)."""
    path = f"ram://ram_paths_test/{uuid.uuid4().hex}/{name}"
    storage.makedirs(path)
    return path


def write_data(data_dir, **kwargs):
    """The fake dataset the run-record tests read (3 classes)."""
    return fake_data.write_fake_dataset(data_dir, num_videos=2, **kwargs)


class WorkdirFilesTest(absltest.TestCase):
    def tearDown(self):
        gin.clear_config()
        super().tearDown()

    def test_run_record_and_dataset_on_urls(self):
        data_dir = write_data(ram_dir("data"))
        workdir = storage.join(ram_dir("runs"), "run")  # made by write
        gin.clear_config()
        record = fake_run.write_record(workdir, data_dir=data_dir)
        self.assertEqual(run_record.read(workdir), record)
        # A URL is recorded as given: it is absolute already.
        self.assertEqual(record["data"]["data_dir"], data_dir)
        files, counts = manifest.split_shards(
            video_input.dataset_info(data_dir), data_dir, "test"
        )
        self.assertEqual(counts, [2])
        storage.remove(files[0])
        with self.assertRaisesRegex(FileNotFoundError, "shards that do not exist"):
            video_input.dataset_info(data_dir)

    def test_score_files_written_and_read_on_urls(self):
        workdir = ram_dir("run")
        logits = np.arange(6, dtype=np.float32).reshape(2, 3)
        paths = [
            score_files.scores_path(workdir, s, "test", 1) for s in ("rgb", "flow")
        ]
        for path in paths:
            score_files.write_scores(path, logits, ["a", "b"], np.array([2, 1]))
        scores = score_files.read_scores(paths[0])
        np.testing.assert_array_equal(scores.logits, logits)
        self.assertEqual(scores.video_ids, ["a", "b"])
        fused_path = storage.join(workdir, "scores", "fused.h5")
        fused = late_fusion.fuse_files(
            paths, [1, 2], labels=None, output_path=fused_path
        )
        self.assertEqual(fused["fused"], 0.5)
        self.assertEqual(
            storage.listdir(storage.join(workdir, "scores")),
            ["flow_test_1crop.h5", "fused.h5", "rgb_test_1crop.h5"],
        )
        storage.write_text(storage.join(workdir, "not.h5"), "text")
        with self.assertRaisesRegex(ValueError, r"not\.h5 is not an HDF5"):
            score_files.read_scores(storage.join(workdir, "not.h5"))

    def test_kmeans_centres_on_a_url(self):
        path = storage.join(ram_dir("run"), "rgb", "centers.npy")
        centers = np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32)
        kmeans.save_centers(path, centers)
        loaded = kmeans.load_centers(path, num_clusters=4, depth=8)
        np.testing.assert_array_equal(loaded, centers)
        self.assertEqual(storage.listdir(storage.dirname(path)), ["centers.npy"])

    def test_results_labels_and_config_on_a_url(self):
        workdir = ram_dir("run")
        path = results.write_results(workdir, "| model |\n")
        self.assertEqual(storage.read_text(path), "| model |\n")
        stage_lib.write_labels(workdir, ["b", "a"])
        self.assertEqual(
            storage.read_text(storage.join(workdir, "labels.txt")), "b\na\n"
        )
        text = stage_lib.write_operative_config(workdir)
        self.assertEqual(
            storage.read_text(storage.join(workdir, "operative_config.gin")), text
        )

    def test_summaries_and_metrics_dropped_after_a_step_on_a_url(self):
        workdir = ram_dir("run")
        logdir = storage.join(workdir, "tensorboard", "rgb")
        writer = tf.summary.create_file_writer(logdir)
        metrics = storage.join(workdir, "rgb", "train_metrics.jsonl")
        storage.makedirs(storage.dirname(metrics))
        for step in range(1, 5):
            summaries.write_scalars(writer, step, {"loss": 1.0 / step})
            with storage.open_file(metrics, "a") as f:
                f.write(json.dumps({"global_step": step}) + "\n")
        writer.close()
        stage_lib.drop_logs_after(workdir, "rgb", 2)
        lines = storage.read_text(metrics).splitlines()
        self.assertEqual([json.loads(line)["global_step"] for line in lines], [1, 2])
        scalars = curves.read_scalars(storage.join(workdir, "tensorboard"))
        steps, _ = scalars["train/loss"]["rgb"]
        self.assertEqual(list(steps), [1, 2])

    def test_checkpoints_saved_and_restored_on_a_url(self):
        directory = checkpointing.stage_directory(ram_dir("run"), "rgb", 1)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        manager = checkpointing.make_manager(
            directory=directory,
            model=model,
            optimizer=keras.optimizers.Adam(),
            iterator=None,
            max_to_keep=2,
        )
        saved = [w.copy() for w in model.get_weights()]
        path = checkpointing.save(manager, 3)
        model.set_weights([np.zeros_like(w) for w in saved])
        latest = tf.train.latest_checkpoint(directory)
        self.assertEqual(latest, path)
        self.assertEqual(checkpointing.checkpoint_step(latest), 3)
        checkpointing.restore(manager, latest)
        for restored, weights in zip(model.get_weights(), saved):
            np.testing.assert_array_equal(restored, weights)

    def test_a_figure_on_a_url(self):
        path = storage.join(ram_dir("figures"), "sub", "curve.png")
        fig = plotting.new_figure(width_px=120, height_px=80)
        fig.add_subplot().plot([0, 1], [1, 0])
        self.assertEqual(plotting.save_figure(fig, path), path)
        self.assertEqual(storage.read_bytes(path)[:8], b"\x89PNG\r\n\x1a\n")
        self.assertEqual(storage.listdir(storage.dirname(path)), ["curve.png"])


class WeightsFileTest(absltest.TestCase):
    def test_a_vgg16_weights_file_at_a_url(self):
        source = keras.applications.VGG16(
            weights=None, include_top=False, input_shape=(32, 32, 3)
        )
        local = self.create_tempfile("vgg.weights.h5").full_path
        source.save_weights(local)
        url = storage.join(ram_dir("weights"), "vgg.weights.h5")
        storage.copy(local, url)
        # Staged as .weights.h5: Keras reads a plain .h5 the legacy way.
        model = backbones.build_vgg16(image_size=32, weights=url)
        np.testing.assert_array_equal(
            model.get_layer("block5_conv3").get_weights()[0],
            source.get_layer("block5_conv3").get_weights()[0],
        )
        self.assertIsNone(initial_weights.training_split(url))


class VideoInputTest(absltest.TestCase):
    def test_a_video_url_is_read_from_a_local_copy_removed_after_use(self):
        local = prediction_test.write_video(
            os.path.join(self.create_tempdir().full_path, "walk.avi"), 6
        )
        url = storage.join(ram_dir("videos"), "walk.avi")
        storage.copy(local, url)
        with video_io.local_copy(url) as copy:
            self.assertTrue(copy.endswith(".avi"))
            frames = video_io.read_video(copy, height=None, width=None)
        self.assertLen(frames, 6)
        self.assertFalse(os.path.exists(copy))

    def test_a_missing_video_url_is_a_source_error(self):
        missing = storage.join(ram_dir("videos"), "missing.avi")
        with self.assertRaisesRegex(video_io.SourceError, "missing"):
            with video_io.local_copy(missing):
                pass


@pytest.mark.slow
class ExportOnUrlsTest(absltest.TestCase):
    def test_export_replaced_reloaded_and_predicting_from_urls(self):
        data_dir = write_data(ram_dir("data"), height=32, width=40)
        workdir = ram_dir("run")
        gin.clear_config()
        fake_run.save_model(workdir, "rgb", num_classes=3)
        fake_run.write_record(workdir, data_dir=data_dir, streams=("rgb",))
        export_dir = saved_model.export(workdir=workdir)
        self.assertEqual(export_dir, storage.join(workdir, "export"))
        # A second export replaces the first, leaving no temporary folder.
        saved_model.export(workdir=workdir)
        self.assertEqual(storage.listdir(workdir), ["export", "rgb", "run.json"])
        config = prediction.read_config(export_dir)
        self.assertEqual(config["class_names"], ["class_00", "class_01", "class_02"])
        video = storage.join(ram_dir("videos"), "walk.avi")
        local = prediction_test.write_video(
            os.path.join(self.create_tempdir().full_path, "walk.avi"), 8
        )
        storage.copy(local, video)
        missing = storage.join(storage.dirname(video), "missing.avi")
        found, absent = prediction.predict_videos(export_dir, [video, missing])
        self.assertEqual(found["video"], video)
        self.assertLen(found["top5"], 3)
        self.assertEqual(absent, {"video": missing, "error": "missing: no such file"})


# Runs in one fresh interpreter, since ram:// is per process: the README's
# main command, making the toy dataset in DATA_DIR on ram:// itself.
TRAIN_SCRIPT = textwrap.dedent("""
    import json, runpy, sys
    from avlad_tf import storage
    workdir, *bindings = sys.argv[1:]
    sys.argv = ["train", "--gin_file=toy/late_fuse.gin", f"--workdir={workdir}"]
    sys.argv += [f"--gin_bindings={b}" for b in bindings]
    try:
        runpy.run_module("avlad_tf.train", run_name="__main__")
        code = 0
    except SystemExit as exit_:
        code = exit_.code or 0  # app.run exits with main's None
    def files(root):
        return sorted(
            storage.join(folder, name)[len(root) + 1 :]
            for folder, _, names in storage.walk(root) for name in names)
    data_dir = json.loads(storage.read_text(storage.join(workdir, "run.json")))[
        "data"]["data_dir"]
    print(json.dumps({
        "code": code,
        "files": files(workdir),
        "data_files": files(data_dir),
        "results": storage.read_text(storage.join(workdir, "results.md")),
        "data_dir": data_dir,
    }))
""")

# The toy run, shortened: a few updates per stage, k-means on a few frames;
# the toy dataset itself is made in full.
SHORT_TOY = (
    "train_stream.stage_steps = (2, 1)",
    "train_stream.batch_size = 2",
    "train_stream.accumulation_steps = 1",
    "train_stream.checkpoint_every = 1",
    "train_stream.assignments_every = 1",
    "make_dataset.shuffle_buffer = 4",
    "init_centers.num_random_frames = 4",
    "init_centers.num_init = 1",
)


@pytest.mark.slow
class MainCommandOnUrlsTest(absltest.TestCase):
    def test_the_readme_command_with_a_url_workdir_and_data(self):
        data_dir, workdir = "ram://main_command/data", "ram://main_command/run"
        # Nothing may be left locally: the working directory and the
        # temporary directory start empty and must end empty.
        cwd, tmp = (self.create_tempdir().full_path for _ in range(2))
        env = dict(os.environ, TMPDIR=tmp, PYTHONPATH=testing.REPO)
        result = subprocess.run(
            [sys.executable, "-c", TRAIN_SCRIPT, workdir]
            + [f"DATA_DIR = '{data_dir}'", *SHORT_TOY],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        outcome = json.loads(result.stdout.strip().splitlines()[-1])
        self.assertEqual(outcome["code"], 0, result.stderr[-3000:])
        self.assertEqual(outcome["data_dir"], data_dir)
        self.assertEqual(os.listdir(cwd), [])
        self.assertEqual(os.listdir(tmp), [])
        self.assertIn("Making the toy dataset", result.stderr)
        self.assertIn("late fusion (1:2)", outcome["results"])
        self.assertContainsSubset(
            {
                "metadata.json",
                "dataset_info.json",
                "train-00000-of-00002.tfrecord",
                "train-00001-of-00002.tfrecord",
                "test-00000-of-00001.tfrecord",
            },
            set(outcome["data_files"]),
        )
        files = set(outcome["files"])
        for stream in ("rgb", "flow"):
            self.assertContainsSubset(
                {
                    f"{stream}/model.keras",
                    f"{stream}/centers.npy",
                    f"{stream}/train_metrics.jsonl",
                    f"{stream}/checkpoints/stage2/checkpoint",
                    f"scores/{stream}_test_1crop.h5",
                },
                files,
            )
            self.assertTrue(
                any(f.startswith(f"tensorboard/{stream}/events.out") for f in files)
            )
        self.assertContainsSubset(
            {
                "run.json",
                "results.md",
                "labels.txt",
                "command.txt",
                "operative_config.gin",
                "export/saved_model.pb",
            },
            files,
        )
        for names in (outcome["files"], outcome["data_files"]):
            self.assertEmpty([f for f in names if storage.TEMPORARY in f])


if __name__ == "__main__":
    absltest.main()
