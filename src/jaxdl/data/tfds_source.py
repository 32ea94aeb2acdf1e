"""TFDS data sets through TFDS's array-record data sources (no TensorFlow).

``load("mnist")`` and friends read the prepared TFDS files into memory: the train split is
split again (stratified) into train and validation, TFDS's test split is the test set.
Images become float32 NHWC in [0, 1]; the reviews of ``imdb_reviews`` become (N, max_len)
int32 word ids of a vocabulary built on the training split alone.

``stream(name, split)`` reads the same files record by record through a
:class:`jaxdl.data.Pipeline`, for data sets that do not fit in memory.
"""

from __future__ import annotations

import re

import numpy as np

from jaxdl.data.dataset import ArrayDataset, DatasetInfo, Splits
from jaxdl.data.pipeline import Pipeline
from jaxdl.data.sampling import stratified_split
from jaxdl.data.text import Vocabulary

IMAGE_SETS = ("mnist", "fashion_mnist", "cifar10", "cifar100", "emnist")
TEXT_SETS = ("imdb_reviews",)
TFDS_SETS = IMAGE_SETS + TEXT_SETS


# The pip packages of modules the TFDS path imports whose names differ from the module's
_PIP_NAMES = {"tree": "dm-tree", "google": "protobuf", "PIL": "pillow"}


def _missing_module(error: BaseException) -> ModuleNotFoundError | None:
    """The ModuleNotFoundError behind ``error``, the one naming its module if any: TFDS
    re-raises it with a prefix of its own and without the module's name."""
    found = []
    while error is not None and len(found) < 32:
        if isinstance(error, ModuleNotFoundError):
            found.append(error)
        error = error.__cause__ or error.__context__
    return next((e for e in found if e.name), found[0] if found else None)


def _missing_package(name: str, missing: ModuleNotFoundError) -> ModuleNotFoundError:
    named = re.search(r"No module named '([^']+)'", str(missing))
    module = (missing.name or (named.group(1) if named else str(missing))).split(".")[0]
    if module == "tensorflow":
        return ModuleNotFoundError(
            f"Preparing the TFDS data set {name!r} needs TensorFlow (TFDS encodes its records "
            'with it); install it with: pip install "jaxdl[tfds-build]". Reading sets that '
            f"are prepared already needs no TensorFlow. ({missing})",
            name=module,
        )
    package = _PIP_NAMES.get(module, module)
    return ModuleNotFoundError(
        f"The TFDS data set {name!r} cannot be read: tensorflow-datasets imports the module "
        f"{module!r}, which is not installed. Install it with: pip install {package} "
        f"(reinstalling jaxdl installs it too). ({missing})",
        name=module,
    )


def _not_prepared(name: str, data_dir, error: Exception) -> FileNotFoundError:
    where = data_dir or "the default TFDS folder (~/tensorflow_datasets or $TFDS_DATA_DIR)"
    return FileNotFoundError(
        f"TFDS data set {name!r} is not prepared in {where}. Download it once on a machine "
        f"with internet: jaxdl.data.load({name!r}, download=True) (or `tfds build {name} "
        f"--file_format=array_record`), then pass data_dir= pointing at that folder. "
        f"({type(error).__name__}: {error})"
    )


def _prepared_without_random_access(name: str, builder, tfds) -> ValueError | None:
    """The error for a set TFDS prepared in a format it cannot read by index (TFRecord, the
    format of ``tfds build`` and of TensorFlow's ``tfds.load``), or None."""
    try:  # an unprepared builder names TFDS's default format: only prepared files count
        formats = builder.info.available_file_formats() if builder.is_prepared() else set()
    except Exception:  # a builder that cannot tell: the not-prepared message stands
        return None
    readable = set(tfds.core.FileFormat.with_random_access())
    if not formats or formats & readable:
        return None
    found = ", ".join(sorted(f.value for f in formats))
    return ValueError(
        f"TFDS data set {name!r} is prepared in {builder.data_dir} as {found}, which TFDS "
        "cannot read by index without TensorFlow; jaxdl reads array_record files. Convert it "
        "once, in place (TFDS writes array_record files beside the TFRecord ones, which jaxdl "
        "then reads), with TFDS's command line (it needs TensorFlow and the packages it "
        'imports: pip install "jaxdl[tfds-build]"): '
        f"tfds convert_format --dataset_version_dir={builder.data_dir} "
        "--out_file_format=array_record"
    )


def _offer_listed_formats(info, tfds) -> None:
    """Let ``info`` offer the alternative file formats its dataset_info.json lists.

    ``tfds convert_format`` converts a prepared set in place: it writes the new format's
    files beside the old ones and adds the format to ``alternativeFileFormats`` in
    dataset_info.json, keeping ``fileFormat``. tensorflow-datasets (4.9.10) restores that list
    into the info's proto but not into ``info.alternative_file_formats``, the formats its data
    sources choose from, so a TFRecord set converted to array_record would still read as
    TFRecord alone.
    """
    proto = getattr(info, "as_proto", None)
    listed = list(getattr(proto, "alternative_file_formats", ()))
    offered = set(getattr(info, "alternative_file_formats", ()))
    for value in listed:
        try:
            file_format = tfds.core.FileFormat.from_value(value)
        except ValueError:  # a format this TFDS does not know
            continue
        if file_format not in offered:
            info.add_alternative_file_format(file_format)  # adds it to the proto again
            offered.add(file_format)
    if listed and list(proto.alternative_file_formats) != listed:
        del proto.alternative_file_formats[:]  # the proto as read from dataset_info.json
        proto.alternative_file_formats.extend(listed)


def data_source(name: str, split: str, *, data_dir: str | None = None, download: bool = False):
    """(TFDS random-access data source of ``split``, the data set's ``tfds`` info).

    With ``download=True`` a set not prepared yet is downloaded and prepared as array_record
    files, the format TFDS's data sources read by index.
    """
    try:
        import tensorflow_datasets as tfds
    except ModuleNotFoundError as error:
        raise _missing_package(name, error) from error

    builder = None
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        _offer_listed_formats(builder.info, tfds)  # a set `tfds convert_format` converted
        if download:
            builder.download_and_prepare(file_format="array_record")
        # the builder's own data source: tfds.data_source would build one more builder, whose
        # info offers only the format dataset_info.json names first
        source = builder.as_data_source(split=split)
    except Exception as error:  # TFDS raises several types for a missing or unreachable set
        missing = _missing_module(error)
        if missing is not None:
            raise _missing_package(name, missing) from error
        unreadable = builder and _prepared_without_random_access(name, builder, tfds)
        if unreadable:
            raise unreadable from error
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


def float_images(images) -> np.ndarray:
    """(N, H, W, C) float32 in [0, 1] from N uint8 images (a list or an array); grey images
    of shape (H, W) get a channel axis of 1."""
    x = np.stack(images) if isinstance(images, list | tuple) else np.asarray(images)
    if x.ndim == 3:
        x = x[..., None]
    return x.astype(np.float32) / np.float32(255.0)


def hold_out(y: np.ndarray, validation_fraction: float, seed: int) -> list[np.ndarray]:
    """Sorted (fit, validation) indices of a train split, stratified by label."""
    return stratified_split(y, (1 - validation_fraction, validation_fraction), seed)


def encode_texts(texts, test_texts, fit, vocab_size: int, max_len: int):
    """(vocabulary built on ``texts[fit]``, (N, max_len) ids of ``texts``, of ``test_texts``)."""
    vocabulary = Vocabulary.build([texts[i] for i in fit], vocab_size)
    return vocabulary, vocabulary.encode(texts, max_len), vocabulary.encode(test_texts, max_len)


def text_extra(vocabulary: Vocabulary) -> dict:
    """``DatasetInfo.extra`` of a set of word ids."""
    return {"vocabulary": vocabulary, "vocab_size": len(vocabulary), "pad_id": 0}


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
    (x, y), (x_test, y_test) = _read(train, "image"), _read(test, "image")
    x, x_test = float_images(x), float_images(x_test)
    fit, validation = hold_out(y, validation_fraction, seed)
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
    fit, validation = hold_out(y, validation_fraction, seed)
    vocabulary, x, x_test = encode_texts(texts, test_texts, fit, vocab_size, max_len)
    info = _info(name, tfds_info, (max_len,), scalable=False, extra=text_extra(vocabulary))
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
    """A :class:`Pipeline` reading ``split`` of a TFDS set (or, for a name "hf:NAME", of a
    Hugging Face set: :func:`jaxdl.data.hf_source.stream_hf`) record by record.

    Image records become float32 (H, W, C) in [0, 1] and int32 labels. Text records become
    (max_len,) int32 word ids of ``vocabulary`` (default: one built on the whole train
    split, read once). ``pipeline_options`` go to :class:`Pipeline` (``augment=``,
    ``num_threads=``, ...); ``split`` takes TFDS's slicing syntax ("train[:90%]").
    """
    if isinstance(name, str) and name.startswith("hf:"):
        from jaxdl.data.hf_source import stream_hf  # imports Hugging Face datasets

        return stream_hf(
            name, split, data_dir=data_dir, download=download, vocabulary=vocabulary,
            max_len=max_len, **pipeline_options,
        )  # fmt: skip
    if name not in TFDS_SETS:
        raise ValueError(
            f"stream: expected a TFDS set of {', '.join(TFDS_SETS)} or 'hf:NAME' (a Hugging "
            f"Face set), got {name!r}"
        )
    source, tfds_info = data_source(name, split, data_dir=data_dir, download=download)
    if name in TEXT_SETS:
        if vocabulary is None:
            train = source if split == "train" else data_source(name, "train", data_dir=data_dir)[0]
            vocabulary = Vocabulary.build(_read(train, "text")[0])
        decode = lambda r: (vocabulary.encode([r["text"]], max_len)[0], np.int32(r["label"]))
        info = _info(name, tfds_info, (max_len,), scalable=False, extra=text_extra(vocabulary))
    else:
        decode = None  # TFDS image dicts: Pipeline's default
        info = _info(name, tfds_info, tfds_info.features["image"].shape)
    return Pipeline(source, decode=decode, info=info, **pipeline_options)
