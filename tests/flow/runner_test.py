"""avlad_tf.flow.runner: the one-call `tvl1_flow` compiles itself once per
kind of call and reuses it; `PairFlow` batches many pairs."""

from absl.testing import absltest
import keras
import numpy as np
import pytest

from avlad_tf import flow
from avlad_tf.flow import runner
from avlad_tf.flow import synthetic
from avlad_tf.flow import tvl1

# Few iterations: what is tested is the compiling, not the algorithm.
_FAST = {"nscales": 2, "warps": 1, "outer_iterations": 1, "inner_iterations": 3}


def _pair(height=24, width=32):
    first, second, _ = synthetic.smooth_motion(height, width)
    return first, second


class TVL1FlowTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        runner._compiled.cache_clear()

    def test_is_the_public_function(self):
        self.assertIs(flow.tvl1_flow, runner.tvl1_flow)

    @pytest.mark.slow  # compiles TV-L1 with XLA
    def test_compiled_flow_is_the_ops_flow(self):
        first, second = _pair()
        batch = np.stack([first, second, first]), np.stack([second, first, first])
        compiled = runner.tvl1_flow(*batch, **_FAST)
        ops = keras.ops.convert_to_numpy(tvl1.flow_ops(*batch, **_FAST))
        self.assertIsInstance(compiled, np.ndarray)
        self.assertEqual(compiled.shape, (3, 24, 32, 2))
        # XLA may fuse float arithmetic differently from op-by-op execution.
        np.testing.assert_allclose(compiled, ops, atol=1e-3)
        np.testing.assert_array_equal(compiled[2], 0.0)  # a pair without motion

    @pytest.mark.slow  # compiles TV-L1 with XLA
    def test_compiles_once_per_kind_of_call(self):
        first, second = _pair()
        one = runner.tvl1_flow(first, second, **_FAST)
        again = runner.tvl1_flow(first, second, **_FAST)
        np.testing.assert_array_equal(one, again)
        self.assertEqual(one.shape, (24, 32, 2))
        info = runner._compiled.cache_info()
        self.assertEqual((info.misses, info.hits), (1, 1))
        # A single frame is a batch of one; another batch, dtype or parameter
        # is another compiled function.
        runner.tvl1_flow(first[None], second[None], **_FAST)
        self.assertEqual(runner._compiled.cache_info().misses, 1)
        runner.tvl1_flow(np.stack([first] * 2), np.stack([second] * 2), **_FAST)
        runner.tvl1_flow(first / 255.0, second / 255.0, **_FAST)
        runner.tvl1_flow(first, second, **dict(_FAST, warps=2))
        self.assertEqual(runner._compiled.cache_info().misses, 4)

    @pytest.mark.slow  # compiles TV-L1 with XLA
    def test_float_frames_are_scaled_as_uint8_ones(self):
        first, second = _pair()
        as_uint8 = runner.tvl1_flow(first, second, **_FAST)
        as_float = runner.tvl1_flow(first / 255.0, second / 255.0, **_FAST)
        np.testing.assert_allclose(as_float, as_uint8, atol=1e-3)

    def test_backend_tensors_get_the_plain_ops(self):
        first, second = _pair()
        flow_ = runner.tvl1_flow(
            keras.ops.convert_to_tensor(first),
            keras.ops.convert_to_tensor(second),
            **_FAST,
        )
        self.assertNotIsInstance(flow_, np.ndarray)
        self.assertEqual(runner._compiled.cache_info().misses, 0)

    def test_bad_frames_fail_before_compiling(self):
        with self.assertRaisesRegex(ValueError, "same shape"):
            runner.tvl1_flow(np.zeros((8, 8), "uint8"), np.zeros((8, 9), "uint8"))
        with self.assertRaisesRegex(ValueError, "at least 3x3"):
            runner.tvl1_flow(np.zeros((2, 8), "uint8"), np.zeros((2, 8), "uint8"))
        self.assertEqual(runner._compiled.cache_info().misses, 0)


class PairFlowTest(absltest.TestCase):
    @pytest.mark.slow  # compiles TV-L1 with XLA
    def test_padded_batches_give_each_pair_its_own_flow(self):
        first, second = _pair()
        # Three pairs in batches of two: the second batch is padded.
        firsts = np.stack([first, second, first])
        seconds = np.stack([second, first, first])
        flows = runner.PairFlow((24, 32), parameters=_FAST, batch_size=2)(
            firsts, seconds
        )
        self.assertEqual(flows.shape, (3, 24, 32, 2))
        alone = runner.tvl1_flow(firsts[:2], seconds[:2], **_FAST)
        np.testing.assert_array_equal(flows[:2], alone)  # the same compiled model
        np.testing.assert_array_equal(flows[2], 0.0)


if __name__ == "__main__":
    absltest.main()
