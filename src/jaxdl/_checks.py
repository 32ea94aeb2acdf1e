"""Checks at the places where data and names enter the library.

They run on the host, on NumPy arrays, before anything is traced or compiled, so a mistake
surfaces as a short message naming the argument, what was expected and what came.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def lookup(kind: str, name: str, table: Mapping[str, T]) -> T:
    """``table[name]``, or a ValueError that lists the valid names of this ``kind``."""
    if not isinstance(name, str):
        raise TypeError(f"{kind} must be a name (str), got {type(name).__name__}: {name!r}")
    key = name.lower().replace("-", "_")
    if key not in table:
        valid = ", ".join(sorted(table))
        raise ValueError(f"unknown {kind} {name!r}; expected one of: {valid}")
    return table[key]


def _shape_str(shape) -> str:
    return "(N, " + ", ".join(str(d) for d in shape) + ")" if len(shape) else "(N,)"


def as_features(x, name: str = "x", expected_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Validate a feature array and return it as float32 (or int32 for token ids).

    x: (N, *feature_shape). ``expected_shape`` is the feature shape without the batch axis.
    """
    x = np.asarray(x)
    if x.dtype == object or x.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected a numeric array, got dtype {x.dtype}")
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one example, got an array of shape {x.shape}")
    if x.ndim < 2:
        raise ValueError(
            f"{name}: expected shape (N, *features) with a batch axis first, got {x.shape}; "
            "reshape a single feature with x[:, None]"
        )
    if expected_shape is not None and tuple(x.shape[1:]) != tuple(expected_shape):
        raise ValueError(
            f"{name}: expected shape {_shape_str(expected_shape)}, got {x.shape} "
            f"(feature shape {tuple(x.shape[1:])} instead of {tuple(expected_shape)})"
        )
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise ValueError(
                f"{name}: contains {int(bad.sum())} NaN or infinite values (first in example {row})"
            )
        return x.astype(np.float32, copy=False)
    if x.dtype.kind == "b":
        return x.astype(np.float32)
    return x.astype(np.int32, copy=False)


def as_labels(y, num_examples: int, num_classes: int | None, name: str = "y") -> np.ndarray:
    """Validate targets against the examples they belong to.

    Integer labels (N,) must lie in [0, num_classes); other targets are returned as float32.
    """
    y = np.asarray(y)
    if y.dtype == object or y.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected a numeric array, got dtype {y.dtype}")
    if y.ndim == 0 or y.shape[0] != num_examples:
        raise ValueError(
            f"{name}: expected {num_examples} targets (one per example of x), got shape {y.shape}"
        )
    if y.dtype.kind in "iub":
        if num_classes is not None:
            low, high = int(y.min()), int(y.max())
            if low < 0 or high >= num_classes:
                raise ValueError(
                    f"{name}: labels must lie in [0, {num_classes}) for a model with "
                    f"{num_classes} outputs, got values in [{low}, {high}]"
                )
        return y.astype(np.int32, copy=False)
    if not np.isfinite(y).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return y.astype(np.float32, copy=False)


def check_class_targets(y: np.ndarray, output_shape: tuple[int, ...], name: str = "y") -> None:
    """Classification targets against a model's outputs (N, *positions, C): integer labels
    (N, *positions) or one-hot rows (N, *positions, C), so (N,) or (N, C) for a classifier
    of whole examples. Anything else is a ValueError naming both shapes."""
    positions, rows = output_shape[:-1], ("N", *output_shape[:-1])
    if y.shape[1:] != (positions if y.dtype.kind != "f" else output_shape):
        raise ValueError(
            f"{name}: expected integer labels {rows} or one-hot rows "
            f"{(*rows, output_shape[-1])} for outputs {('N', *output_shape)}, got {y.shape} "
            f"of {y.dtype}"
        )


def check_batch_size(batch_size: int, num_examples: int, name: str = "batch_size") -> int:
    """A positive int no larger than the data set."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise TypeError(f"{name}: expected an int, got {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"{name}: expected a positive int, got {batch_size}")
    if batch_size > num_examples:
        raise ValueError(
            f"{name}={batch_size} is larger than the data set ({num_examples} examples); "
            f"use a batch size of at most {num_examples}"
        )
    return int(batch_size)


def check_inference_batch_size(batch_size, num_examples: int | None = None) -> int:
    """A positive int for ``evaluate``/``predict``; one larger than the data (when its size
    ``num_examples`` is known) runs it as one batch."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise TypeError(f"batch_size: expected an int, got {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size}")
    return int(batch_size if num_examples is None else min(batch_size, num_examples))


def check_seed(seed, name: str = "seed") -> int:
    """A non-negative int, as NumPy's and JAX's generators take."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"{name}: expected a non-negative int, got {type(seed).__name__}: {seed!r}")
    if seed < 0:
        raise ValueError(f"{name}: expected a non-negative int, got {seed}")
    return int(seed)


def check_fractions(fractions, count: int | None = None) -> np.ndarray:
    """Split sizes: ``count`` (or any number of) positive numbers summing to 1."""
    try:
        values = np.asarray(fractions, np.float64)
    except (TypeError, ValueError):
        values = None
    if (
        values is None
        or values.ndim != 1
        or len(values) == 0
        or (count is not None and len(values) != count)
        or not np.isfinite(values).all()
        or values.min() <= 0
        or not np.isclose(values.sum(), 1.0)
    ):
        size = f"{count} " if count else ""
        raise ValueError(
            f"fractions: expected {size}positive numbers summing to 1, got {fractions!r}"
        )
    return values


def monitor_mode(monitor: str, mode: str) -> str:
    """ "min" or "max" for a monitored metric; "auto" is min for losses and errors."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        lower_is_better = any(k in monitor for k in ("loss", "mse", "mae", "error"))
        return "min" if lower_is_better else "max"
    return mode
