"""In-memory data sets and the fixed-shape batches that the compiled steps consume."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a data set.

    Attributes:
      name: the name ``jaxdl.data.load`` knows it by.
      num_classes: number of classes (0 for regression).
      input_shape: shape of one example, without the batch axis.
      class_names: one name per class.
      task: "classification", "regression", "sequence" (one label per position) or
        "language_model" (next-token targets).
      scalable: whether ``load`` may standardise the features (not token ids or markers).
    """

    name: str
    num_classes: int
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...] = ()
    task: str = "classification"
    scalable: bool = True
    description: str = ""
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ArrayDataset:
    """Features ``x`` (N, *input_shape) and targets ``y`` (N,) or (N, *target_shape), NumPy."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self):
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} examples but y has {len(self.y)}")

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, indices) -> ArrayDataset:
        """The examples at ``indices``, in that order."""
        return ArrayDataset(self.x[indices], self.y[indices])


@dataclass(frozen=True)
class Splits:
    """A data set split three ways, with its ``info``."""

    train: ArrayDataset
    validation: ArrayDataset
    test: ArrayDataset
    info: DatasetInfo


def epoch_indices(
    num_examples: int, batch_size: int, *, shuffle: bool, seed: int = 0, epoch: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Batch indices for one epoch, every example exactly once.

    Returns ``(indices, mask)``, both (steps, batch_size) with ``steps = ceil(N / batch_size)``:
    the last batch is filled with index 0 and mask 0, so every batch has the same shape (one
    compile) and padded rows never count. The order depends only on ``(seed, epoch)``.
    """
    order = np.arange(num_examples)
    if shuffle:
        order = np.random.default_rng([seed, epoch]).permutation(num_examples)
    steps = -(-num_examples // batch_size)
    padded = steps * batch_size
    indices = np.zeros(padded, np.int32)
    indices[:num_examples] = order
    mask = np.zeros(padded, np.float32)
    mask[:num_examples] = 1.0
    return indices.reshape(steps, batch_size), mask.reshape(steps, batch_size)
