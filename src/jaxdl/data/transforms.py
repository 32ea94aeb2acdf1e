"""Feature scaling fitted on the training split only, and one-hot encoding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jaxdl._checks import as_array, check_int


def _fit_data(x, who: str) -> np.ndarray:
    """Data (N, ...) a scaler may be fitted on: numeric, N >= 1, every value finite."""
    x = as_array(x, "x")
    if x.dtype == object or x.dtype.kind not in "fiub":
        raise TypeError(f"{who}: x must be a numeric array, got dtype {x.dtype}")
    if x.ndim < 1 or x.size == 0:
        raise ValueError(f"{who}: x must hold at least one value (N, ...), got shape {x.shape}")
    x = x.astype(np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        raise ValueError(
            f"{who}: x contains {int(bad.sum())} NaN or infinite values (first in example "
            f"{int(np.argwhere(bad)[0][0])}); statistics of them would be NaN"
        )
    return x


def _reduce_axes(x: np.ndarray, per_channel: bool) -> tuple[int, ...]:
    return tuple(range(x.ndim - 1)) if per_channel else (0,)


@dataclass(frozen=True)
class Standardizer:
    """``(x - mean) / std`` with mean and std from the data ``fit`` saw.

    Per feature by default; ``per_channel=True`` pools every axis but the last (images in
    NHWC). Features with zero spread are left centred, not divided by zero.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x, per_channel: bool = False) -> Standardizer:
        """Statistics of ``x`` (N, ...): finite numbers, N >= 1."""
        x = _fit_data(x, "Standardizer.fit")
        axes = _reduce_axes(x, per_channel)
        std = x.std(axis=axes)
        return cls(
            x.mean(axis=axes).astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32)
        )

    @classmethod
    def fit_batches(cls, batches, per_channel: bool = False) -> Standardizer:
        """The same statistics from batches {"x", "mask"} streamed once (e.g. a
        ``Pipeline``'s training batches, whose padded rows have mask 0): float64 sums of
        the rows and of their squares, so nothing but one batch is held at a time."""
        count, total, squares = 0.0, 0.0, 0.0
        for batch in batches:
            x = np.asarray(batch["x"], np.float64)
            rows = np.asarray(batch.get("mask", np.ones(len(x))), np.float64) > 0
            x = x[rows]
            if not np.isfinite(x).all():
                raise ValueError(
                    "Standardizer.fit_batches: x contains NaN or infinite values; statistics "
                    "of them would be NaN"
                )
            axes = _reduce_axes(x, per_channel)
            count += np.prod([x.shape[a] for a in axes])  # values behind each statistic
            total = total + x.sum(axis=axes)
            squares = squares + (x * x).sum(axis=axes)
        if not count:
            raise ValueError("Standardizer.fit_batches: the batches hold no example")
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
        return cls(mean.astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32))

    def __call__(self, x) -> np.ndarray:
        return ((np.asarray(x, np.float32) - self.mean) / self.std).astype(np.float32)

    def inverse(self, x) -> np.ndarray:
        """Undo the scaling: ``x * std + mean``, float32, the shape of ``x`` (N, ...) (e.g.
        a regression model's predictions back in the targets' units)."""
        return np.asarray(x, np.float32) * self.std + self.mean


@dataclass(frozen=True)
class MinMaxScaler:
    """``(x - min) / (max - min)`` into [0, 1] on the data ``fit`` saw."""

    minimum: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, x, per_channel: bool = False) -> MinMaxScaler:
        """Range of ``x`` (N, ...): finite numbers, N >= 1."""
        x = _fit_data(x, "MinMaxScaler.fit")
        axes = _reduce_axes(x, per_channel)
        low, high = x.min(axis=axes), x.max(axis=axes)
        span = np.where(high > low, high - low, 1.0)
        return cls(low.astype(np.float32), span.astype(np.float32))

    def __call__(self, x) -> np.ndarray:
        return ((np.asarray(x, np.float32) - self.minimum) / self.scale).astype(np.float32)

    def inverse(self, x) -> np.ndarray:
        """Undo the scaling: ``x * (max - min) + min``, float32, the shape of ``x`` (N, ...)
        (e.g. a regression model's predictions back in the targets' units)."""
        return np.asarray(x, np.float32) * self.scale + self.minimum


SCALERS = {"standard": Standardizer, "minmax": MinMaxScaler}


def one_hot(labels, num_classes: int) -> np.ndarray:
    """(N,) integer labels -> (N, num_classes) float32 rows of zeros with a single one."""
    num_classes = check_int(num_classes, "num_classes")
    labels = as_array(labels, "labels")
    if labels.dtype.kind == "f" and not (
        np.isfinite(labels).all() and (labels == np.round(labels)).all()
    ):
        raise ValueError("labels: expected integer class labels, got NaN or fractional values")
    if labels.dtype == object or labels.dtype.kind not in "fiub":
        raise TypeError(f"labels: expected integer class labels, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got values in [{labels.min()}, {labels.max()}]"
        )
    return np.eye(num_classes, dtype=np.float32)[labels]
