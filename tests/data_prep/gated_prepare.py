"""`python -m data_prep.prepare` whose videos past a point wait at a gate, so
that a test can stop a run midway however loaded the machine is.

    python -m tests.data_prep.gated_prepare GATE_DIR <data_prep.prepare's flags>

runs `data_prep.prepare` unchanged except that `shards.encode_task`, the
per-video work of every executor, is a `Gate` (set up by `command`). A
gated video, and so its shard, waits until the test calls `open_gate`
(after its signal, to let the workers go on as they would) or ends (its
temporary directory, holding GATE_DIR, is removed: the video then fails).
So the test waits for a finished shard and stops the run, which cannot
have finished: no timing is involved, and the tests' deadlines only end
a hang.

How the gate reaches the processes that encode:
  - the local pool, one worker: in this process, which looks
    `shards.encode_task` up per video;
  - the local pool's worker processes, forked or spawned: the pool pickles
    the `Gate` it looked up, by reference to this module (never run as
    `__main__` for that: see the end) and with its settings;
  - Beam: `beam_writer` binds `shards.encode_task` as `build`'s default
    `encode_fn` when imported, which `main` makes happen after the patch;
    `PrepareShard` pickles it to its spawned subprocess as above.
Nothing in data_prep/ knows of the gate.
"""

import json
import logging
import os
import sys
import time

from avlad_tf import cli

if __name__ == "__main__":
    cli.start_quietly()  # as data_prep.prepare does: before TensorFlow

from absl import flags

from data_prep import shards

CONFIG = "gate.json"
OPEN = "open"  # created by `open_gate`
MAX_WAIT_S = 900  # only ends a wait whose test is long gone
# Bound now, on import: `main` replaces it, and a spawned worker imports
# this module afresh (and never runs `main`).
_ENCODE_TASK = shards.encode_task


def command(directory, *args, passes=None, held=()):
    """Creates the gate `directory` and returns the command that prepares
    with `args` (`data_prep.prepare`'s flags) behind it.

    Args:
        directory: the gate, inside the test's temporary directory: a gated
            video waits until `open_gate(directory)`, or fails once the
            directory is gone.
        passes: if set, only the first `passes` videos to start encoding
            (in any process) go through; later ones wait. For Beam, which
            writes each shard right after its own videos, in an order of
            the runner's: `passes=1` finishes exactly one shard.
        held: video ids that wait whatever their turn. For the local pool,
            whose parent writes shards in plan order: with workers > 1 a
            later video may start before the first shard's, so a count
            could hold the first shard back; ids cannot.
    """
    os.makedirs(directory)
    with open(os.path.join(directory, CONFIG), "w") as f:
        json.dump({"passes": passes, "held": sorted(held)}, f)
    return [sys.executable, "-m", __name__, directory, *args]


class Gate:
    """`shards.encode_task`, except that videos held or past `passes` wait
    for `open_gate` (`command`). A class: it travels, settings included, to
    the processes that encode."""

    def __init__(self, directory, passes=None, held=()):
        self.directory = directory
        self.passes = passes
        self.held = frozenset(held)

    def _claim_a_pass(self):
        if self.passes is None:
            return True
        for index in range(self.passes):
            try:  # atomic across processes: only one creates the file
                os.close(os.open(self._path(f"pass-{index}"), os.O_CREAT | os.O_EXCL))
                return True
            except FileExistsError:
                continue
        return False

    def _path(self, name):
        return os.path.join(self.directory, name)

    def __call__(self, item, options):
        if item.video_id in self.held or not self._claim_a_pass():
            self._wait(item)
        return _ENCODE_TASK(item, options)

    def _wait(self, item):
        deadline = time.monotonic() + MAX_WAIT_S
        while not os.path.exists(self._path(OPEN)):
            if not os.path.isdir(self.directory) or time.monotonic() > deadline:
                raise RuntimeError(f"{item.video_id}: its gate was never opened")
            time.sleep(0.05)


def open_gate(directory):
    """Lets the waiting videos go on (`command`'s gate `directory`)."""
    with open(os.path.join(directory, OPEN), "w"):
        pass


def main():
    # Imported here: it defines its flags, which tests that import this
    # module (for `command`) must not.
    from data_prep import prepare  # noqa: PLC0415

    directory = sys.argv.pop(1)
    sys.argv[0] = prepare.__file__  # messages name `prepare`, as unwrapped
    with open(os.path.join(directory, CONFIG)) as f:
        gate = Gate(directory, **json.load(f))
    shards.encode_task = gate
    if any(arg.startswith("--runner") for arg in sys.argv[1:]):
        # Imported only now, so that `build` encodes with the gate; prepare
        # then finds it imported. As in prepare: without Beam's warnings.
        assert "data_prep.beam_writer" not in sys.modules, "imported too early"
        with cli.root_log_level(logging.ERROR):
            from data_prep import beam_writer  # noqa: PLC0415

        assert beam_writer.build.__kwdefaults__["encode_fn"] is gate
    flags.mark_flags_as_required(["dataset", "input_dir", "output_dir"])
    cli.run(prepare.main, pass_unknown=True)


if __name__ == "__main__":
    # This copy of the module is `__main__`, whose classes Beam's pickler
    # would copy by value: the `Gate` is taken from the module by its name.
    from tests.data_prep import gated_prepare  # noqa: PLC0415

    gated_prepare.main()
