"""Your own data from files: a CSV table, or a folder of images with one folder per class.

``from_csv(path, target=COLUMN)`` reads the numeric columns of a table as features and one
column as the target; ``from_image_folder(path)`` reads ``path/CLASS_NAME/*.png`` (and the
other formats Pillow decodes) as float32 images. Both return :class:`jaxdl.data.Splits` split
as ``jaxdl.data.load`` splits (stratified by class), so everything that takes an embedded data
set takes them. The class names, in label order, are in ``info.class_names``; what was read is
in ``info.extra``.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Sequence

import numpy as np

from jaxdl._checks import check_fractions, check_seed, lookup
from jaxdl.data.dataset import ArrayDataset, DatasetInfo, Splits
from jaxdl.data.sampling import stratified_split
from jaxdl.data.transforms import SCALERS

logger = logging.getLogger(__name__)

TASKS = ("auto", "classification", "regression")
# "auto" reads an all-integer target column with at most this many distinct values as classes
MAX_AUTO_CLASSES = 20
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})


# ---------------------------------------------------------------------------------- tables


def _read_table(path, delimiter: str) -> tuple[list[str], list[list[str]], list[int]]:
    """(header, rows of cells, the file's line number of each row); blank lines skipped."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no CSV file {path}")
    with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: a BOM is no column name
        reader = csv.reader(f, delimiter=delimiter)
        rows, lines = [], []
        for cells in reader:
            if cells and any(c.strip() for c in cells):
                rows.append([c.strip() for c in cells])
                lines.append(reader.line_num)
    if not rows:
        raise ValueError(f"{path}: the file holds no rows")
    width = len(rows[0])
    for cells, line in zip(rows, lines):
        if len(cells) != width:
            raise ValueError(
                f"{path}, line {line}: expected {width} values as in the first row, got "
                f"{len(cells)}"
            )
    return rows[0], rows[1:], lines[1:]


def _number(cell: str) -> float | None:
    """The finite number a cell holds, or None."""
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _numeric_column(path, rows, lines, index: int, name: str, hint: str) -> np.ndarray:
    values = np.empty(len(rows), np.float64)
    for r, (cells, line) in enumerate(zip(rows, lines)):
        value = _number(cells[index])
        if value is None:
            raise ValueError(
                f"{path}: column {name!r}, line {line}: {cells[index]!r} is not a finite "
                f"number; {hint}"
            )
        values[r] = value
    return values


def _is_header(cells: Sequence[str]) -> bool:
    return any(_number(c) is None for c in cells)


def csv_features(path, columns: Sequence[str] | None = None, *, delimiter: str = ",") -> np.ndarray:
    """The numeric columns of a CSV file as float32 features (N, F).

    Args:
      path: the file. Its first row is a header when any of its cells is not a number.
      columns: the names of the columns to read, in this order (e.g. a model's
        ``info.extra["feature_names"]``): picked by name from a file with a header (other
        columns, such as the target, are left out); a file without a header must hold
        exactly these columns, in this order. Default: every column.
      delimiter: the character between values.

    Returns:
      float32 (N, F), one row per data row; a value that is not a finite number is a
      ValueError naming the column and line.
    """
    header, rows, lines = _read_table(path, delimiter)
    if _is_header(header):
        names = header
        wanted = list(names) if columns is None else list(columns)
        missing = [c for c in wanted if c not in names]
        if missing:
            raise ValueError(
                f"{path}: no column {missing[0]!r}; the header has {', '.join(map(repr, names))}"
            )
    else:
        rows, lines = [header, *rows], [1, *lines]
        names = [str(i) for i in range(len(header))] if columns is None else list(columns)
        if len(names) != len(header):
            raise ValueError(
                f"{path}: expected {len(names)} columns ({', '.join(map(repr, names))}), got "
                f"{len(header)} values a row and no header naming them"
            )
        wanted = names
    if not rows:
        raise ValueError(f"{path}: the file holds a header but no data rows")
    hint = "the features must be numbers"
    return np.stack(
        [_numeric_column(path, rows, lines, names.index(c), c, hint) for c in wanted], axis=1
    ).astype(np.float32)


def _class_name(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _split(x, y, info, fractions, seed: int, stratify: bool, scaling) -> Splits:
    train, validation, test = stratified_split(y, fractions, seed=seed, stratify=stratify)
    scaler = None
    if scaling is not None:
        scaler = lookup("scaling", scaling, SCALERS).fit(x[train])
        x = scaler(x)
    info.extra["scaler"] = scaler
    data = ArrayDataset(x, y)
    return Splits(data.subset(train), data.subset(validation), data.subset(test), info)


def from_csv(
    path: str | os.PathLike,
    target: str,
    *,
    task: str = "auto",
    features: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
    fractions: tuple[float, float, float] = (0.65, 0.15, 0.2),
    seed: int = 0,
    scaling: str | None = "standard",
    delimiter: str = ",",
) -> Splits:
    """A CSV table as a data set: numeric feature columns and one target column.

    Args:
      path: a CSV file whose first row names the columns.
      target: the column to predict.
      task: "classification" (the target's distinct values are the classes), "regression"
        (the target is a number), or "auto": classification when any target value is not a
        number, or when every value is an integer and there are at most
        ``MAX_AUTO_CLASSES`` (20) distinct ones; regression otherwise. The choice is in
        ``info.task`` and logged.
      features: the feature columns, in order; default every column but ``target``. Each
        must hold finite numbers: a cell that does not is a ValueError naming its column
        and line.
      classes: for classification, the class names in label order (e.g. the classes of a
        model trained on another file); a target value outside them is a ValueError.
        Default: the distinct values sorted (numerically when they are all numbers), so
        the same classes always get the same labels.
      fractions: sizes of train, validation and test; classification splits are stratified.
      seed: fixes the split.
      scaling: "standard", "minmax" or None, fitted on the training split and applied to
        all three; the fitted scaler is ``info.extra["scaler"]`` (apply it to new rows).
      delimiter: the character between values.

    Returns:
      :class:`Splits` with x float32 (N, F) and y int32 labels (N,) (classification) or
      float32 (N, 1) (regression). ``info.extra`` holds "path", "target", "feature_names"
      and "scaler".
    """
    if not isinstance(target, str) or not target:
        raise TypeError(f"target: expected a column name (str), got {target!r}")
    task = lookup("task", task, {t: t for t in TASKS})
    seed = check_seed(seed)
    fractions = tuple(float(f) for f in check_fractions(fractions, 3))
    if scaling is not None:
        lookup("scaling", scaling, SCALERS)
    header, rows, lines = _read_table(path, delimiter)
    if target not in header:
        raise ValueError(
            f"{path}: no target column {target!r}; the header has {', '.join(map(repr, header))}"
        )
    if len(set(header)) != len(header):
        twice = next(c for c in header if header.count(c) > 1)
        raise ValueError(f"{path}: the header names column {twice!r} twice")
    names = [c for c in header if c != target] if features is None else list(features)
    if isinstance(features, str):
        raise TypeError(f"features: expected a list of column names, got {features!r}")
    for name in names:
        if name not in header:
            raise ValueError(
                f"{path}: features: no column {name!r}; the header has "
                f"{', '.join(map(repr, header))}"
            )
    if target in names:
        raise ValueError(f"features: the target column {target!r} cannot also be a feature")
    if not names:
        raise ValueError(f"{path}: no feature column besides the target {target!r}")
    if not rows:
        raise ValueError(f"{path}: the file holds a header but no data rows")
    hint = "from_csv reads numeric feature columns: leave this one out with features=[...]"
    x = np.stack(
        [_numeric_column(path, rows, lines, header.index(c), c, hint) for c in names], axis=1
    ).astype(np.float32)

    column = header.index(target)
    cells = [r[column] for r in rows]
    for cell, line in zip(cells, lines):
        if not cell:
            raise ValueError(f"{path}: column {target!r}, line {line}: the target is empty")
    numbers = [_number(c) for c in cells]
    numeric = all(v is not None for v in numbers)
    keys = numbers if numeric else cells  # numbers sort and compare as numbers
    if task == "auto":
        integral = numeric and all(float(v).is_integer() for v in numbers)
        few = integral and len(set(numbers)) <= MAX_AUTO_CLASSES
        task = "classification" if not numeric or few else "regression"
        logger.info(
            "from_csv: target column %r read as %s (task='auto'; pass task= to choose)",
            target,
            task if task == "regression" else f"classification of {len(set(keys))} classes",
        )
    stem = os.path.splitext(os.path.basename(os.fspath(path)))[0]
    extra = {"path": os.path.abspath(os.fspath(path)), "target": target, "feature_names": names}
    if task == "regression":
        y = _numeric_column(path, rows, lines, column, target, "task='regression' needs numbers")
        info = DatasetInfo(
            stem, 0, (len(names),), (), task="regression",
            description=f"{len(rows)} rows of {path}", extra=extra,
        )  # fmt: skip
        return _split(x, y.astype(np.float32)[:, None], info, fractions, seed, False, scaling)

    if classes is None:
        distinct = sorted(set(keys))
        class_names = [_class_name(v) for v in distinct] if numeric else list(distinct)
        index = {value: i for i, value in enumerate(distinct)}
    else:
        class_names = [str(c) for c in classes]
        index = {name: i for i, name in enumerate(class_names)}
        keys = [_class_name(v) for v in numbers] if numeric else cells
    labels = np.empty(len(rows), np.int32)
    for r, (key, line) in enumerate(zip(keys, lines)):
        if key not in index:
            raise ValueError(
                f"{path}: column {target!r}, line {line}: {cells[r]!r} is not one of the "
                f"classes {class_names}"
            )
        labels[r] = index[key]
    info = DatasetInfo(
        stem, len(class_names), (len(names),), tuple(class_names),
        description=f"{len(rows)} rows of {path}", extra=extra,
    )  # fmt: skip
    return _split(x, labels, info, fractions, seed, True, scaling)


# ---------------------------------------------------------------------------------- images


def _image_size(image_size) -> tuple[int, int]:
    size = (image_size, image_size) if isinstance(image_size, int | np.integer) else image_size
    try:
        height, width = (int(s) for s in size)
        ok = all(not isinstance(s, bool) and int(s) == s and s >= 1 for s in size)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            f"image_size: expected a positive int or (height, width), got {image_size!r}"
        )
    return height, width


def _check_channels(channels) -> None:
    if channels not in (None, 1, 3) or isinstance(channels, bool):
        raise ValueError(f"channels: expected 1 (grey), 3 (RGB) or None (auto), got {channels!r}")


def _open(path):
    try:
        from PIL import Image
    except ImportError as error:  # Pillow comes with matplotlib
        raise ImportError("reading images needs Pillow: pip install pillow") from error
    try:
        image = Image.open(path)
        image.load()
    except (OSError, ValueError) as error:  # PIL.UnidentifiedImageError is an OSError
        raise ValueError(f"cannot read image {path}: {error}") from None
    return image


def read_image(path: str | os.PathLike, image_size=32, channels: int = 3) -> np.ndarray:
    """One image file as float32 (H, W, channels) in [0, 1].

    Args:
      path: an image file Pillow decodes (PNG, JPEG, BMP, GIF, TIFF, WebP), 8 bits a channel.
      image_size: (height, width), or one int for both; the image is resized to it
        (bilinear), whatever its own size and aspect.
      channels: 1 (converted to grey) or 3 (RGB; an alpha channel is dropped).
    """
    size = _image_size(image_size)
    if channels not in (1, 3) or isinstance(channels, bool):
        raise ValueError(f"channels: expected 1 (grey) or 3 (RGB), got {channels!r}")
    return _pixels(_open(path), size, channels)


def _pixels(image, size: tuple[int, int], channels: int) -> np.ndarray:
    """A decoded Pillow image as float32 (H, W, channels) in [0, 1]."""
    from PIL import Image

    height, width = size
    image = image.convert("L" if channels == 1 else "RGB")
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, np.float32) / 255.0
    return pixels.reshape(height, width, channels)


def image_files(folder: str | os.PathLike, extensions=IMAGE_EXTENSIONS) -> list[str]:
    """The image files directly inside ``folder`` (by extension, any case), sorted by name;
    hidden files are left out."""
    folder = os.fspath(folder)
    return sorted(
        os.path.join(folder, name)
        for name in os.listdir(folder)
        if not name.startswith(".")
        and name.lower().endswith(tuple(extensions))
        and os.path.isfile(os.path.join(folder, name))
    )


def from_image_folder(
    path: str | os.PathLike,
    image_size=32,
    *,
    channels: int | None = None,
    classes: Sequence[str] | None = None,
    fractions: tuple[float, float, float] = (0.65, 0.15, 0.2),
    seed: int = 0,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
) -> Splits:
    """A folder of images, one sub-folder per class (``path/cat/1.png``, ``path/dog/7.jpg``).

    Args:
      path: the folder; each sub-folder (hidden ones left out) is a class, named by it.
      image_size: (height, width) or one int: every image is resized to it (bilinear).
      channels: 1 (grey), 3 (RGB; alpha dropped) or None: 1 when every image is grey
        (Pillow modes "L", "1", "I;16", ...), else 3.
      classes: the class names in label order (e.g. a trained model's); each sub-folder
        must be one of them. Default: the sub-folders sorted by name.
      fractions: sizes of train, validation and test, stratified by class.
      seed: fixes the split.
      extensions: the file name endings read as images (other files are left out).

    Returns:
      :class:`Splits` with x float32 (N, H, W, channels) in [0, 1] and y int32 (N,) labels;
      ``info.extra`` holds "path", "image_size" and "channels". An unreadable image is a
      ValueError naming the file; a class folder without images too.
    """
    folder = os.fspath(path)
    if not os.path.isdir(folder):
        raise NotADirectoryError(f"no image folder {folder}")
    height, width = _image_size(image_size)
    _check_channels(channels)
    seed = check_seed(seed)
    fractions = tuple(float(f) for f in check_fractions(fractions, 3))
    found = sorted(
        d
        for d in os.listdir(folder)
        if not d.startswith(".") and os.path.isdir(os.path.join(folder, d))
    )
    if not found:
        raise ValueError(
            f"{folder}: expected one folder per class ({folder}/CLASS_NAME/*.png), found none"
        )
    class_names = found if classes is None else [str(c) for c in classes]
    unknown = [d for d in found if d not in class_names]
    if unknown:
        raise ValueError(f"{folder}: folder {unknown[0]!r} is not one of the classes {class_names}")
    if classes is None and len(found) < 2:
        raise ValueError(f"{folder}: expected at least 2 class folders, found {found}")
    files, labels = [], []
    for name in found:
        inside = image_files(os.path.join(folder, name), extensions)
        if not inside:
            raise ValueError(
                f"{folder}/{name}: no image files ({', '.join(extensions)}) in this class folder"
            )
        files += inside
        labels += [class_names.index(name)] * len(inside)
    images = [_open(f) for f in files]
    if channels is None:
        channels = 1 if all(image.mode in _GREY_MODES for image in images) else 3
    x = np.stack([_pixels(image, (height, width), channels) for image in images])
    del images
    y = np.asarray(labels, np.int32)
    info = DatasetInfo(
        os.path.basename(os.path.abspath(folder)), len(class_names), (height, width, channels),
        tuple(class_names),
        description=f"{len(files)} images of {len(found)} classes in {folder}",
        extra={"path": os.path.abspath(folder), "image_size": (height, width),
               "channels": channels},
    )  # fmt: skip
    train, validation, test = stratified_split(y, fractions, seed=seed)
    data = ArrayDataset(x, y)
    return Splits(data.subset(train), data.subset(validation), data.subset(test), info)
