"""The loop: epochs, evaluation and prediction as free functions over compiled steps.

A batch travels one way: data adapter (``jaxdl.data.adapters``) -> this loop -> compiled
step (the task's pure step, compiled by the strategy) -> metric states -> callbacks. The loop
owns no side effect and asks nothing of the data's kind; it picks one of two ways to run an
epoch, once per fit:

- "epoch": the data set lives on the device and a whole epoch (or a stretch of
  ``sync_every`` steps, when a callback asks to see the run that often) is one compiled
  ``lax.scan`` gathering its batches by index;
- 1: one compiled step per batch, the adapter's batches copied in as they come.

Every compiled call is followed by ``on_train_batch_end``; the epoch's numbers leave the
device once, at its end.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl.train.callbacks import CallbackList
from jaxdl.train.checkpointing import restored_metrics

# a step counter is int32: no run may hold more steps than that
MAX_STEPS = 2**31 - 1


class Compiled(NamedTuple):
    """A run's compiled functions (``jaxdl.train.parallel`` strategies compile them)."""

    epoch: Callable  # (state, x, y, indices, mask, acc, first_bad) -> (state, acc, first_bad)
    step: Callable  # (state, acc, first_bad, batch) -> (state, acc, first_bad)
    eval: Callable  # (state, acc, batch) -> acc
    predict: Callable  # (state, x) -> outputs
    train_step: Callable  # the pure step, uncompiled
    eval_step: Callable


def compile_steps(task, strategy, metrics, num_classes: int, model) -> Compiled:
    """The task's steps compiled by the strategy (the pmap strategy's steps sum over its
    device axis)."""
    train_step, eval_step = task.make_steps(metrics, num_classes, None, model)
    device_train, device_eval = train_step, eval_step
    if strategy.axis_name is not None:
        device_train, device_eval = task.make_steps(metrics, num_classes, strategy.axis_name, model)
    return Compiled(
        epoch=strategy.compile_epoch(device_train),
        step=strategy.compile_step(device_train),
        eval=strategy.compile_eval(device_eval),
        predict=strategy.compile_predict(),
        train_step=train_step,
        eval_step=eval_step,
    )


@dataclasses.dataclass
class Run:
    """Where a ``fit`` stands, for its callbacks.

    ``epochs`` is the epoch count the run ends at; ``epoch`` the running epoch, of
    ``num_batches`` batches, ``batch`` of them done; ``metrics`` its running merge of metric
    states and ``first_bad`` the first step whose loss was not finite (-1: none), both on the
    device; ``epoch_start_step`` the optimizer step it began at. ``position`` is a
    checkpoint's place inside an epoch that a resumed run starts from.
    """

    adapter: Any
    epochs: int
    callbacks: CallbackList
    empty: Callable[[], Any]
    resume: bool = False
    history: dict = dataclasses.field(default_factory=dict)
    position: dict | None = None
    epoch: int = 0
    batch: int = 0
    num_batches: int = 0
    metrics: Any = None
    first_bad: Any = None
    epoch_start_step: int = 0
    names: tuple[str, ...] = ("loss",)  # the order the logs show the metrics in
    validation_freq: int = 1  # validate after every this many epochs
    max_steps: int | None = None  # stop once the state has taken this many steps

    def steps_left(self, done: int) -> int | None:
        """Of the running epoch, with ``done`` of its batches run: the steps ``max_steps``
        leaves (None: no limit)."""
        if self.max_steps is None:
            return None
        return max(0, self.max_steps - (self.epoch_start_step + done))

    def remaining_steps(self) -> int:
        """The steps left to run, for a progress bar (no loop over a huge epoch count)."""
        start = self.epoch
        left = self.epochs - start
        if left <= 0:
            return 0
        if self.adapter.fixed_length:
            total = left * self.adapter.num_batches(start)
        else:
            total = sum(self.adapter.num_batches(e) for e in range(start, self.epochs))
        return total - self.batch


def ordered(values: dict, first) -> dict:
    """``values`` with the names of ``first`` first, in that order."""
    return {**{k: values[k] for k in first if k in values}, **values}


def check_epochs(epochs, resume: bool, steps_per_epoch: int) -> int:
    """``fit(epochs=)``: an int >= 1 (>= 0 for a resumed run), within a step counter."""
    if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer):
        raise TypeError(f"epochs: expected an int, got {type(epochs).__name__}: {epochs!r}")
    if epochs < (0 if resume else 1):  # a resumed run may have nothing left to do
        raise ValueError(f"epochs: expected a positive int, got {epochs}")
    if epochs * max(steps_per_epoch, 1) > MAX_STEPS:
        raise ValueError(
            f"epochs={epochs} of {steps_per_epoch} steps is more steps than a run can count "
            f"({MAX_STEPS}); use fewer epochs"
        )
    return int(epochs)


def fit(trainer, run: Run, fns: Compiled, mode, validate: Callable | None) -> dict:
    """Run epochs until ``run.epochs`` or a stop; returns the history. ``validate(state)``
    gives the ``val_*`` numbers of an epoch."""
    callbacks, strategy = run.callbacks, trainer.strategy
    trainer.run, trainer.stop_training = run, False
    device_data = None
    try:
        callbacks.on_train_begin(trainer)
        while trainer.epoch < run.epochs and not trainer.stop_training:
            if run.max_steps is not None and _step(trainer) >= run.max_steps:
                break
            epoch = trainer.epoch
            _start_epoch(trainer, run, epoch)
            callbacks.on_epoch_begin(trainer, epoch)
            if mode == "epoch":
                if device_data is None:
                    device_data = strategy.place_data(run.adapter.arrays())
                _device_epoch(trainer, run, fns, device_data)
            else:
                _stepped_epoch(trainer, run, fns)
            if run.batch < run.num_batches:
                break  # stopped inside the epoch
            trainer.epoch += 1
            logs = ordered(strategy.compute(run.metrics), run.names)
            if validate is not None and (epoch + 1) % run.validation_freq == 0:
                val = {f"val_{k}": v for k, v in validate(trainer.state).items()}
                callbacks.on_validation_end(trainer, val)
                logs.update(val)
            callbacks.on_epoch_end(trainer, epoch, logs)
    finally:
        callbacks.on_train_end(trainer)
    return run.history


def _step(trainer) -> int:
    """The optimizer steps the state has taken (a sweep's members: the most of them)."""
    return int(np.max(jax.device_get(trainer.state.step)))


def _start_epoch(trainer, run: Run, epoch: int) -> None:
    run.epoch, run.num_batches = epoch, run.adapter.num_batches(epoch)
    position, run.position = run.position, None
    per_member = trainer.strategy.per_member
    if position is None:
        run.batch, run.metrics = 0, per_member(run.empty())
        run.first_bad = per_member(jnp.asarray(-1, jnp.int32))
        run.epoch_start_step = _step(trainer)
        return
    run.batch = position["batch"]  # continue inside the epoch a checkpoint was saved in
    run.metrics = restored_metrics(per_member(run.empty()), position["acc"])
    run.first_bad = jnp.asarray(position["first_bad"], jnp.int32)
    run.epoch_start_step = position["epoch_start_step"]


def _device_epoch(trainer, run: Run, fns: Compiled, data) -> None:
    """The epoch as compiled stretches over data on the device."""
    indices, mask = trainer.strategy.plan(run.adapter, run.epoch)
    n, done = run.num_batches, run.batch
    left = run.steps_left(done)
    limited = left is not None and done + left < n  # max_steps ends the run in this epoch
    n = done + left if limited else n
    every = run.callbacks.sync_every() or n
    ends = [*range((done // every + 1) * every, n, every), n] if n > done else []
    state, acc, first_bad = trainer.state, run.metrics, run.first_bad
    for start, end in zip([done, *ends[:-1]], ends):
        part = (indices[..., start:end, :], mask[..., start:end, :])
        state, acc, first_bad = fns.epoch(state, data, *part, acc, first_bad)
        trainer.state, run.metrics, run.first_bad, run.batch = state, acc, first_bad, end
        run.callbacks.on_train_batch_end(trainer, end, end - start)
        if trainer.stop_training:
            return
    trainer.stop_training = trainer.stop_training or limited


def _stepped_epoch(trainer, run: Run, fns: Compiled) -> None:
    """The epoch as one compiled step per batch."""
    state, acc, first_bad = trainer.state, run.metrics, run.first_bad
    left = run.steps_left(run.batch)
    limited = left is not None and run.batch + left < run.num_batches
    batches = run.adapter.batches(run.epoch, run.batch)
    if limited:  # max_steps ends the run inside this epoch
        batches = itertools.islice(batches, left)
    for batch in batches:
        state, acc, first_bad = fns.step(state, acc, first_bad, batch)
        trainer.state, run.metrics, run.first_bad = state, acc, first_bad
        run.batch += 1
        run.callbacks.on_train_batch_end(trainer, run.batch, 1)
        if trainer.stop_training:
            return
    trainer.stop_training = trainer.stop_training or limited


def evaluate(strategy, fns: Compiled, state, adapter, empty) -> dict:
    """The metrics of ``state`` over every batch of ``adapter``: {name: value}."""
    acc = strategy.per_member(empty)
    for batch in adapter.batches(0):
        acc = fns.eval(state, acc, batch)
    return strategy.compute(acc)


def predict(strategy, fns: Compiled, state, adapter) -> np.ndarray:
    """Model outputs for every example of ``adapter`` (padding rows dropped), as NumPy."""
    axis = strategy.batch_axis
    outputs = jax.device_get([(fns.predict(state, b["x"]), b["mask"]) for b in adapter.batches(0)])
    keep = lambda out, mask: np.compress(mask > 0, out, axis=axis)
    # several outputs (a tuple such as a VAE's) are concatenated field by field
    parts = [jax.tree.map(lambda o, m=mask: keep(o, m), out) for out, mask in outputs]
    return jax.tree.map(lambda *p: np.concatenate(p, axis=axis), *parts)
