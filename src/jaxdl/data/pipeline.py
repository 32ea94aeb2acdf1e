"""A streaming input pipeline built from Grain's datasets, for data read record by record.

:class:`Pipeline` reads examples from any random-access source (a TFDS array-record data
source from ``jaxdl.data.stream``, a Hugging Face table, an ``ArrayDataset``, or anything with
``len`` and ``[i]``) and serves the fixed-shape batches ``Trainer.fit`` consumes. It is one
Grain ``MapDataset`` per run of epochs, indexed by the batch's number ``k`` since epoch 0:

- the order of epoch ``e`` is ``epoch_indices(N, batch_size, shuffle=, seed=, epoch=e)``,
  a function of ``(seed, epoch)`` alone and the order ``fit`` gives arrays held in memory,
  so a streamed run trains bit for bit as the in-memory one. (Grain's own
  ``MapDataset.shuffle`` orders differently and looks up each index in Python, which
  slowed a 28x28 stream by two fifths: ``benchmarks/README.md``);
- every batch has the full size: the last one of an epoch is padded (with example 0) and its
  padded rows masked 0, which Grain's ``batch`` does not do;
- in a run of several processes each reads only its own rows ``[p * b, (p + 1) * b)`` of every
  global batch (by ``jax.process_index()``); :func:`global_batch` assembles the global array
  from the local pieces, and :func:`prefetch_to_device` copies the next batches while the step
  runs;
- augmentation draws each example's randomness from ``(seed, epoch, position in the epoch)``,
  so it does not depend on threads, workers, the batch size of a process, or where a resumed
  run starts;
- batch ``k`` is random access: ``batches(..., start=b)`` resumes there without reading what
  came before (``fit`` saves ``(epoch, b)`` in its checkpoints), and the Grain iterator of
  :meth:`Pipeline.iterator` resumes exactly from its ``get_state()``;
- Grain's reader threads (``num_threads``), and with ``num_workers`` its worker processes
  (``mp_prefetch``), read, decode and augment several batches ahead of the step. Workers
  sidestep the GIL for decoding written in Python. One iterator serves consecutive epochs,
  so the workers start once per run rather than once per epoch.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator

import jax
import numpy as np

from jaxdl.data.augment import takes_first_index
from jaxdl.data.dataset import ArrayDataset, DatasetInfo
from jaxdl.data.reading import (
    Live,
    Load,
    Plan,
    Served,
    absl_flags_readable,
    check_picklable,
    host_only,
)

Decode = Callable[[object], tuple[np.ndarray, object]]


def _process() -> tuple[int, int]:
    return jax.process_index(), jax.process_count()


class Pipeline:
    """Batches streamed from ``source``, decoded and augmented by Grain's threads or workers.

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
        so its draws depend on the batch size). It runs where the batch is read, on the host
        CPU (not in the training step), for training batches only (``batches(train=True)``).
      info: the data set's ``DatasetInfo``.
      labels: (N,) the labels of every example, if known: ``Trainer`` then checks them
        against the model before training, and ``class_weight="balanced"`` uses them.
      num_threads: Grain reader threads (in each worker, with ``num_workers``), each
        preparing whole batches (default 4).
      num_workers: Grain worker processes (``mp_prefetch``) that read, decode and augment
        batches in parallel, each serving every ``num_workers``-th batch (default 0: threads
        of this process only). Workers pay off when decoding holds the GIL (Python code per
        record); they start once per iterator and are started with ``spawn``, so a script
        using them needs the ``if __name__ == "__main__":`` guard, and ``source``,
        ``decode``, ``transform`` and ``augment`` must pickle (with cloudpickle). If no
        absl flags were parsed, starting workers marks them parsed (at their defaults),
        which Grain 0.2.18 needs.
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
        num_workers: int = 0,
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
        for name, value, least in (
            ("num_threads", num_threads, 1), ("num_workers", num_workers, 0), ("buffer", buffer, 1)
        ):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"Pipeline: {name} must be an int >= {least}, got {value!r}")
        self.source, self.decode, self.transform = source, decode, transform
        self.augment, self.info = augment, info
        self.num_threads, self.num_workers, self.buffer = num_threads, num_workers, buffer
        self._labels = None if labels is None else np.asarray(labels)
        if isinstance(source, ArrayDataset) and self._labels is None and decode is None:
            self._labels = np.asarray(source.y)
        if num_workers:
            check_picklable(source=source, decode=decode, transform=transform, augment=augment)
        self._augment_cpu = None
        self._live: dict[tuple, Live] = {}

    def __len__(self) -> int:
        return len(self.source)

    def __repr__(self) -> str:
        name = self.info.name if self.info else type(self.source).__name__
        workers = f", {self.num_workers} workers" if self.num_workers else ""
        return (
            f"Pipeline({name}, {len(self)} examples, process {self.process_index} of "
            f"{self.process_count}, {self.num_threads} threads{workers})"
        )

    def __getstate__(self) -> dict:
        # what a worker process needs: no compiled augmentation, no live iterators
        return {**self.__dict__, "_augment_cpu": None, "_live": {}}

    def close(self) -> None:
        """Stop the iterators kept between epochs (and their worker processes)."""
        for live in self._live.values():
            live.close()
        self._live.clear()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *_) -> None:
        self.close()

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
        return int(batch_size) // self.process_count

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

    def dataset(self, batch_size: int, *, shuffle: bool = False, seed: int = 0, train=False):
        """The batches of every epoch as one Grain ``MapDataset``, without end.

        Element ``k`` is batch ``k % S`` of epoch ``k // S`` (``S = num_batches``): this
        process's rows of it, {"x", "y", "mask"}, in the order of ``epoch_indices(N,
        batch_size, shuffle=shuffle, seed=seed, epoch=k // S)``.
        """
        import grain

        rows = self._local_rows(batch_size)
        plan = Plan(
            size=len(self), batch_size=int(batch_size), first=self.process_index * rows,
            rows=rows, steps=self.num_batches(batch_size), shuffle=bool(shuffle), seed=seed,
        )  # fmt: skip
        load = Load(self, seed if train and self.augment is not None else None, plan)
        steps = grain.MapDataset.range(plan.steps).repeat(None)
        return steps.map_with_index(plan).map(load)

    def iterator(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        train: bool = False,
        epoch: int = 0,
        start: int = 0,
    ):
        """A Grain ``DatasetIterator`` over the batches from batch ``start`` of ``epoch`` on,
        through every later epoch (the arguments are those of :meth:`batches`).

        Its ``get_state()`` is where it stands; a new iterator with the same arguments, given
        that state by ``set_state``, serves exactly the batches that would have come next.
        """
        import grain

        steps = self.num_batches(batch_size)
        if not 0 <= start <= steps:
            raise ValueError(f"start: expected a batch in [0, {steps}], got {start}")
        dataset = self.dataset(batch_size, shuffle=shuffle, seed=seed, train=train)
        options = grain.ReadOptions(num_threads=self.num_threads, prefetch_buffer_size=self.buffer)
        stream = dataset[epoch * steps + start :].to_iter_dataset(options)
        if self.num_workers:
            each = max(1, -(-self.buffer // self.num_workers))
            workers = grain.MultiprocessingOptions(self.num_workers, per_worker_buffer_size=each)
            absl_flags_readable()
            stream = stream.mp_prefetch(workers, worker_init_fn=host_only)
        return iter(stream)

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
          epoch: the epoch whose order is served (default 0); the same in every process.
          start: the first batch to serve (a resumed run's position in the epoch).
          train: apply ``augment`` (training batches only).

        Yields:
          {"x": (b, *input_shape), "y": (b, ...), "mask": (b,) float32}, with
          ``b = batch_size / process_count``: rows ``[p * b, (p + 1) * b)`` of each global
          batch for process ``p``.

        The iterator reading them is kept: when the next call asks for the batches that
        follow (the next epoch of a run), it carries on, with its threads or workers
        already reading ahead.
        """
        steps = self.num_batches(batch_size)
        if not 0 <= start <= steps:
            raise ValueError(f"start: expected a batch in [0, {steps}], got {start}")
        # an unshuffled epoch without augmentation is the same in every epoch
        same_each_epoch = not shuffle and not (train and self.augment is not None)
        first = start if same_each_epoch else epoch * steps + start
        key = (int(batch_size), bool(shuffle), seed, bool(train))
        live = self._live.get(key)
        if live is None or live.busy or not live.at(first, steps if same_each_epoch else None):
            if live is not None and not live.busy:
                live.close()
            options = dict(shuffle=shuffle, seed=seed, train=train)
            epoch_of, start_of = divmod(first, steps)
            iterator = self.iterator(batch_size, **options, epoch=epoch_of, start=start_of)
            live = Live(iterator, first, from_workers=self.num_workers > 0)
            self._live[key] = live
        return Served(live, steps - start)


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
