"""TFDS data sets through TFDS's array-record data sources (no TensorFlow).

``load("mnist")`` and friends read the prepared TFDS files into memory: the train split is
split again (stratified) into train and validation, TFDS's test split is the test set.
Images become float32 NHWC in [0, 1]; the reviews of ``imdb_reviews`` become (N, max_len)
int32 word ids of a vocabulary built on the training split alone.

``stream(name, split)`` reads the same files record by record through a
:class:`jaxdl.data.Pipeline`, for data sets that do not fit in memory.
"""

from __future__ import annotations

import numpy as np

from jaxdl.data.dataset import ArrayDataset, DatasetInfo, Splits
from jaxdl.data.pipeline import Pipeline
from jaxdl.data.sampling import stratified_split
from jaxdl.data.text import Vocabulary

IMAGE_SETS = ("mnist", "fashion_mnist", "cifar10", "cifar100", "emnist")
TEXT_SETS = ("imdb_reviews",)
TFDS_SETS = IMAGE_SETS + TEXT_SETS


def _not_prepared(name: str, data_dir, error: Exception) -> FileNotFoundError:
    where = data_dir or "the default TFDS folder (~/tensorflow_datasets or $TFDS_DATA_DIR)"
    return FileNotFoundError(
        f"TFDS data set {name!r} is not prepared in {where}. Download it once on a machine "
        f"with internet: jaxdl.data.load({name!r}, download=True) (or `tfds build {name}`), "
        f"then pass data_dir= pointing at that folder. ({type(error).__name__}: {error})"
    )


def data_source(name: str, split: str, *, data_dir: str | None = None, download: bool = False):
    """(TFDS random-access data source of ``split``, the data set's ``tfds`` info)."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
        if download:
            builder.download_and_prepare()
        source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    except Exception as error:  # TFDS raises several types for a missing or unreachable set
        raise _not_prepared(name, data_dir, error) from error
    return source, builder.info


def _read(source, field: str) -> tuple[list, np.ndarray]:
    """Every record's ``field`` and label, in order."""
    records = [source[i] for i in range(len(source))]
    return [r[field] for r in records], np.array([int(r["label"]) for r in records], np.int32)


def _info(name: str, tfds_info, input_shape, **fields) -> DatasetInfo:
    label = tfds_info.features["label"]
    return DatasetInfo(
        name, label.num_classes, tuple(input_shape), tuple(label.names),
        description=f"TFDS {name}", **fields,
    )  # fmt: skip


def _splits(x, y, x_test, y_test, fit, validation, info) -> Splits:
    return Splits(
        ArrayDataset(x[fit], y[fit]),
        ArrayDataset(x[validation], y[validation]),
        ArrayDataset(x_test, y_test),
        info,
    )


def load_tfds_images(
    name: str,
    *,
    seed: int = 0,
    validation_fraction: float = 0.1,
    data_dir: str | None = None,
    download: bool = False,
) -> Splits:
    """Load a TFDS image classification set as :class:`Splits` of float32 NHWC images."""
    train, tfds_info = data_source(name, "train", data_dir=data_dir, download=download)
    test, _ = data_source(name, "test", data_dir=data_dir)
    scale = lambda images: np.stack(images).astype(np.float32) / 255.0
    (x, y), (x_test, y_test) = _read(train, "image"), _read(test, "image")
    x, x_test = scale(x), scale(x_test)
    fit, validation = stratified_split(y, (1 - validation_fraction, validation_fraction), seed)
    return _splits(x, y, x_test, y_test, fit, validation, _info(name, tfds_info, x.shape[1:]))


def load_tfds_text(
    name: str,
    *,
    seed: int = 0,
    validation_fraction: float = 0.1,
    data_dir: str | None = None,
    download: bool = False,
    vocab_size: int = 20000,
    max_len: int = 256,
) -> Splits:
    """Load a TFDS text classification set as :class:`Splits` of (N, max_len) int32 word ids.

    The vocabulary (``info.extra["vocabulary"]``, a :class:`jaxdl.data.text.Vocabulary` of
    ``vocab_size`` ids, 0 padding and 1 unknown) is built on the training part of the train
    split only, so validation and test words it never saw become 1. Each text keeps its first
    ``max_len`` words, zero-padded: pass ``pad_id=0`` to ``TransformerClassifier``.
    """
    train, tfds_info = data_source(name, "train", data_dir=data_dir, download=download)
    test, _ = data_source(name, "test", data_dir=data_dir)
    (texts, y), (test_texts, y_test) = _read(train, "text"), _read(test, "text")
    fit, validation = stratified_split(y, (1 - validation_fraction, validation_fraction), seed)
    vocabulary = Vocabulary.build([texts[i] for i in fit], vocab_size)
    x, x_test = vocabulary.encode(texts, max_len), vocabulary.encode(test_texts, max_len)
    info = _info(
        name, tfds_info, (max_len,), scalable=False,
        extra={"vocabulary": vocabulary, "vocab_size": len(vocabulary), "pad_id": 0},
    )  # fmt: skip
    return _splits(x, y, x_test, y_test, fit, validation, info)


def load_tfds(name: str, **options) -> Splits:
    """``load_tfds_images`` or ``load_tfds_text``, by ``name``."""
    if name in TEXT_SETS:
        return load_tfds_text(name, **options)
    return load_tfds_images(name, **options)


def stream(
    name: str,
    split: str = "train",
    *,
    data_dir: str | None = None,
    download: bool = False,
    vocabulary: Vocabulary | None = None,
    max_len: int = 256,
    **pipeline_options,
) -> Pipeline:
    """A :class:`Pipeline` reading ``split`` of a TFDS set record by record.

    Image records become float32 (H, W, C) in [0, 1] and int32 labels. Text records become
    (max_len,) int32 word ids of ``vocabulary`` (default: one built on the whole train
    split, read once). ``pipeline_options`` go to :class:`Pipeline` (``augment=``,
    ``num_threads=``, ...); ``split`` takes TFDS's slicing syntax ("train[:90%]").
    """
    if name not in TFDS_SETS:
        raise ValueError(f"stream: expected a TFDS set of {', '.join(TFDS_SETS)}, got {name!r}")
    source, tfds_info = data_source(name, split, data_dir=data_dir, download=download)
    if name in TEXT_SETS:
        if vocabulary is None:
            train = source if split == "train" else data_source(name, "train", data_dir=data_dir)[0]
            vocabulary = Vocabulary.build(_read(train, "text")[0])
        decode = lambda r: (vocabulary.encode([r["text"]], max_len)[0], np.int32(r["label"]))
        extra = {"vocabulary": vocabulary, "vocab_size": len(vocabulary), "pad_id": 0}
        info = _info(name, tfds_info, (max_len,), scalable=False, extra=extra)
    else:
        decode = None  # TFDS image dicts: Pipeline's default
        info = _info(name, tfds_info, tfds_info.features["image"].shape)
    return Pipeline(source, decode=decode, info=info, **pipeline_options)
