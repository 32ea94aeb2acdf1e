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


def take(tree, index):
    """Rows ``index`` of every array of ``tree`` (an array, a dict or tuple of arrays)."""
    return jax.tree.map(lambda a: a[index], tree)


def num_rows(tree) -> int:
    """The first axis's length shared by the arrays of ``tree``."""
    return len(jax.tree.leaves(tree)[0])


class ArrayAdapter:
    """Features ``x`` (N, ...) and targets ``y`` (N, ...) in host memory, each an array or a
    pytree of arrays (a dict or tuple: several inputs or outputs) sharing the first axis (y
    None: unlabelled data, served with zero placeholder labels that the task's steps never
    read). ``weight`` (N,): per-example weights of the loss, served as the batch's
    ``"weight"``."""

    kind = "arrays"

    def __init__(self, x, y, batch_size: int, *, shuffle: bool = False, seed: int = 0, weight=None):
        self.x, self.y, self.weight = x, y, weight
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed

    @property
    def num_examples(self) -> int:
        return num_rows(self.x)

    @property
    def nbytes(self) -> int:
        return sum(leaf.nbytes for leaf in jax.tree.leaves(self.arrays()))

    def fits_on_device(self) -> bool:
        return self.nbytes <= ON_DEVICE_BYTES

    def num_batches(self, epoch: int = 0) -> int:
        return -(-self.num_examples // self.batch_size)

    fixed_length = True  # every epoch has the same number of batches

    def arrays(self) -> dict:
        """{"x", "y"[, "weight"]}: what a batch gathers its rows from."""
        arrays = {"x": self.x, "y": self.y}
        return arrays if self.weight is None else {**arrays, "weight": self.weight}

    def plan(self, epoch: int, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(indices, mask), both (batches, batch_size): epoch ``epoch``'s order."""
        seed = self.seed if seed is None else seed
        return epoch_indices(
            self.num_examples, self.batch_size, shuffle=self.shuffle, seed=seed, epoch=epoch
        )

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[dict]:
        indices, mask = self.plan(epoch)
        arrays = self.arrays()
        for i, m in zip(indices[start:], mask[start:]):
            yield {**take(arrays, i), "mask": m}

    def sample(self):
        return take(self.x, slice(0, 1))

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
    batch on Grain's threads or worker processes, and each batch is copied to the devices
    (``place``) ahead of its step."""

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


class FirstBatches:
    """An adapter whose epochs are the first ``steps`` batches of ``inner``'s (Keras's
    ``steps_per_epoch``): each epoch still draws its own order, so a shuffled data set shows
    other examples each epoch."""

    def __init__(self, inner, steps: int):
        self.inner, self.steps = inner, steps

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def num_batches(self, epoch: int = 0) -> int:
        return min(self.steps, self.inner.num_batches(epoch))

    def plan(self, epoch: int, seed: int | None = None):
        indices, mask = self.inner.plan(epoch, seed)
        return indices[: self.steps], mask[: self.steps]

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[dict]:
        return itertools.islice(self.inner.batches(epoch, start), max(0, self.steps - start))


def is_source(data) -> bool:
    """Whether ``data`` serves its own batches (a batch source or a stream)."""
    return hasattr(data, "batches") and hasattr(data, "num_batches")


def _host(tree):
    """Arrays on the host: one array stays one, a dict or tuple of them stays that pytree."""
    if isinstance(tree, dict | tuple) and not hasattr(tree, "_fields"):
        return jax.tree.map(np.asarray, tree)
    return np.asarray(tree)


def arrays_of(data, name: str, unlabelled: bool = False) -> tuple:
    """(x, y) NumPy arrays (or pytrees of them) from a tuple or a data set with ``.x``/``.y``;
    unlabelled data may also be features alone (y is then None)."""
    if unlabelled and isinstance(data, np.ndarray | jax.Array | dict):
        return _host(data), None
    if isinstance(data, tuple | list) and len(data) == 2:
        return _host(data[0]), _host(data[1])
    if hasattr(data, "x") and (unlabelled or hasattr(data, "y")):
        return _host(data.x), (_host(data.y) if hasattr(data, "y") else None)
    wanted = "features x (N, ...), " if unlabelled else ""
    raise TypeError(
        f"{name}: expected {wanted}an (x, y) tuple, a data set with .x and .y, a batch "
        f"source or a jaxdl.data.Pipeline, got {type(data).__name__}"
    )


def _fields(tree, name: str) -> list[tuple[str, np.ndarray]]:
    """(name of the field, array) for each array of a pytree, e.g. ``data.x['image']``."""
    return [
        (f"{name}{jax.tree_util.keystr(path)}", leaf)
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
    ]


def _check_rows(trees: dict, num_examples: int) -> None:
    for name, tree in trees.items():
        for field, leaf in _fields(tree, name):
            if np.ndim(leaf) < 1 or len(leaf) != num_examples:
                raise ValueError(
                    f"{field}: expected {num_examples} rows, as the features have, got shape "
                    f"{np.shape(leaf)}"
                )


def check_weights(weight, num_examples: int, name: str) -> np.ndarray:
    """``sample_weight``: (N,) finite non-negative numbers, one per example."""
    weight = _checks.as_array(weight, name)
    if weight.dtype.kind not in "fiub" or weight.shape != (num_examples,):
        raise ValueError(
            f"{name}: expected one non-negative number per example, shape ({num_examples},), "
            f"got {weight.dtype} of shape {weight.shape}"
        )
    weight = weight.astype(np.float32)
    if not np.all(np.isfinite(weight)) or np.any(weight < 0):
        raise ValueError(f"{name}: expected finite non-negative weights, got {weight.min()}")
    return weight


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
    sample_weight=None,
):
    """The adapter for ``data``, its features checked (shape, dtype, finite values).

    ``vocab_size``: the model's, for a model of token ids (a ``vocab_size`` attribute):
    every id of ``x`` must then lie in [0, vocab_size). ``input_shape`` is the model's, once
    known; ``check_targets(y, n, name) -> y`` checks the
    labels against the model's outputs; ``place`` copies a stream's batches to the devices.
    ``sample_weight`` (N,): per-example weights of the loss (array data only).
    """
    if is_source(data):
        if sample_weight is not None:
            raise ValueError(
                f"sample_weight: a batch source or stream serves its own batches; give "
                f"{name} as arrays to weight its examples"
            )
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
    if isinstance(x, np.ndarray):
        x = _checks.as_features(x, x_name, input_shape)
        if vocab_size is not None:
            _checks.check_token_ids(x, vocab_size, x_name)
    else:  # several inputs: each field checked as features, the same rows in each
        leaves = _fields(x, x_name)
        if not leaves:
            raise ValueError(f"{x_name}: expected arrays of features, got no arrays")
        x = jax.tree.map(
            lambda leaf, field: _checks.as_features(leaf, field),
            x,
            jax.tree.unflatten(jax.tree.structure(x), [field for field, _ in leaves]),
        )
    num_examples = num_rows(x)
    if y is None or unlabelled:
        y = np.zeros(num_examples, np.int32)
    elif not isinstance(y, np.ndarray):  # several outputs: the task checks each field
        _check_rows({f"{name}.y": y}, num_examples)
        if check_targets is not None:
            y = check_targets(y, num_examples, f"{name}.y")
    elif check_targets is not None:
        y = check_targets(y, num_examples, f"{name}.y")
    else:
        y = _checks.as_labels(y, num_examples, None, f"{name}.y")
    _check_rows({x_name: x}, num_examples)
    if sample_weight is not None:
        sample_weight = check_weights(sample_weight, num_examples, "sample_weight")
    return ArrayAdapter(x, y, batch_size, shuffle=shuffle, seed=seed, weight=sample_weight)
