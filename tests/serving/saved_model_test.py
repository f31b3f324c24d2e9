"""Tests of export (`avlad_tf.serving.saved_model`, `python -m avlad_tf.export`).

A SavedModel that reloads without avlad_tf, written from a workdir alone:
one two-stream export (late fusion, RGB 1 crop, flow 5 crops, as the run
recorded them) in-process and one RGB-only export through the command line. A fresh Python
process that never imports avlad_tf reloads the first with
`tf.saved_model.load`; its outputs are compared with the Keras models fed by
the evaluation preprocessing and by the evaluation pipeline.
"""

import json
import os
import subprocess
import sys
import textwrap

from absl.testing import absltest
import cv2
import gin
import keras
import numpy as np
import pytest
import tensorflow as tf

from avlad_tf import run_record
from avlad_tf import serving
from avlad_tf.data import preprocessing
from avlad_tf.data import video_input
from avlad_tf.models import action_vlad
from avlad_tf.models import fusion
from avlad_tf.models import inspection
from avlad_tf.serving import prediction
from avlad_tf.serving import saved_model as export
from tests import fake_data
from tests import fake_run
from tests import testing

REPO = testing.REPO
NUM_CLASSES = 3
NUM_FRAMES = 3
FLOW_STACK = 2
IMAGE_SIZE = 32
RESIZE_TO = (40, 48)
ATOL = 1e-5
# The release's README setting: RGB 1 crop, flow 5 crops (Sec. 9.2).
CROPS = {"rgb": 1, "flow": 5}


INPUT = dict(
    num_frames=NUM_FRAMES,
    flow_stack=FLOW_STACK,
    image_size=IMAGE_SIZE,
    resize_to=RESIZE_TO,
)


def make_workdir(workdir, modalities, *, data_dir, seed=0, fuse_weights=None):
    """Saves tiny untrained stream models and the run record like `train`."""
    keras.utils.set_random_seed(seed)
    for modality in modalities:
        os.makedirs(os.path.join(workdir, modality), exist_ok=True)
        model = action_vlad.build_model(
            num_classes=NUM_CLASSES,
            modality=modality,
            backbone="tiny",
            image_size=IMAGE_SIZE,
            num_clusters=4,
            flow_stack=FLOW_STACK,
        )
        model.save(os.path.join(workdir, modality, "model.keras"))
    gin.clear_config()
    fake_run.write_record(
        workdir,
        data_dir=data_dir,
        streams=modalities,
        input_settings=INPUT,
        num_crops=CROPS,
        fuse_weights=fuse_weights,
    )
    return workdir


# Runs in a fresh interpreter: only TensorFlow and NumPy, never avlad_tf.
RELOAD_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    export_dir, inputs_path, records_path, out_path = sys.argv[1:]
    loaded = tf.saved_model.load(export_dir)
    inputs = np.load(inputs_path)
    served = loaded.signatures["serving_default"](
        **{k: tf.constant(inputs[k]) for k in inputs.files if k != "frames"})
    from_frames = loaded.signatures["frames"](frames=tf.constant(inputs["frames"]))
    # The same videos streamed: 2 frames, then 1 frame padded to 2.
    state = loaded.signatures["streaming_start"](batch_size=tf.constant(2))
    videos = {k: inputs[k] for k in ("rgb", "flow")}
    for start, real in ((0, 2), (2, 1)):
        chunk = {k: np.zeros_like(v[:, :2]) for k, v in videos.items()}
        for k, v in videos.items():
            chunk[k][:, :real] = v[:, start : start + real]
        mask = np.zeros((2, 2), np.float32)
        mask[:, :real] = 1
        state = loaded.signatures["streaming_feed"](
            **state, **{k: tf.constant(v) for k, v in chunk.items()},
            mask=tf.constant(mask))
    streamed = loaded.signatures["streaming_finish"](**state)
    records = [r.numpy() for r in tf.data.TFRecordDataset(records_path)]
    examples = loaded.signatures["serialized_examples"](
        examples=tf.constant(records))
    names = loaded.signatures["class_names"]()["class_names"]

    def plain(t):  # strings as unicode: .npz must not hold pickles
        v = t.numpy()
        return v.astype(str) if v.dtype == object else v

    arrays = {"serve/" + k: plain(v) for k, v in served.items()}
    arrays.update({"examples/" + k: plain(v) for k, v in examples.items()})
    arrays.update({"frames/" + k: plain(v) for k, v in from_frames.items()})
    arrays.update({"stream/" + k: plain(v) for k, v in streamed.items()})
    arrays.update({"state/" + k: plain(v) for k, v in state.items()})
    np.savez(out_path, class_names=plain(names), **arrays)
    # The project's packages, by top-level name: an editable install also
    # loads a setuptools finder whose name contains "avlad" but is no
    # project code.
    project = {"avlad_tf", "data_prep"}
    print(json.dumps(sorted(
        m for m in sys.modules if m.split(".")[0] in project)))
""")


def keras_endpoints(workdir, features):
    """Reference outputs: the saved Keras models on preprocessed features."""
    streams = {
        m: keras.saving.load_model(os.path.join(workdir, m, "model.keras"))
        for m in features
    }
    out = {}
    for m, model in streams.items():
        ends = inspection.endpoints_model(model)({m: features[m]})
        out.update({f"{m}_{k}": np.asarray(v) for k, v in ends.items()})
    late = fusion.build_late_fusion(streams["rgb"], streams["flow"])
    out["logits"] = np.asarray(late(features))
    return out


@pytest.mark.slow
class ExportTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        root = testing.class_tempdir(cls)
        cls.data_dir = fake_data.write_fake_dataset(
            os.path.join(root, "data"),
            num_frames=12,
            height=RESIZE_TO[0],
            width=RESIZE_TO[1],
            content="pattern",
            splits=("test",),
        )
        cls.workdir = make_workdir(
            os.path.join(root, "two_stream"),
            ("rgb", "flow"),
            data_dir=cls.data_dir,
            fuse_weights=(1, 2),
        )
        # The workdir alone: crops, input settings and weights are the run's.
        cls.export_dir = export.export(workdir=cls.workdir)

        rng = np.random.default_rng(0)
        # A size other than resize_to, so the in-graph resize runs too.
        cls.inputs = {
            "rgb": rng.integers(0, 256, (2, NUM_FRAMES, 36, 44, 3), np.uint8),
            "flow": rng.integers(
                0, 256, (2, NUM_FRAMES, 36, 44, 2 * FLOW_STACK), np.uint8
            ),
        }
        # Decoded RGB videos at the stored size, for the `frames` signature:
        # a smooth texture panning 1 px per frame, so the flow is not zero.
        texture = cv2.GaussianBlur(
            rng.uniform(0, 255, (RESIZE_TO[0], RESIZE_TO[1] + 24)), (0, 0), 2.0
        )
        cls.frames = np.stack(
            [
                np.stack(
                    [
                        texture[:, t + shift : t + shift + RESIZE_TO[1], None]
                        * (0.6, 0.8, 1.0)
                        for t in range(12)
                    ]
                )
                for shift in (0, 5)
            ]
        ).astype(np.uint8)  # [2, 12, H, W, 3]
        inputs_path = os.path.join(root, "inputs.npz")
        np.savez(inputs_path, frames=cls.frames, **cls.inputs)
        cls.records_path = os.path.join(cls.data_dir, "test-00000-of-00001.tfrecord")
        out_path = os.path.join(root, "reloaded.npz")
        run = subprocess.run(
            [
                sys.executable,
                "-c",
                RELOAD_SCRIPT,
                cls.export_dir,
                inputs_path,
                cls.records_path,
                out_path,
            ],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=""),
        )
        if run.returncode:
            raise AssertionError(f"reload failed:\n{run.stderr[-3000:]}")
        cls.avlad_modules = json.loads(run.stdout.strip().splitlines()[-1])
        cls.reloaded = dict(np.load(out_path))

    def assert_close(self, expected, received, what):
        self.assertEqual(expected.shape, received.shape, what)
        np.testing.assert_allclose(received, expected, atol=ATOL, err_msg=what)

    def test_reload_needs_no_project_code(self):
        self.assertEqual(self.avlad_modules, [])

    def test_serving_default_matches_keras(self):
        features = {
            m: np.stack(
                [
                    preprocessing.preprocess_for_eval(
                        v,
                        modality=m,
                        num_crops=CROPS[m],
                        image_size=IMAGE_SIZE,
                        resize_to=RESIZE_TO,
                    )
                    for v in videos
                ]
            )
            for m, videos in self.inputs.items()
        }
        expected = keras_endpoints(self.workdir, features)
        for key in (
            "rgb_descriptor",
            "flow_descriptor",
            "rgb_assignments",
            "flow_assignments",
            "logits",
        ):
            self.assert_close(expected[key], self.reloaded["serve/" + key], key)
        # (1/3)·rgb + (2/3)·flow on raw logits, the release's late fusion.
        np.testing.assert_allclose(
            expected["logits"],
            expected["rgb_logits"] / 3 + 2 * expected["flow_logits"] / 3,
            atol=ATOL,
        )
        self.assert_close(
            np.asarray(keras.ops.softmax(expected["logits"])),
            self.reloaded["serve/probabilities"],
            "probabilities",
        )
        # 5 crops of each of the T flow frames are pooled into one bag.
        self.assertEqual(
            self.reloaded["serve/flow_assignments"].shape[:2], (2, 5 * NUM_FRAMES)
        )
        self.assertEqual(
            self.reloaded["serve/rgb_assignments"].shape[:2], (2, NUM_FRAMES)
        )
        norms = np.linalg.norm(self.reloaded["serve/rgb_descriptor"], axis=1)
        np.testing.assert_allclose(norms, 1.0, atol=1e-5)

    def test_serialized_examples_match_evaluation_pipeline(self):
        features, ids = {}, None
        for m in ("rgb", "flow"):
            dataset = video_input.make_dataset(
                data_dir=self.data_dir,
                split="test",
                training=False,
                modalities=(m,),
                batch_size=8,
                num_frames=NUM_FRAMES,
                flow_stack=FLOW_STACK,
                num_crops=CROPS[m],
                image_size=IMAGE_SIZE,
                resize_to=RESIZE_TO,
                with_ids=True,
            )
            batch, _ = next(iter(dataset))
            features[m] = batch[m].numpy()
            ids = batch["video_id"].numpy()
        expected = keras_endpoints(self.workdir, features)
        np.testing.assert_array_equal(
            self.reloaded["examples/video_id"], ids.astype(str)
        )
        for key in ("rgb_descriptor", "flow_descriptor", "logits"):
            self.assert_close(expected[key], self.reloaded["examples/" + key], key)

    def test_frames_signature_computes_flow_in_the_graph(self):
        # The client path `predict` takes: evaluation's sampling and TV-L1 of
        # the run's flow family on the sampled pairs, then serving_default.
        serve, config = prediction.load_export(self.export_dir)
        self.assertEqual(config["flow"]["preset"], "opencv")
        pair_flow = prediction.flow_function(config)
        videos = {"rgb": [], "flow": []}
        for frames in self.frames:
            indices = prediction.sample_indices(len(frames), config)
            videos["rgb"].append(frames[indices["rgb"]])
            bgr = frames[..., ::-1]
            videos["flow"].append(
                prediction.stacked_flow(
                    bgr,
                    indices["flow"],
                    pair_flow,
                    size=(config["frame_height"], config["frame_width"]),
                )
            )
        self.assertGreater(np.abs(np.stack(videos["flow"]).astype(int) - 128).max(), 3)
        expected = serve(**{m: tf.constant(np.stack(v)) for m, v in videos.items()})
        for key in ("rgb_descriptor", "flow_descriptor", "logits", "probabilities"):
            self.assert_close(
                expected[key].numpy(), self.reloaded["frames/" + key], key
            )

    def test_streaming_signatures_equal_serving_default(self):
        for key in ("rgb_descriptor", "flow_descriptor", "logits", "probabilities"):
            self.assert_close(
                self.reloaded["serve/" + key], self.reloaded["stream/" + key], key
            )
        # The state is the pooling sums and the frame counts, whatever the
        # video's length.
        shapes = {
            k: v.shape for k, v in self.reloaded.items() if k.startswith("state/")
        }
        self.assertEqual(
            shapes,
            {
                "state/frames": (2,),
                "state/rgb_s1": (2, 4, 16),
                "state/rgb_s0": (2, 4),
                "state/flow_s1": (2, 4, 16),
                "state/flow_s0": (2, 4),
            },
        )

    def test_class_names_are_stored(self):
        names = [f"class_{c:02d}" for c in range(NUM_CLASSES)]
        self.assertEqual(list(self.reloaded["class_names"]), names)
        with open(os.path.join(self.export_dir, "assets", "labels.txt")) as f:
            self.assertEqual(f.read().split(), names)

    def test_config_asset_records_what_clients_need(self):
        path = os.path.join(self.export_dir, "assets", serving.CONFIG_FILE)
        with open(path) as f:
            config = json.load(f)
        self.assertEqual(config["modalities"], ["rgb", "flow"])
        self.assertEqual(config["fusion"], "late")
        self.assertEqual(
            (config["num_frames"], config["flow_stack"], config["num_crops"]),
            (NUM_FRAMES, FLOW_STACK, CROPS),
        )
        self.assertEqual((config["frame_height"], config["frame_width"]), RESIZE_TO)
        self.assertEqual(config["joint_sampling"], "independent")
        self.assertAlmostEqual(config["fusion_weights"]["flow"], 2 / 3)

    def test_saved_model_cli_lists_named_inputs_and_outputs(self):
        run = subprocess.run(
            ["saved_model_cli", "show", "--all", "--dir", self.export_dir],
            capture_output=True,
            text=True,
            check=True,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        )
        serving = run.stdout.split("signature_def['serving_default']")[1]
        for name in (
            "inputs['rgb']",
            "inputs['flow']",
            "outputs['probabilities']",
            "outputs['logits']",
            "outputs['rgb_descriptor']",
            "outputs['flow_descriptor']",
            "outputs['rgb_assignments']",
            "outputs['flow_assignments']",
        ):
            self.assertIn(name, serving)
        self.assertIn("DT_UINT8", serving)
        self.assertIn("signature_def['serialized_examples']", run.stdout)
        self.assertIn("inputs['examples']", run.stdout)
        self.assertIn("signature_def['class_names']", run.stdout)

    def test_command_line_single_stream_export(self):
        root = self.create_tempdir().full_path
        workdir = make_workdir(
            os.path.join(root, "rgb_only"), ("rgb",), data_dir=self.data_dir
        )
        subprocess.run(
            [sys.executable, "-m", "avlad_tf.export", f"--workdir={workdir}"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        )
        loaded = tf.saved_model.load(os.path.join(workdir, "export"))
        serve = loaded.signatures["serving_default"]
        self.assertEqual(sorted(serve.structured_input_signature[1]), ["rgb"])
        outputs = serve(rgb=tf.constant(self.inputs["rgb"]))
        self.assertEqual(
            sorted(outputs), ["assignments", "descriptor", "logits", "probabilities"]
        )
        self.assertEqual(outputs["assignments"].shape[1], NUM_FRAMES)  # 1 crop

    def test_missing_model_is_a_clear_error(self):
        with self.assertRaisesRegex(FileNotFoundError, "no trained model"):
            export.export(workdir=self.create_tempdir().full_path)

    def test_labels_must_match_the_model(self):
        workdir = make_workdir(
            self.create_tempdir().full_path, ("rgb",), data_dir=self.data_dir
        )
        record = run_record.read(workdir)
        record["data"]["labels"] = ["only_one"]
        run_record.write(workdir, record)
        with self.assertRaisesRegex(ValueError, "lists 1 classes"):
            export.export(workdir=workdir)

    def test_fusion_weights_come_from_the_run(self):
        # Rebinding train.fuse_weights (here 1 : 1) reaches the SavedModel.
        workdir = make_workdir(
            self.create_tempdir().full_path,
            ("rgb", "flow"),
            data_dir=self.data_dir,
            fuse_weights=(1, 1),
        )
        models = export.load_stream_models(export.find_stream_models(workdir))
        config = export.build_export_config(
            models=models,
            record=run_record.read(workdir),
            num_crops=1,
            streams=["rgb", "flow"],
        )
        self.assertEqual(config["fusion_weights"], {"rgb": 0.5, "flow": 0.5})


if __name__ == "__main__":
    absltest.main()
