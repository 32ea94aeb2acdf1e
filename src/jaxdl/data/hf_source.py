"""Hugging Face data sets (``datasets``, no TensorFlow) under names "hf:NAME".

``load("hf:ylecun/mnist")`` reads a set of the Hugging Face Hub, or a local folder of its
files (``data/train-*.parquet``, ``data/test-*.parquet``), through ``datasets.load_dataset``,
into memory, as the TFDS sets are read: the test split is the test set, and the train split
is split again (stratified) into train and validation unless the set has a validation split.
Images (an ``Image`` feature) become float32 NHWC in [0, 1], grey ones with a channel axis of
1; labels come from the ``ClassLabel`` feature, whose names become ``info.class_names``; a
text column becomes (N, max_len) int32 word ids of a :class:`jaxdl.data.text.Vocabulary`
built on the training part alone.

``stream_hf("hf:NAME", split)`` reads the same Arrow table record by record through a
:class:`jaxdl.data.Pipeline`, as ``jaxdl.data.stream`` does for TFDS sets.

``datasets`` is optional (``pip install 'jaxdl[hf]'``) and imported on first use. Its own
progress bars show downloads and preparation; jaxdl leaves them on.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

from jaxdl._checks import check_int, check_number, check_seed
from jaxdl.data.dataset import ArrayDataset, DatasetInfo, Splits
from jaxdl.data.pipeline import Pipeline
from jaxdl.data.sampling import stratified_split
from jaxdl.data.text import Vocabulary
from jaxdl.data.tfds_source import encode_texts, float_images, hold_out, text_extra

PREFIX = "hf:"
INSTALL = "pip install 'jaxdl[hf]' (or pip install datasets)"


def is_hf_name(name) -> bool:
    """Whether ``name`` names a Hugging Face set ("hf:NAME")."""
    return isinstance(name, str) and name.startswith(PREFIX)


def _datasets():
    try:
        import datasets
    except ImportError as error:
        raise ImportError(
            f"Hugging Face data sets (names 'hf:NAME') need the datasets package: {INSTALL}"
        ) from error
    return datasets


def _path(name: str) -> str:
    path = name[len(PREFIX) :] if is_hf_name(name) else name
    if not isinstance(name, str) or not path:
        raise ValueError(f"name: expected 'hf:NAME' (a Hub id or a local folder), got {name!r}")
    return path


@contextlib.contextmanager
def _offline(datasets):
    """Hub offline mode, for this call only: nothing is fetched, only the cache is read."""
    import huggingface_hub.constants as hub

    flags = [(datasets.config, "HF_HUB_OFFLINE"), (datasets.config, "HF_DATASETS_OFFLINE")]
    flags.append((hub, "HF_HUB_OFFLINE"))
    saved = [(module, attr, getattr(module, attr)) for module, attr in flags]
    try:
        for module, attr in flags:
            setattr(module, attr, True)
        yield
    finally:
        for module, attr, value in saved:
            setattr(module, attr, value)


def _not_cached(path: str, data_dir, error: Exception) -> FileNotFoundError:
    where = data_dir or "the default Hugging Face cache (~/.cache/huggingface or $HF_HOME)"
    name = PREFIX + path
    return FileNotFoundError(
        f"Hugging Face data set {path!r} is not in {where}, and download=False reads the "
        f"cache only. Download it once on a machine with internet: jaxdl.data.load({name!r}, "
        f"download=True) (pass the same data_dir= to keep it there), or point 'hf:' at a "
        f"local folder of its parquet files. ({type(error).__name__}: {error})"
    )


def open_hf(
    name: str,
    split: str | None = None,
    *,
    data_dir: str | None = None,
    download: bool = False,
    config: str | None = None,
    revision: str | None = None,
):
    """``datasets.load_dataset`` of "hf:NAME": a ``DatasetDict`` of every split, or the
    ``Dataset`` of ``split`` (slicing syntax allowed: "train[:90%]").

    Args:
      name: "hf:" and a Hub id ("ylecun/mnist") or a local folder of data files.
      split: one split, or None for all of them.
      data_dir: the ``datasets`` cache folder (``cache_dir``; default None: its own).
      download: fetch from the Hub what the cache lacks (default False: offline, the cache
        and local folders only).
      config: the set's configuration (``load_dataset``'s ``name``), if it has several.
      revision: a Hub branch, tag or commit.
    """
    datasets = _datasets()
    path = _path(name)
    local = os.path.exists(path)
    options = dict(split=split, cache_dir=data_dir, revision=revision)
    offline = _offline(datasets) if not (download or local) else contextlib.nullcontext()
    try:
        with offline:
            return datasets.load_dataset(path, config, **options)
    except (ConnectionError, FileNotFoundError, datasets.exceptions.DatasetNotFoundError) as e:
        if local or download:
            raise
        raise _not_cached(path, data_dir, e) from e


def _columns(features, name: str, input_column, label_column) -> tuple[str, str, str]:
    """(input column, its kind "image" or "text", ClassLabel column)."""
    datasets = _datasets()
    found = ", ".join(f"{k} ({type(v).__name__})" for k, v in features.items())
    if label_column is None:
        labels = [k for k, v in features.items() if isinstance(v, datasets.ClassLabel)]
        label_column = "label" if "label" in labels else (labels[0] if len(labels) == 1 else None)
    if label_column is None or not isinstance(features.get(label_column), datasets.ClassLabel):
        raise ValueError(
            f"label_column: expected a ClassLabel column of {name}, got {label_column!r}; "
            f"its columns: {found}"
        )
    if input_column is None:
        images = [k for k, v in features.items() if isinstance(v, datasets.Image)]
        texts = [
            k
            for k, v in features.items()
            if isinstance(v, datasets.Value) and v.dtype in ("string", "large_string")
        ]
        input_column = (images or texts or [None])[0] if len(images or texts) == 1 else None
    feature = features.get(input_column)
    if isinstance(feature, datasets.Image):
        return input_column, "image", label_column
    if isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string"):
        return input_column, "text", label_column
    raise ValueError(
        f"input_column: expected one Image or string column of {name}, got {input_column!r}; "
        f"its columns: {found}"
    )


def features_hf(name: str, *, data_dir: str | None = None, download: bool = False):
    """The features of "hf:NAME" as its Hub card, the ``datasets`` cache or the schema of
    its parquet files declare them, so that what a set holds is known before any example
    is read; only when none declares them is the set itself opened (prepared once into the
    cache, which :func:`load_hf` then reads again). ``data_dir`` and ``download`` are
    :func:`load_hf`'s."""
    datasets = _datasets()
    path = _path(name)
    local = os.path.exists(path)
    # as jaxdl.data.load reads: the Hub only with --download, otherwise the cache
    offline = contextlib.nullcontext() if download or local else _offline(datasets)
    try:
        with offline:
            builder = datasets.load_dataset_builder(path, cache_dir=data_dir)
    except (ConnectionError, FileNotFoundError):
        builder = None  # open_hf below raises what is missing and how to fetch it
    features = None if builder is None else builder.info.features
    train = [] if builder is None else (builder.config.data_files or {}).get("train", [])
    first = str(train[0]) if train else ""
    if features is None and first.endswith(".parquet") and os.path.isfile(first):
        import pyarrow.parquet as pq

        # the footer alone: datasets writes the features (Image, ClassLabel) into it
        features = datasets.Features.from_arrow_schema(pq.read_schema(first))
    if features is None:
        features = open_hf(name, "train", data_dir=data_dir, download=download)
        features = features.features
    return features


def input_kind(features, name: str, input_column=None, label_column=None) -> str:
    """What the input column of a set with ``features`` holds: "image" or "text" (the
    columns :func:`load_hf` would pick, or those named)."""
    return _columns(features, name, input_column, label_column)[1]


def _info(name: str, features, label_column: str, input_shape, **fields) -> DatasetInfo:
    label = features[label_column]
    return DatasetInfo(
        name, label.num_classes, tuple(input_shape), tuple(label.names),
        description=f"Hugging Face {_path(name)}", **fields,
    )  # fmt: skip


def _labels(dataset, column: str) -> np.ndarray:
    """(N,) int32 labels, read from the Arrow column alone (no image is decoded)."""
    return np.asarray(dataset.with_format("numpy")[column], np.int64).astype(np.int32)


def _images(dataset, column: str) -> np.ndarray:
    images = dataset.with_format("numpy")[column]
    images = list(images) if not isinstance(images, np.ndarray) else images
    shapes = {np.shape(i) for i in images}
    if len(shapes) > 1:
        raise ValueError(
            f"{column}: expected images of one size to stack, got sizes {sorted(shapes)[:4]}; "
            "resize them first (datasets.Dataset.map) or stream them with a decode="
        )
    return float_images(images)


def load_hf(
    name: str,
    *,
    seed: int = 0,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.2,
    data_dir: str | None = None,
    download: bool = False,
    config: str | None = None,
    revision: str | None = None,
    input_column: str | None = None,
    label_column: str | None = None,
    vocab_size: int = 20000,
    max_len: int = 256,
) -> Splits:
    """Load the Hugging Face set "hf:NAME" as :class:`Splits`.

    Args:
      name: "hf:" and a Hub id ("ylecun/mnist", "uoft-cs/cifar10", "stanfordnlp/imdb") or a
        local folder of data files in the Hub's layout (``data/train-*.parquet``, ...).
      seed: fixes the validation (and, without a test split, the test) hold-out.
      validation_fraction: the part of the train split held out for validation when the set
        has no "validation" split (default 0.1, as for TFDS sets).
      test_fraction: the part of the train split held out for testing when the set has no
        "test" split (default 0.2).
      data_dir, download, config, revision: as for :func:`open_hf` (default: offline, the
        ``datasets`` cache).
      input_column: the Image or string column (default: the only one).
      label_column: the ClassLabel column (default: "label", or the only one).
      vocab_size, max_len: for a text column: the vocabulary built on the training part
        (``info.extra["vocabulary"]``, 0 padding, 1 unknown) and each text's first words.

    Returns:
      :class:`Splits`: ``x`` float32 (N, H, W, C) in [0, 1] for images, int32 (N, max_len)
      word ids for texts; ``y`` (N,) int32 labels; ``info.class_names`` from the ClassLabel.
    """
    seed = check_seed(seed)
    fractions = {"validation_fraction": validation_fraction, "test_fraction": test_fraction}
    for arg, value in fractions.items():
        check_number(value, arg, 0.0, 1.0, open_min=True, open_max=True)
    sets = open_hf(name, data_dir=data_dir, download=download, config=config, revision=revision)
    if "train" not in sets:
        raise ValueError(f"{name}: expected a 'train' split, got splits {list(sets)}")
    train = sets["train"]
    column, kind, label_column = _columns(train.features, name, input_column, label_column)
    read = lambda d: _images(d, column) if kind == "image" else list(d[column])
    x, y = read(train), _labels(train, label_column)
    parts = {}
    for split in ("validation", "test"):
        if split in sets:
            parts[split] = (read(sets[split]), _labels(sets[split], label_column))
    if "test" in parts:
        fit = np.arange(len(y))
    else:
        fit, test = stratified_split(y, (1 - test_fraction, test_fraction), seed)
        parts["test"] = ([x[i] for i in test] if kind == "text" else x[test], y[test])
    if "validation" not in parts:
        keep, validation = hold_out(y[fit], validation_fraction, seed)
        validation = fit[validation]
        parts["validation"] = ([x[i] for i in validation] if kind == "text" else x[validation],
                               y[validation])  # fmt: skip
        fit = fit[keep]
    if kind == "text":
        max_len = check_int(max_len, "max_len")
        texts = parts["validation"][0] + parts["test"][0]
        vocabulary, x, held = encode_texts(x, texts, fit, vocab_size, max_len)
        n = len(parts["validation"][0])
        parts["validation"] = (held[:n], parts["validation"][1])
        parts["test"] = (held[n:], parts["test"][1])
        extra = text_extra(vocabulary)
        info = _info(name, train.features, label_column, (max_len,), scalable=False, extra=extra)
    else:
        info = _info(name, train.features, label_column, x.shape[1:])
    return Splits(
        ArrayDataset(x[fit], y[fit]),
        ArrayDataset(*parts["validation"]),
        ArrayDataset(*parts["test"]),
        info,
    )


def stream_hf(
    name: str,
    split: str = "train",
    *,
    data_dir: str | None = None,
    download: bool = False,
    config: str | None = None,
    revision: str | None = None,
    input_column: str | None = None,
    label_column: str | None = None,
    vocabulary: Vocabulary | None = None,
    max_len: int = 256,
    **pipeline_options,
) -> Pipeline:
    """A :class:`Pipeline` reading ``split`` of "hf:NAME" record by record (random access
    over its Arrow table), as ``jaxdl.data.stream`` reads TFDS sets.

    Image records become float32 (H, W, C) in [0, 1] and int32 labels; text records
    (max_len,) int32 word ids of ``vocabulary`` (default: one built on the whole train split,
    read once). The labels are read up front from their column (``Pipeline(labels=)``), so
    ``Trainer`` can check them and weigh classes. The other arguments are those of
    :func:`load_hf`; ``pipeline_options`` go to :class:`Pipeline`.
    """
    options = dict(data_dir=data_dir, download=download, config=config, revision=revision)
    dataset = open_hf(name, split, **options)
    column, kind, label_column = _columns(dataset.features, name, input_column, label_column)
    records = dataset.with_format("numpy")
    if kind == "text":
        max_len = check_int(max_len, "max_len")
        if vocabulary is None:
            train = dataset if split == "train" else open_hf(name, "train", **options)
            vocabulary = Vocabulary.build(list(train[column]))
        decode = lambda r: (vocabulary.encode([r[column]], max_len)[0], np.int32(r[label_column]))
        shape, fields = (max_len,), dict(scalable=False, extra=text_extra(vocabulary))
    else:
        decode = lambda r: (float_images(r[column][None])[0], np.int32(r[label_column]))
        shape, fields = decode(records[0])[0].shape, {}
    info = _info(name, dataset.features, label_column, shape, **fields)
    labels = _labels(dataset, label_column)
    return Pipeline(records, decode=decode, info=info, labels=labels, **pipeline_options)
