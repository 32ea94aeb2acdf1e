"""Data adapters: whatever ``fit``, ``evaluate`` and ``predict`` are given, one protocol.

``as_source(data, ...)`` is called once, at the top of each of them; after it nothing asks
what kind of data came. Who owns what:

| data                                   | adapter         | batches built      | on device |
|----------------------------------------|-----------------|--------------------|-----------|
| arrays: ``(x, y)``, ``.x``/``.y``, ``x`` | `ArrayAdapter`  | gathered by index  | can be    |
| a batch source (``GraphDataset`` ...)  | `SourceAdapter` | by the source      | no        |
| a stream (``jaxdl.data.Pipeline``)     | `StreamAdapter` | by Grain's threads | no        |

Every adapter serves fixed-shape batches ``{"x", "y", "mask"}`` (the last one padded, its
padding masked out), knows how many batches each epoch has, starts at any batch of an
epoch (a resumed run), and says whether its whole data set may live on the device, where
the loop can run an epoch as one compiled ``lax.scan`` over ``plan(epoch)``'s indices.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import jax
import numpy as np

from jaxdl import _checks
from jaxdl.data.dataset import epoch_indices
from jaxdl.data.pipeline import prefetch_to_device

# Arrays up to this size are copied to the device once and run a whole epoch per call.
ON_DEVICE_BYTES = 1 << 30


class ArrayAdapter:
    """Features ``x`` (N, ...) and targets ``y`` (N, ...) in host memory (y None: unlabelled
    data, served with zero placeholder labels that the task's steps never read)."""

    kind = "arrays"

    def __init__(self, x, y, batch_size: int, *, shuffle: bool = False, seed: int = 0):
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed

    @property
    def num_examples(self) -> int:
        return len(self.x)

    @property
    def nbytes(self) -> int:
        return self.x.nbytes + self.y.nbytes

    def fits_on_device(self) -> bool:
        return self.nbytes <= ON_DEVICE_BYTES

    def num_batches(self, epoch: int = 0) -> int:
        return -(-len(self.x) // self.batch_size)

    fixed_length = True  # every epoch has the same number of batches

    def plan(self, epoch: int, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(indices, mask), both (batches, batch_size): epoch ``epoch``'s order."""
        seed = self.seed if seed is None else seed
        return epoch_indices(
            len(self.x), self.batch_size, shuffle=self.shuffle, seed=seed, epoch=epoch
        )

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[dict]:
        indices, mask = self.plan(epoch)
        for i, m in zip(indices[start:], mask[start:]):
            yield {"x": self.x[i], "y": self.y[i], "mask": m}

    def sample(self):
        return self.x[:1]

    def targets(self):
        return self.y


class SourceAdapter:
    """A batch source: an object with ``batches(batch_size, shuffle=, seed=, epoch=)`` and
    ``num_batches(...)`` serving its own fixed-shape batches (``jaxdl.graphs.GraphDataset``,
    ``NodeDataset``). They are built on the host and run on one device."""

    kind = "batches"
    fixed_length = False

    def __init__(self, source, batch_size: int, *, shuffle: bool = False, seed: int = 0):
        self.source, self.batch_size = source, batch_size
        self.order = {"shuffle": shuffle, "seed": seed}

    def fits_on_device(self) -> bool:
        return False

    def num_batches(self, epoch: int = 0) -> int:
        return self.source.num_batches(self.batch_size, **self.order, epoch=epoch)

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[dict]:
        batches = self.source.batches(self.batch_size, **self.order, epoch=epoch)
        return itertools.islice(batches, start, None)

    def sample(self):
        return next(iter(self.source.batches(self.batch_size)))["x"]

    def targets(self):
        return self.source.targets() if hasattr(self.source, "targets") else None


class StreamAdapter(SourceAdapter):
    """A streaming ``jaxdl.data.Pipeline``: each process reads its rows of every global
    batch on Grain's threads, and each batch is copied to the devices (``place``) ahead of
    its step."""

    kind = "stream"
    fixed_length = True

    def __init__(self, source, batch_size, *, shuffle=False, seed=0, train=False, place=None):
        super().__init__(source, batch_size, shuffle=shuffle, seed=seed)
        self.train, self.place = train, place

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[dict]:
        batches = self.source.batches(
            self.batch_size, **self.order, epoch=epoch, start=start, train=self.train
        )
        return prefetch_to_device(batches, self.place) if self.place else batches

    def sample(self):
        return self.source.first()[0]  # one example, not a reader's first batches


def is_source(data) -> bool:
    """Whether ``data`` serves its own batches (a batch source or a stream)."""
    return hasattr(data, "batches") and hasattr(data, "num_batches")


def arrays_of(data, name: str, unlabelled: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """(x, y) NumPy arrays from a tuple or a data set with ``.x``/``.y``; unlabelled data may
    also be features alone (y is then None)."""
    if unlabelled and isinstance(data, np.ndarray | jax.Array):
        return np.asarray(data), None
    if isinstance(data, tuple | list) and len(data) == 2:
        return np.asarray(data[0]), np.asarray(data[1])
    if hasattr(data, "x") and (unlabelled or hasattr(data, "y")):
        return np.asarray(data.x), (np.asarray(data.y) if hasattr(data, "y") else None)
    wanted = "features x (N, ...), " if unlabelled else ""
    raise TypeError(
        f"{name}: expected {wanted}an (x, y) tuple, a data set with .x and .y, a batch "
        f"source or a jaxdl.data.Pipeline, got {type(data).__name__}"
    )


def as_source(
    data,
    batch_size: int,
    *,
    name: str = "data",
    shuffle: bool = False,
    seed: int = 0,
    train: bool = False,
    unlabelled: bool = False,
    input_shape: tuple[int, ...] | None = None,
    check_targets: Callable | None = None,
    place: Callable | None = None,
    vocab_size: int | None = None,
):
    """The adapter for ``data``, its features checked (shape, dtype, finite values).

    ``vocab_size``: the model's, for a model of token ids (a ``vocab_size`` attribute):
    every id of ``x`` must then lie in [0, vocab_size). ``input_shape`` is the model's, once
    known; ``check_targets(y, n, name) -> y`` checks the
    labels against the model's outputs; ``place`` copies a stream's batches to the devices.
    """
    if is_source(data):
        if getattr(data, "per_process", False):
            adapter = StreamAdapter(
                data, batch_size, shuffle=shuffle, seed=seed, train=train, place=place
            )
        else:
            adapter = SourceAdapter(data, batch_size, shuffle=shuffle, seed=seed)
        targets = adapter.targets()
        if check_targets is not None and targets is not None:
            check_targets(targets, len(targets), name)
        return adapter
    x, y = arrays_of(data, name, unlabelled)
    x_name = f"{name}.x" if name != "x" else "x"
    x = _checks.as_features(x, x_name, input_shape)
    if vocab_size is not None:
        _checks.check_token_ids(x, vocab_size, x_name)
    if y is None or unlabelled:
        y = np.zeros(len(x), np.int32)
    elif check_targets is not None:
        y = check_targets(y, len(x), f"{name}.y")
    else:
        y = _checks.as_labels(y, len(x), None, f"{name}.y")
    return ArrayAdapter(x, y, batch_size, shuffle=shuffle, seed=seed)
