"""Tests for avlad_tf.release.names: the release's checkpoint variable names."""

from absl.testing import absltest
from absl.testing import parameterized

from avlad_tf.release import names

# VGG-16's convolutions per block (conv1: 2, conv2: 2, conv3..5: 3).
_VGG_BLOCKS = {1: 2, 2: 2, 3: 3, 4: 3, 5: 3}


class BookkeepingTest(parameterized.TestCase):
    @parameterized.parameters(
        "global_step",
        "stream0/global_step",
        "beta1_power",
        "beta2_power_1",
        "stream1/beta2_power",
        "stream0/vgg_16/conv1/conv1_1/weights/Adam",
        "stream0/vgg_16/conv1/conv1_1/weights/Adam_1",
        "vgg_16/fc8/biases/RMSProp_1",
        "NetVLAD/centers/Momentum",
        "vgg_16/fc6/weights/ExponentialMovingAverage",
    )
    def test_optimizer_state_and_counters(self, name):
        self.assertTrue(names.is_bookkeeping(name))

    @parameterized.parameters(
        "vgg_16/conv1/conv1_1/weights",
        "NetVLAD/vlad_W",
        "my_global_step",
        "beta1_power/extra",
        "vgg_16/Adam_layer/weights",
        "classifier/logits/biases",
    )
    def test_model_variables(self, name):
        self.assertFalse(names.is_bookkeeping(name))


class SplitStreamTest(parameterized.TestCase):
    @parameterized.parameters(
        ("stream0/vgg_16/conv1/conv1_1/weights", 0, "vgg_16/conv1/conv1_1/weights"),
        ("stream12/NetVLAD/centers", 12, "NetVLAD/centers"),
        ("vgg_16/fc8/biases", None, "vgg_16/fc8/biases"),
        ("streamX/NetVLAD/centers", None, "streamX/NetVLAD/centers"),
        ("scope/stream0/NetVLAD/centers", None, "scope/stream0/NetVLAD/centers"),
    )
    def test_split(self, name, index, rest):
        self.assertEqual(names.split_stream(name), (index, rest))


class TargetForTest(parameterized.TestCase):
    def test_every_vgg_convolution(self):
        for block, convs in _VGG_BLOCKS.items():
            for index in range(1, convs + 1):
                prefix = f"vgg_16/conv{block}/conv{block}_{index}"
                layer = f"block{block}_conv{index}"
                self.assertEqual(
                    names.target_for(prefix + "/weights"),
                    names.Target(layer, "kernel", flatten=False),
                )
                self.assertEqual(
                    names.target_for(prefix + "/biases"), names.Target(layer, "bias")
                )

    def test_a_convolution_in_the_wrong_block_is_no_target(self):
        self.assertIsNone(names.target_for("vgg_16/conv3/conv2_1/weights"))

    @parameterized.parameters("fc6", "fc7", "fc8")
    def test_fully_connected_kernels_may_be_flattened(self, layer):
        self.assertEqual(
            names.target_for(f"vgg_16/{layer}/weights"),
            names.Target(layer, "kernel", flatten=True),
        )
        self.assertEqual(
            names.target_for(f"vgg_16/{layer}/biases"),
            names.Target(layer, "bias", flatten=False),
        )

    def test_netvlad_and_classifier(self):
        self.assertEqual(
            names.target_for("NetVLAD/centers"), names.Target("netvlad", "centers")
        )
        self.assertEqual(
            names.target_for("NetVLAD/vlad_W"),
            names.Target("netvlad", "assignment_kernel", flatten=True),
        )
        self.assertEqual(
            names.target_for("NetVLAD/vlad_B"),
            names.Target("netvlad", "assignment_bias"),
        )
        self.assertEqual(
            names.target_for("classifier/logits/weights"),
            names.Target("logits", "kernel"),
        )
        self.assertEqual(
            names.target_for("classifier/logits/biases"),
            names.Target("logits", "bias"),
        )
        self.assertEqual(names.NETVLAD_LAYER, "netvlad")
        self.assertEqual(names.LOGITS_LAYER, "logits")

    @parameterized.parameters(
        "stream0/vgg_16/conv1/conv1_1/weights",  # the stream scope is split first
        "vgg_16/conv10/conv10_1/weights",
        "vgg_16/fc9/weights",
        "vgg_16/fc6/weights/Adam",
        "NetVLAD/other",
        "classifier/logits/other",
        "",
    )
    def test_other_names_have_no_target(self, name):
        self.assertIsNone(names.target_for(name))

    def test_a_stream_scoped_name_after_split_stream(self):
        index, rest = names.split_stream("stream1/vgg_16/conv5/conv5_3/weights")
        self.assertEqual(index, 1)
        self.assertEqual(names.target_for(rest), names.Target("block5_conv3", "kernel"))

    def test_targets_are_frozen(self):
        target = names.Target("logits", "bias")
        with self.assertRaises(AttributeError):
            target.layer = "other"


if __name__ == "__main__":
    absltest.main()
