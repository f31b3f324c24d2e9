"""Tiny training configuration shared by the training tests.

The tiny backbone on 16x16 crops of 2-frame clips from `tests/fake_data`
records: a whole two-stage run takes seconds.
"""

import gin

from tests import fake_data

BINDINGS = """
build_model.backbone = 'tiny'
build_model.image_size = 16
build_model.num_clusters = 4
build_model.flow_stack = 2
build_model.weights = None
make_dataset.num_frames = 2
make_dataset.image_size = 16
make_dataset.resize_to = (20, 24)
make_dataset.flow_stack = 2
make_dataset.shuffle_buffer = 4
train_stream.train_split = 'train'
train_stream.stage_steps = (2, 2)
train_stream.batch_size = 2
train_stream.accumulation_steps = 2
train_stream.checkpoint_every = 1
train_stream.log_every = 1
train_stream.assignments_every = 1
train_stream.jit_compile = False
init_centers.num_random_frames = 4
init_centers.num_init = 1
"""


def configure(extra=""):
    """Clears gin and binds the tiny configuration plus `extra`."""
    from avlad_tf.training import loop  # noqa: F401  registers configurables

    gin.clear_config()
    gin.parse_config(BINDINGS + extra)


def write_data(directory):
    """Four textured fake videos of 12 frames, 3 classes."""
    return fake_data.write_fake_dataset(directory, num_videos=4, content="pattern")
