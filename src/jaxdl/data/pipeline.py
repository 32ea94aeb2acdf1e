"""A streaming input pipeline on Grain, for data sets read record by record.

:class:`Pipeline` reads examples from any random-access source (a TFDS array-record data
source from ``jaxdl.data.stream``, an ``ArrayDataset``, or anything with ``len`` and ``[i]``)
and serves the fixed-shape batches ``Trainer.fit`` consumes:

- the order of an epoch is a function of ``(seed, epoch)`` alone (``epoch_indices``: the same
  order as ``fit`` gives arrays held in memory);
- Grain's reader threads gather, decode and augment several batches at once, ahead of the
  step that needs them;
- the last batch is padded (with example 0) to the full size, its padded rows masked 0;
- augmentation draws each example's randomness from ``(seed, epoch, position in the epoch)``,
  so it does not depend on the number of threads, on the batch size of a process, or on
  where a resumed run starts;
- batch ``b`` of an epoch is random access: ``batches(..., start=b)`` resumes there without
  reading what came before, and ``fit`` saves ``(epoch, b)`` in its checkpoints;
- in a run of several processes each reads only its own rows of every global batch (by
  ``jax.process_index()``); :func:`global_batch` assembles the global array from the local
  pieces, and :func:`prefetch_to_device` copies the next batches while the step runs.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator

import jax
import numpy as np

from jaxdl.data.augment import takes_first_index
from jaxdl.data.dataset import ArrayDataset, DatasetInfo, epoch_indices

Decode = Callable[[object], tuple[np.ndarray, object]]


def _process() -> tuple[int, int]:
    return jax.process_index(), jax.process_count()


class Pipeline:
    """Batches streamed from ``source``, decoded and augmented by Grain's reader threads.

    Args:
      source: random access to examples: ``len(source)`` and ``source[i]``; or an
        ``ArrayDataset`` / (x, y) tuple, whose rows are gathered directly.
      decode: ``decode(record) -> (x, y)`` for one record of ``source``; default: records
        that are (x, y) pairs, or TFDS image dicts {"image": uint8 (H, W, C), "label"}
        (float32 images in [0, 1], int32 labels).
      transform: ``transform(x) -> x`` on every batch after decoding, e.g. a
        ``Standardizer`` fitted on the training split (``Standardizer.fit_batches``).
      augment: ``augment(key, x, first_index=0) -> x`` on a batch, such as
        ``jaxdl.data.augment.compose(...)``, or ``augment(key, x)`` (given a key per batch,
        so its draws depend on the batch size). It runs in the reader threads on the host
        CPU (not in the training step), for training batches only (``batches(train=True)``).
      info: the data set's ``DatasetInfo``.
      labels: (N,) the labels of every example, if known: ``Trainer`` then checks them
        against the model before training, and ``class_weight="balanced"`` uses them.
      num_threads: reader threads, each preparing whole batches (default 4).
      buffer: batches prepared ahead of the one being consumed (default 8).
      process_index: which process this is, in [0, process_count): it reads rows
        ``[process_index * b, (process_index + 1) * b)`` of each global batch, ``b`` its
        rows (default ``jax.process_index()``).
      process_count: how many processes share each global batch, ``batch_size /
        process_count`` rows each (default ``jax.process_count()``).

    Example:
      >>> x = np.arange(20, dtype=np.float32).reshape(10, 2)  # 10 examples, 2 features
      >>> y = np.arange(10) % 2
      >>> pipeline = jaxdl.data.Pipeline((x, y), num_threads=1)
      >>> pipeline.num_batches(4)  # ceil(10 / 4)
      3
      >>> last = list(pipeline.batches(4))[-1]  # examples 8, 9, then example 0 twice
      >>> last["x"][:, 0], last["mask"]
      (array([16., 18.,  0.,  0.], dtype=float32), array([1., 1., 0., 0.], dtype=float32))
      >>> trainer = jaxdl.Trainer(jaxdl.models.MLP((8, 2)))
      >>> history = trainer.fit(pipeline, epochs=1, batch_size=4, verbose=False)
      >>> sorted(history)
      ['accuracy', 'loss', 'lr']
    """

    per_process = True  # batches are this process's rows of the global batch (for Trainer)

    def __init__(
        self,
        source,
        *,
        decode: Decode | None = None,
        transform: Callable | None = None,
        augment: Callable | None = None,
        info: DatasetInfo | None = None,
        labels=None,
        num_threads: int = 4,
        buffer: int = 8,
        process_index: int | None = None,
        process_count: int | None = None,
    ):
        if isinstance(source, tuple) and len(source) == 2:  # (x, y); a list is records
            source = ArrayDataset(np.asarray(source[0]), np.asarray(source[1]))
        if not isinstance(source, ArrayDataset) and not (
            hasattr(source, "__len__") and hasattr(source, "__getitem__")
        ):
            raise TypeError(
                "Pipeline: expected a random-access source (len() and [i]) or an (x, y) "
                f"tuple, got {type(source).__name__}"
            )
        if len(source) == 0:
            raise ValueError("Pipeline: the source holds no example")
        index, count = _process()
        self.process_index = index if process_index is None else int(process_index)
        self.process_count = count if process_count is None else int(process_count)
        if not 0 <= self.process_index < self.process_count:
            raise ValueError(
                f"Pipeline: process_index must be in [0, {self.process_count}), got "
                f"{self.process_index}"
            )
        for name, value in (("num_threads", num_threads), ("buffer", buffer)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Pipeline: {name} must be a positive int, got {value!r}")
        self.source, self.decode, self.transform = source, decode, transform
        self.augment, self.info = augment, info
        self.num_threads, self.buffer = num_threads, buffer
        self._labels = None if labels is None else np.asarray(labels)
        if isinstance(source, ArrayDataset) and self._labels is None and decode is None:
            self._labels = np.asarray(source.y)
        self._augment_cpu = None

    def __len__(self) -> int:
        return len(self.source)

    def __repr__(self) -> str:
        name = self.info.name if self.info else type(self.source).__name__
        return (
            f"Pipeline({name}, {len(self)} examples, process {self.process_index} of "
            f"{self.process_count}, {self.num_threads} threads)"
        )

    # ------------------------------------------------------------------ reading

    def _read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Examples at ``indices`` as stacked (x, y)."""
        if isinstance(self.source, ArrayDataset) and self.decode is None:
            return self.source.x[indices], self.source.y[indices]
        records = [self.source[int(i)] for i in indices]
        if self.decode is None:
            return _decode_default(records)
        pairs = [self.decode(r) for r in records]
        return np.stack([p[0] for p in pairs]), np.stack([np.asarray(p[1]) for p in pairs])

    def first(self, n: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of the first ``n`` examples, read directly (e.g. for a model's shapes)."""
        x, y = self._read(np.arange(min(n, len(self))))
        return (x if self.transform is None else np.asarray(self.transform(x))), y

    def targets(self) -> np.ndarray | None:
        """(N,) every example's label when known (``labels=``, or an in-memory source);
        None otherwise: finding them would mean reading the whole data set."""
        return self._labels

    def _local_rows(self, batch_size: int) -> int:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
            raise TypeError(f"batch_size: expected an int, got {type(batch_size).__name__}")
        if batch_size < 1 or batch_size % self.process_count:
            raise ValueError(
                f"batch_size: expected a positive multiple of the {self.process_count} "
                f"processes (the global batch), got {batch_size}"
            )
        return batch_size // self.process_count

    def _augmented(self, x: np.ndarray, key, first_index: int) -> np.ndarray:
        if self._augment_cpu is None:
            self._augment_cpu = jax.jit(self.augment)
        cpu = jax.devices("cpu")[0]
        x, key = jax.device_put((x, key), cpu)  # the host's cores, not the accelerator
        if not takes_first_index(self.augment):  # then it draws from the batch's key alone
            key = jax.random.fold_in(key, first_index)
            return np.asarray(self._augment_cpu(key, x))
        return np.asarray(self._augment_cpu(key, x, first_index=first_index))

    # ------------------------------------------------------------------ batches

    def num_batches(self, batch_size: int, **_) -> int:
        """Batches per epoch: ceil(N / batch_size), the last one padded."""
        self._local_rows(batch_size)
        return -(-len(self) // batch_size)

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        epoch: int = 0,
        start: int = 0,
        train: bool = False,
    ) -> Iterator[dict]:
        """This process's rows of the global batches ``start, start + 1, ...`` of ``epoch``.

        Args:
          batch_size: the global batch (a multiple of the process count).
          shuffle: draw the epoch's order at random (default False: the source's order).
          seed: with ``epoch``, fixes the shuffled order and the augmentation's draws
            (default 0).
          epoch: the epoch whose order is served (default 0); the order is
            ``epoch_indices(N, batch_size, shuffle=shuffle, seed=seed, epoch=epoch)``, the
            same in every process.
          start: the first batch to serve (a resumed run's position in the epoch).
          train: apply ``augment`` (training batches only).

        Yields:
          {"x": (b, *input_shape), "y": (b, ...), "mask": (b,) float32}, with
          ``b = batch_size / process_count``: rows ``[p * b, (p + 1) * b)`` of each global
          batch for process ``p``.
        """
        import grain

        rows = self._local_rows(batch_size)
        order = dict(shuffle=shuffle, seed=seed, epoch=epoch)
        indices, mask = epoch_indices(len(self), batch_size, **order)
        first = self.process_index * rows
        indices, mask = indices[:, first : first + rows], mask[:, first : first + rows]
        if not 0 <= start <= len(indices):
            raise ValueError(f"start: expected a batch in [0, {len(indices)}], got {start}")
        key = None
        if train and self.augment is not None:
            key = jax.random.fold_in(jax.random.key(seed), epoch)

        def load(step: int) -> dict:
            x, y = self._read(indices[step])
            if self.transform is not None:
                x = np.asarray(self.transform(x))
            if key is not None:
                x = self._augmented(x, key, step * batch_size + first)
            _check_finite(x, indices[step], step)
            return {"x": x, "y": y, "mask": mask[step]}

        options = grain.ReadOptions(num_threads=self.num_threads, prefetch_buffer_size=self.buffer)
        dataset = grain.MapDataset.range(start, len(indices)).map(load)
        return iter(dataset.to_iter_dataset(options))


def _check_finite(x, rows: np.ndarray, step: int) -> None:
    """Float features of a batch hold no NaN or infinity (as ``fit`` checks arrays): one
    ``np.isfinite`` pass on the host, cheap next to decoding the batch."""
    x = np.asarray(x)
    floating = x.dtype.kind in "fc" or x.dtype.name == "bfloat16"
    if floating and not np.isfinite(x).all():
        bad = ~np.isfinite(x).reshape(len(x), -1).all(axis=1) if x.ndim else np.array([True])
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"Pipeline: x of batch {step} contains NaN or infinite values (first in example "
            f"{int(rows[row]) if row < len(rows) else row} of the source)"
        )


def _decode_default(records: list) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) pairs stacked, or TFDS image dicts as float32 images in [0, 1] and int32
    labels, converted once per batch (few allocations: the reader threads share malloc)."""
    first = records[0]
    if isinstance(first, dict) and "image" in first and "label" in first:
        images = np.stack([r["image"] for r in records])
        labels = np.array([r["label"] for r in records], np.int32)
        return images.astype(np.float32) / np.float32(255.0), labels
    if isinstance(first, tuple | list) and len(first) == 2:
        return np.stack([r[0] for r in records]), np.stack([np.asarray(r[1]) for r in records])
    raise TypeError(
        "Pipeline: pass decode= to turn a record into (x, y); the default takes (x, y) pairs "
        f"and TFDS image dicts, got {type(first).__name__}"
    )


def global_batch(local: dict, sharding: jax.sharding.Sharding) -> dict:
    """One global array per field from each process's rows (``local``: this process's
    (b, ...) pieces, in process order), laid out with ``sharding`` (rows over the devices)."""
    return jax.tree.map(lambda a: jax.make_array_from_process_local_data(sharding, a), local)


def prefetch_to_device(batches: Iterable, place: Callable, size: int = 2) -> Iterator:
    """``place(batch)`` for the batches ``size`` ahead of the one being consumed.

    JAX copies to the device asynchronously, so batch ``n + size`` is on its way while the
    step runs on batch ``n``.
    """
    queue = collections.deque()
    for batch in batches:
        queue.append(place(batch))
        if len(queue) > size:
            yield queue.popleft()
    while queue:
        yield queue.popleft()
