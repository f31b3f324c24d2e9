"""Tests for experiments/run_table.py: Tables 2b and 3a end to end, very short."""

import os
import shutil
import tempfile
from unittest import mock

from absl.testing import absltest
import gin

from experiments import run_table
from tests import fake_data

_OVERLAY = os.path.join(run_table.REPO, 'experiments', 'toy_overlay.gin')
# On top of the toy overlay: tiny fake records (the toy dataset's on-disk
# format, but seconds to write instead of minutes of TV-L1) and 2 + 2 updates.
_BINDINGS = [
    'NUM_FRAMES = 4', 'IMAGE_SIZE = 24', 'FLOW_STACK = 2',
    'train.prepare_toy_dataset = False',
    'make_dataset.resize_to = (32, 40)',
    'build_model.num_clusters = 2',
    'init_centers.num_frames = 8', 'init_centers.num_init = 1',
    'train_stream.stage_steps = (2, 2)', 'train_stream.batch_size = 2',
    'train_stream.accumulation_steps = 1', 'train_stream.jit_compile = False',
    'train_stream.checkpoint_every = 2', 'train_stream.assignments_every = 2',
    'train_stream.kmeans_batch_size = 4',
]


class HeaderTest(absltest.TestCase):

  def test_every_table_has_rows_with_headers(self):
    for table in ('1', 'K', '2a', '2b', '3a', '3b', '6', '4', '5'):
      rows = run_table.find_rows(table)
      for row in rows:
        self.assertIn(row['dataset'], ('hmdb51', 'ucf101', 'charades'))
        self.assertTrue(row['paper'] is not None or row['paper_note'],
                        row['file'])
    self.assertEqual([r['paper'] for r in run_table.find_rows('3a')],
                     [56.0, 64.8, 66.9])
    # Table 4: splits of one row are grouped, iDT rows reuse the plain run.
    rows = run_table.find_rows('4')
    self.assertLen(rows, 12)
    idt = [r for r in rows if r['idt']]
    self.assertLen(idt, 6)
    self.assertTrue(all(r['run'] + '_idt.gin' == r['file'] for r in idt))

  def test_markdown_mean_and_std_over_splits(self):
    rows = run_table.find_rows('6')
    results = {r['file']: {'value': v} for r, v in
               zip(rows, [60.0, 62.0, 64.0, 70.0, 71.0, 72.0])}
    text = run_table.markdown_table('6', rows, results, note='toy')
    self.assertIn('| ActionVLAD late fusion, 1 crop', text)
    self.assertIn('62.0 ± 2.0 (3 splits)', text)
    self.assertIn('71.0 ± 1.0 (3 splits)', text)
    self.assertIn('`table6_hmdb51_split2_5crop.gin`', text)

  def test_missing_header_line(self):
    path = os.path.join(tempfile.mkdtemp(), 'table9_x.gin')
    with open(path, 'w') as f:
      f.write("# Table 9, row 1: x.\ninclude 'base.gin'\n")
    with self.assertRaisesRegex(ValueError, 'no "# Dataset" line'):
      run_table.parse_header(path)


class RunTableTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, self.root)
    self.addCleanup(gin.clear_config)
    self.data_dir = fake_data.write_fake_dataset(
        os.path.join(self.root, 'data'), num_videos=4, num_frames=10,
        num_classes=2, content='pattern')

  def _run(self, table):
    return run_table.run_table(
        table, data_dirs={'hmdb51': self.data_dir},
        runs_dir=os.path.join(self.root, 'runs'), overlays=[_OVERLAY],
        bindings=_BINDINGS, note='Fake data, not the paper\'s.')

  def test_tables_2b_and_3a_filled_and_rerun_skips(self):
    for table, names in (('2b', ('average pooling', 'max pooling',
                                 'ActionVLAD')),
                         ('3a', ('concat fusion', 'early fusion',
                                 'late fusion'))):
      text, results = self._run(table)
      self.assertNotIn('failed', text)
      self.assertNotIn('not run', text)
      self.assertLen(results, 3)
      for name, value in zip(names, [r['value'] for r in results.values()]):
        self.assertIn(f'| {name} (', text)
        self.assertBetween(value, 0.0, 100.0)
      rows = [l for l in text.splitlines() if '.gin`' in l]
      self.assertLen(rows, 3)
      for line in rows:
        self.assertRegex(line, r'\| \d+\.\d \| [+-]\d+\.\d \|$')
    # The late-fusion row trained both streams and fused their scores.
    late = os.path.join(self.root, 'runs', 'table3a_fusion_late', 'scores')
    self.assertCountEqual(os.listdir(late),
                          ['rgb_test_1crop.h5', 'flow_test_1crop.h5'])
    # Finished rows are skipped: no training on a re-run.
    with mock.patch('avlad_tf.training.loop.train',
                    side_effect=AssertionError('retrained')):
      again, _ = self._run('2b')
    self.assertNotIn('failed', again)


if __name__ == '__main__':
  absltest.main()
