"""The pieces a :class:`jaxdl.data.Pipeline`'s Grain dataset is built from: which examples
each batch holds (``Plan``), how they are read (``Load``), the Grain iterator kept between
epochs (``Live``) and the batches served from it (``Served``), and what Grain's worker
processes need."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import jax
import numpy as np

from jaxdl.data.dataset import epoch_indices


@dataclass(frozen=True)
class Plan:
    """Which examples batch ``k`` holds: this process's rows of global batch ``step`` of
    epoch ``k // steps`` (``epoch_indices``: past the epoch's end example 0, masked)."""

    size: int
    batch_size: int
    first: int
    rows: int
    steps: int
    shuffle: bool
    seed: int

    def __call__(self, k: int, step: int) -> dict:
        epoch = k // self.steps
        indices, mask = _epoch_order(self.size, self.batch_size, self.shuffle, self.seed, epoch)
        rows = slice(self.first, self.first + self.rows)
        return {"epoch": epoch, "step": step, "indices": indices[step, rows],
                "mask": mask[step, rows]}  # fmt: skip


@functools.lru_cache(maxsize=8)
def _epoch_order(size: int, batch_size: int, shuffle: bool, seed: int, epoch: int):
    """An epoch's (indices, mask), drawn once per process and epoch (a few kept: the
    training and validation pipelines each read one epoch and the next ahead)."""
    return epoch_indices(size, batch_size, shuffle=shuffle, seed=seed, epoch=epoch)


@functools.lru_cache(maxsize=4)
def _epoch_key(seed: int, epoch: int):
    """The augmentation's key of an epoch, made once per process and epoch (making it costs
    as much as augmenting a small batch)."""
    return jax.random.fold_in(jax.random.key(seed), epoch)


class Load:
    """Reads, decodes, transforms and augments the examples a :class:`Plan` names."""

    def __init__(self, pipeline, augment_seed: int | None, plan: Plan):
        self.pipeline, self.augment_seed, self.plan = pipeline, augment_seed, plan

    def __call__(self, planned: dict) -> dict:
        pipeline, indices = self.pipeline, planned["indices"]
        x, y = pipeline._read(indices)
        if pipeline.transform is not None:
            x = np.asarray(pipeline.transform(x))
        if self.augment_seed is not None:
            key = _epoch_key(self.augment_seed, planned["epoch"])
            first_index = planned["step"] * self.plan.batch_size + self.plan.first
            x = pipeline._augmented(x, key, first_index)
        check_finite(x, indices, planned["step"])
        return {"x": x, "y": y, "mask": planned["mask"]}


class Live:
    """A Grain iterator kept between calls of ``batches``, and the batch ``k`` it serves
    next."""

    def __init__(self, iterator, next_batch: int, from_workers: bool):
        self.iterator, self.next, self.busy = iterator, next_batch, False
        self.from_workers = from_workers

    def at(self, first: int, period: int | None) -> bool:
        if period is None:
            return self.next == first
        return self.next >= 0 and self.next % period == first % period

    def close(self) -> None:
        self.next = -1
        close = getattr(self.iterator, "close", None)
        if close is not None:
            close()


class Served(Iterator[dict]):
    """``count`` batches of a :class:`Live` iterator; it is free again once they are
    served or this is dropped."""

    def __init__(self, live: Live, count: int):
        self.live, self.left = live, count
        live.busy = True

    def __next__(self) -> dict:
        if self.live is None or self.left == 0:
            self._release()
            raise StopIteration
        try:
            batch = next(self.live.iterator)
        except BaseException:
            self.live.next = -1  # never reused: where it stands is unknown
            self._release()
            raise
        self.live.next += 1
        self.left -= 1
        if self.live.from_workers:  # out of Grain's shared memory, freed here and now
            batch = {name: np.array(value) for name, value in batch.items()}
        return batch

    def _release(self) -> None:
        if self.live is not None:
            self.live.busy, self.live = False, None

    __del__ = _release


def host_only(worker_index: int, worker_count: int) -> None:
    """In a Grain worker: JAX (for augmentation) on the host CPU only, so that a worker
    never claims an accelerator's memory."""
    del worker_index, worker_count
    jax.config.update("jax_platforms", "cpu")


def absl_flags_readable() -> None:
    """Grain 0.2.18 reads one of its absl flags when it starts workers beside JAX, which
    fails in a program that never parsed absl flags (google/grain#1355, fixed after that
    release). Marking them parsed leaves every flag at its default, as it was."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def check_picklable(**parts) -> None:
    """Grain's workers receive the pipeline pickled: say which argument will not pickle
    before any worker starts."""
    import cloudpickle

    for name, value in parts.items():
        try:
            cloudpickle.dumps(value)
        except Exception as error:  # noqa: BLE001 - any failure means the same to the user
            raise TypeError(
                f"Pipeline: with num_workers, {name} must pickle (cloudpickle) to reach the "
                f"worker processes; {type(value).__name__} does not: {error}"
            ) from error


def check_finite(x, rows: np.ndarray, step: int) -> None:
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
