"""TFDS image classification sets through TFDS's array-record data sources (no TensorFlow).

``load("mnist")`` and friends read the prepared TFDS files: the train split is split again
(stratified) into train and validation, TFDS's test split is the test set, and images become
float32 NHWC in [0, 1].
"""

from __future__ import annotations

import numpy as np

from jaxdl.data.dataset import ArrayDataset, DatasetInfo, Splits
from jaxdl.data.sampling import stratified_split

IMAGE_SETS = ("mnist", "fashion_mnist", "cifar10", "cifar100", "emnist")


def _not_prepared(name: str, data_dir, error: Exception) -> FileNotFoundError:
    where = data_dir or "the default TFDS folder (~/tensorflow_datasets or $TFDS_DATA_DIR)"
    return FileNotFoundError(
        f"TFDS data set {name!r} is not prepared in {where}. Download it once on a machine "
        f"with internet: jaxdl.data.load({name!r}, download=True) (or `tfds build {name}`), "
        f"then pass data_dir= pointing at that folder. ({type(error).__name__}: {error})"
    )


def _read(source) -> tuple[np.ndarray, np.ndarray]:
    examples = [source[i] for i in range(len(source))]
    x = np.stack([np.asarray(e["image"]) for e in examples])
    y = np.array([int(e["label"]) for e in examples], np.int32)
    return x, y


def load_tfds_images(
    name: str,
    *,
    seed: int = 0,
    validation_fraction: float = 0.1,
    data_dir: str | None = None,
    download: bool = False,
) -> Splits:
    """Load a TFDS image classification set as :class:`Splits` of float32 NHWC images."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
        if download:
            builder.download_and_prepare()
        train = tfds.data_source(name, split="train", data_dir=data_dir, download=False)
        test = tfds.data_source(name, split="test", data_dir=data_dir, download=False)
    except Exception as error:  # TFDS raises several types for a missing or unreachable set
        raise _not_prepared(name, data_dir, error) from error
    features = builder.info.features
    x, y = _read(train)
    x_test, y_test = _read(test)
    scale = lambda images: images.astype(np.float32) / 255.0
    fit, validation = stratified_split(y, (1 - validation_fraction, validation_fraction), seed)
    info = DatasetInfo(
        name,
        features["label"].num_classes,
        tuple(x.shape[1:]),
        tuple(features["label"].names),
        description=f"TFDS {name}",
    )
    return Splits(
        ArrayDataset(scale(x[fit]), y[fit]),
        ArrayDataset(scale(x[validation]), y[validation]),
        ArrayDataset(scale(x_test), y_test),
        info,
    )
