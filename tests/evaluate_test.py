"""Tests for avlad_tf.evaluate on tiny fake TFRecords and a tiny saved model."""

import functools
import os
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import gin
import h5py
import numpy as np

from avlad_tf import evaluate
from avlad_tf import fuse
from avlad_tf.data import video_input
from avlad_tf.models import action_vlad
from tests import fake_data

_NUM_CLASSES = 3
_NUM_VIDEOS = 5


def _dataset_fn(data_dir):
    # Tiny frames: 32x40 stored, 4 frames, 24x24 crops for the tiny backbone.
    return functools.partial(
        video_input.make_dataset, data_dir=data_dir, num_frames=4, flow_stack=2,
        image_size=24, resize_to=(32, 40))


def _save_model(workdir, stream, modality):
    model = action_vlad.build_model(
        num_classes=_NUM_CLASSES, modality=modality, backbone='tiny',
        image_size=24, flow_stack=2, num_clusters=2)
    os.makedirs(os.path.join(workdir, stream))
    model.save(os.path.join(workdir, stream, 'model.keras'))
    return model


class EvaluateTest(parameterized.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp()
        cls.data_dir = fake_data.write_fake_dataset(
            os.path.join(cls.root, 'data'), num_videos=_NUM_VIDEOS, num_frames=8,
            num_classes=_NUM_CLASSES, num_shards=2)
        cls.multi_dir = fake_data.write_fake_dataset(
            os.path.join(cls.root, 'multi'), num_videos=_NUM_VIDEOS,
            num_frames=8, num_classes=_NUM_CLASSES, multi_label=True)
        cls.workdir = os.path.join(cls.root, 'work')
        cls.models = {s: _save_model(cls.workdir, s, s) for s in ('rgb', 'flow')}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        gin.clear_config()

    @parameterized.parameters(('rgb', 1), ('flow', 5))
    def test_writes_scores_in_record_order(self, stream, num_crops):
        result = evaluate.evaluate(
            workdir=self.workdir, stream=stream, split='test', num_crops=num_crops,
            batch_size=2, make_dataset_fn=_dataset_fn(self.data_dir))
        path = os.path.join(self.workdir, 'scores',
                            f'{stream}_test_{num_crops}crop.h5')
        self.assertEqual(result['scores_path'], path)
        logits, ids, labels = fuse.read_scores(path)
        self.assertEqual(logits.shape, (_NUM_VIDEOS, _NUM_CLASSES))
        # Shard order then record order (round-robin fake shards: 0, 2, 4 | 1, 3).
        self.assertEqual(ids, [f'test/video{v}' for v in (0, 2, 4, 1, 3)])
        np.testing.assert_array_equal(labels, [v % _NUM_CLASSES for v in (0, 2, 4, 1, 3)])
        # The stored logits are the model's own on the same inputs.
        features, _ = next(iter(_dataset_fn(self.data_dir)(
            split='test', training=False, modalities=(stream,), batch_size=1,
            num_crops=num_crops)))
        expected = self.models[stream].predict_on_batch({stream: features[stream]})
        np.testing.assert_allclose(logits[0], expected[0], rtol=1e-4, atol=1e-5)
        top1 = np.mean(np.argmax(logits, 1) == labels)
        self.assertAlmostEqual(result['top1'], top1)
        self.assertEqual(result['top5'], 1.0)  # only 3 classes
        self.assertEqual(result['num_videos'], _NUM_VIDEOS)
        self.assertBetween(result['mean_class_accuracy'], 0.0, 1.0)

    @parameterized.parameters(('rgb', 5, False), ('flow', 1, True))
    def test_normalize_on_device_gives_the_same_scores(self, stream, num_crops,
                                                       other_means):
        if other_means:  # the device reads make_dataset's parity switches
            gin.bind_parameter('make_dataset.bgr_means', (1.0, 2.0, 3.0))
            gin.bind_parameter('make_dataset.convert_before_resize', False)
        scores = {}
        for on_device in (False, True):
            result = evaluate.evaluate(
                workdir=self.workdir, stream=stream, split='test',
                num_crops=num_crops, batch_size=2,
                normalize_on_device=on_device,
                make_dataset_fn=_dataset_fn(self.data_dir))
            scores[on_device] = fuse.read_scores(result['scores_path'])
        np.testing.assert_allclose(scores[True][0], scores[False][0],
                                   rtol=1e-5, atol=1e-6)
        self.assertEqual(scores[True][1], scores[False][1])

    def test_deterministic_and_gin_configurable(self):
        gin.bind_parameter('evaluate.split', 'test')
        gin.bind_parameter('evaluate.batch_size', _NUM_VIDEOS)
        first = evaluate.evaluate(workdir=self.workdir, stream='rgb',
                                  make_dataset_fn=_dataset_fn(self.data_dir))
        a = fuse.read_scores(first['scores_path'])[0]
        evaluate.evaluate(workdir=self.workdir, stream='rgb',
                          make_dataset_fn=_dataset_fn(self.data_dir))
        np.testing.assert_array_equal(a, fuse.read_scores(first['scores_path'])[0])

    def test_multi_label_reports_map(self):
        result = evaluate.evaluate(
            workdir=self.workdir, stream='rgb', split='train', batch_size=2,
            make_dataset_fn=_dataset_fn(self.multi_dir))
        self.assertContainsSubset({'top1', 'mAP', 'wAP'}, set(result))
        with h5py.File(result['scores_path'], 'r') as f:
            self.assertEqual(f['labels'].shape, (_NUM_VIDEOS, _NUM_CLASSES))
            self.assertEqual(int(np.sum(f['labels'][()])), 2 * _NUM_VIDEOS)

    def test_cli_evaluates_every_stream(self):
        bindings = [f"make_dataset.data_dir = '{self.data_dir}'",
                    'make_dataset.num_frames = 4', 'make_dataset.flow_stack = 2',
                    'make_dataset.image_size = 24',
                    'make_dataset.resize_to = (32, 40)',
                    "evaluate.split = 'test'", 'evaluate.batch_size = 5']
        # An operative_config.gin imports the entry point's own module by
        # name; that must not register its configurables a second time.
        config = self.create_tempfile(
            'operative_config.gin',
            content='import avlad_tf.evaluate\n' + '\n'.join(bindings[:3]))
        out = subprocess.run(
            [sys.executable, '-m', 'avlad_tf.evaluate', f'--workdir={self.workdir}',
             f'--gin_file={config.full_path}']
            + [f'--gin_bindings={b}' for b in bindings[3:]],
            capture_output=True, text=True, cwd=os.path.dirname(
                os.path.dirname(os.path.abspath(__file__))),
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
        self.assertEqual(out.returncode, 0, out.stderr[-2000:])
        lines = out.stdout.splitlines()
        self.assertLen(lines, 2)
        self.assertRegex(lines[0], r'^rgb test 1 crop\(s\), 5 videos: top1 \d+\.\d\d, '
                         r'top5 100\.00, mean_class_accuracy')
        self.assertTrue(lines[1].startswith('flow test 1 crop(s)'))

    def test_missing_model_names_streams(self):
        with self.assertRaisesRegex(FileNotFoundError,
                                    r"fused/model.keras does not exist .*'rgb'"):
            evaluate.evaluate(workdir=self.workdir, stream='fused', split='test',
                              make_dataset_fn=_dataset_fn(self.data_dir))


if __name__ == '__main__':
    absltest.main()
