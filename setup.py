"""avlad_tf: ActionVLAD (Girdhar et al., CVPR 2017) in TensorFlow 2 / Keras 3."""

import setuptools

setuptools.setup(
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
    package_data={"avlad_tf": ["resources/**/*", "release/labels/*.txt"]},
    include_package_data=True,
    install_requires=[
        "tensorflow==2.21.*",
        # TF 2.21 no longer pulls TensorBoard in (PITFALLS.md 3.2).
        "tensorboard",
        # TV-L1 lives in the contrib build; never install opencv-python beside it.
        "opencv-contrib-python-headless",
        # gin-config's last release; gin.tf is broken on TF >= 2.16 and unused.
        "gin-config==0.5.0",
        "absl-py",
        "numpy",
        "matplotlib",
        "h5py",
        "tensorflow-datasets",
    ],
    extras_require={
        # jax: the test suite runs the model code on the JAX backend too.
        "test": ["pytest", "pytest-xdist", "jax"],
    },
)
