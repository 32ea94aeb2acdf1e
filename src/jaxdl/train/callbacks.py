"""Callbacks: every side effect of a run, on the host, never inside compiled code.

The loop (``jaxdl.train.loop``) only dispatches; the progress bar, the history, the
checkpoints, CSV logs, early stopping and the non-finite policy are all callbacks in one
``CallbackList``. The hooks, in the order a run calls them:

| hook                                    | when                                            |
|-----------------------------------------|-------------------------------------------------|
| ``on_train_begin(trainer)``             | once, before the first epoch (a resume restores) |
| ``on_epoch_begin(trainer, epoch)``      | before each epoch's first compiled call         |
| ``on_train_batch_end(trainer, b, n)``   | after each compiled call: ``b`` batches of the  |
|                                         | epoch are done, ``n`` of them in that call      |
| ``on_validation_end(trainer, logs)``    | after the epoch's validation (``val_*`` logs)   |
| ``on_epoch_end(trainer, epoch, logs)``  | after each complete epoch, ``logs`` its numbers |
| ``on_train_end(trainer)``               | once, also when the run stops on an error       |

``trainer.run`` (a ``jaxdl.train.loop.Run``) says where the run is: epoch, batch, the
epoch's running metric states, the history. Setting ``trainer.stop_training = True`` ends
the run after the current compiled call. A callback that keeps state across a resumed run
offers ``state_dict``/``load_state_dict`` (JSON) and ``array_state``/``load_array_state``
(arrays); checkpoints keep both.
"""

from __future__ import annotations

import csv
import math
import os
import sys

import jax

from jaxdl import _checks
from jaxdl.train.errors import NonFiniteLossError


class Callback:
    """Hooks the loop calls (see the module's table); each does nothing by default."""

    def on_train_begin(self, trainer) -> None:
        pass

    def on_epoch_begin(self, trainer, epoch: int) -> None:
        pass

    def on_train_batch_end(self, trainer, batch: int, steps: int) -> None:
        pass

    def on_validation_end(self, trainer, logs: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, trainer, epoch: int, logs: dict[str, float]) -> None:
        pass

    def on_train_end(self, trainer) -> None:
        pass


class CallbackList:
    """Callbacks called in order, hook by hook. ``on_train_end`` reaches every callback even
    when one of them raises; the first error is raised after."""

    def __init__(self, callbacks):
        callbacks = list(callbacks)
        for i, callback in enumerate(callbacks):
            if not isinstance(callback, Callback):
                raise TypeError(
                    f"callbacks[{i}]: expected a jaxdl.Callback, got {type(callback).__name__}"
                )
        self.callbacks = callbacks

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)

    def sync_every(self) -> int | None:
        """The fewest steps any callback lets pass between two returns to the host."""
        every = [c.sync_every for c in self.callbacks if getattr(c, "sync_every", None)]
        return min(every) if every else None

    def on_train_begin(self, trainer):
        for c in self.callbacks:
            c.on_train_begin(trainer)

    def on_epoch_begin(self, trainer, epoch):
        for c in self.callbacks:
            c.on_epoch_begin(trainer, epoch)

    def on_train_batch_end(self, trainer, batch, steps):
        for c in self.callbacks:
            c.on_train_batch_end(trainer, batch, steps)

    def on_validation_end(self, trainer, logs):
        for c in self.callbacks:
            c.on_validation_end(trainer, logs)

    def on_epoch_end(self, trainer, epoch, logs):
        for c in self.callbacks:
            c.on_epoch_end(trainer, epoch, logs)

    def on_train_end(self, trainer):
        first = None
        for c in self.callbacks:
            try:
                c.on_train_end(trainer)
            except BaseException as error:  # noqa: BLE001 - every callback must end
                first = first or error
        if first is not None:
            raise first


def callbacks_argument(callbacks) -> list:
    """``fit(callbacks=)`` checked: a list (or tuple) of ``Callback`` objects."""
    if isinstance(callbacks, Callback):
        raise TypeError("callbacks: expected a list of callbacks, got one callback; use [callback]")
    if not isinstance(callbacks, list | tuple):
        raise TypeError(f"callbacks: expected a list of jaxdl.Callback, got {callbacks!r}")
    return list(CallbackList(callbacks))


class History(Callback):
    """Appends each epoch's logs to ``trainer.run.history`` ({name: [value per epoch]})."""

    def on_epoch_end(self, trainer, epoch, logs):
        for k, v in logs.items():
            trainer.run.history.setdefault(k, []).append(v)


class ProgressBar(Callback):
    """A tqdm bar over the run's steps, and a line of numbers after each epoch. Where
    standard error is neither a terminal nor a notebook, only the epoch lines are written
    (no bar frames in a log file)."""

    def __init__(self):
        self.bar = None

    def on_epoch_begin(self, trainer, epoch):
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=trainer.run.remaining_steps(),
                unit="step",
                dynamic_ncols=True,
                leave=True,
                # no bar frames in a log file; a notebook shows its own widget
                disable=not (sys.stderr.isatty() or "ipykernel" in sys.modules),
            )

    def on_train_batch_end(self, trainer, batch, steps):
        self.bar.update(steps)

    def on_epoch_end(self, trainer, epoch, logs):
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()}, refresh=False)
        self.bar.write(f"epoch {epoch + 1}: " + "  ".join(f"{k}={v:.4f}" for k, v in logs.items()))

    def on_train_end(self, trainer):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _fail(trainer, message: str):
    """Raise NonFiniteLossError, marking the trainer's state as broken: ``predict`` and
    ``evaluate`` then refuse it rather than return NaN."""
    trainer.broken = message
    raise NonFiniteLossError(message)


def raise_if_nonfinite(trainer) -> None:
    """NonFiniteLossError when a loss of the running epoch was NaN or infinite (unless the
    optimizer skips such updates)."""
    run = trainer.run
    bad = int(jax.device_get(run.first_bad))
    if bad >= 0 and not trainer.optimizer.skip_nonfinite:
        _fail(
            trainer,
            f"the training loss became NaN or infinite at step {bad} "
            f"(epoch {run.epoch}, batch {bad - run.epoch_start_step}); lower the "
            "learning rate, clip gradients (clip_norm=) or check the data",
        )


class NonFiniteCheck(Callback):
    """The non-finite policy: stop with ``NonFiniteLossError`` after an epoch whose loss was
    NaN or infinite; with ``Optimizer(skip_nonfinite=True)``, count the skipped updates of
    each epoch (``skipped_updates`` in the logs) and stop only after more than
    ``max_skipped_in_a_row`` in a row."""

    def __init__(self):
        self.skipped_before = 0

    def state_dict(self) -> dict:
        return {"skipped_before": self.skipped_before}

    def load_state_dict(self, saved: dict) -> None:
        self.skipped_before = int(saved["skipped_before"])

    def on_train_begin(self, trainer):
        opt_state = trainer.state.opt_state
        self.skipping = trainer.optimizer.skip_nonfinite
        self.limit = trainer.optimizer.max_skipped_in_a_row
        self.skipped_before = int(jax.device_get(opt_state.total_notfinite)) if self.skipping else 0

    def on_epoch_end(self, trainer, epoch, logs):
        if self.skipping:
            opt_state = trainer.state.opt_state
            total, in_a_row = jax.device_get((opt_state.total_notfinite, opt_state.notfinite_count))
            if in_a_row > self.limit:
                _fail(
                    trainer,
                    f"{in_a_row} updates in a row had NaN or infinite gradients (epoch "
                    f"{epoch}); lower the learning rate, clip gradients or check the data",
                )
            logs["skipped_updates"] = float(total - self.skipped_before)
            self.skipped_before = int(total)
        raise_if_nonfinite(trainer)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``mode`` is "min", "max" or "auto" (min for losses and errors, max otherwise). With
    ``restore_best=True`` the parameters and batch statistics of the best epoch are put back
    when training ends. ``stopped_epoch`` and ``best_epoch`` are 0-based epoch indices.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best: bool = True,
    ):
        mode = _checks.monitor_mode(monitor, mode)
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience: expected an int >= 0, got {patience!r}")
        if not isinstance(min_delta, int | float) or not math.isfinite(min_delta):
            raise ValueError(f"min_delta: expected a finite number, got {min_delta!r}")
        self.monitor, self.patience, self.min_delta = monitor, patience, abs(min_delta)
        self.mode, self.restore_best = mode, restore_best

    def on_train_begin(self, trainer):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch, self.stopped_epoch, self.wait = -1, -1, 0
        self._best_variables = None

    def state_dict(self) -> dict:
        """What a checkpoint keeps of this callback (JSON), so a resumed run stops alike."""
        best = None if math.isinf(self.best) else self.best
        return {"best": best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, saved: dict) -> None:
        if saved["best"] is not None:
            self.best = saved["best"]
        self.best_epoch, self.wait = saved["best_epoch"], saved["wait"]

    def array_state(self):
        """The best epoch's parameters and batch statistics, which a checkpoint keeps as
        arrays (None before the first improvement or without ``restore_best``)."""
        if self._best_variables is None:
            return None
        params, batch_stats = self._best_variables
        return {"params": params, "batch_stats": batch_stats}

    def load_array_state(self, arrays) -> None:
        self._best_variables = (arrays["params"], arrays.get("batch_stats", {}))

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, trainer, epoch, logs):
        if self.monitor not in logs:
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r}, which this run does not produce; "
                f"available: {', '.join(sorted(logs))}"
            )
        value = logs[self.monitor]
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                state = trainer.state
                self._best_variables = jax.device_get((state.params, state.batch_stats))
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = epoch
                trainer.stop_training = True

    def on_train_end(self, trainer):
        if self.restore_best and self._best_variables is not None:
            params, batch_stats = jax.device_put(self._best_variables)
            trainer.state = trainer.state.replace(params=params, batch_stats=batch_stats)


class CSVLogger(Callback):
    """Append one row per epoch to ``path`` (epoch, then each metric), flushed every epoch.
    The folder must exist; with ``append=False`` an existing file is replaced."""

    def __init__(self, path: str | os.PathLike, append: bool = False):
        self.path, self.append = os.fspath(path), append
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"CSVLogger: path {self.path!r}: no folder {folder}")

    def on_train_begin(self, trainer):
        exists = self.append and os.path.exists(self.path) and os.path.getsize(self.path) > 0
        self._file = open(self.path, "a" if self.append else "w", newline="")  # noqa: SIM115
        self._writer = None
        self._write_header = not exists

    def on_epoch_end(self, trainer, epoch, logs):
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch", *logs])
            if self._write_header:
                self._writer.writeheader()
        self._writer.writerow({"epoch": epoch, **logs})
        self._file.flush()

    def on_train_end(self, trainer):
        if getattr(self, "_file", None) is not None:
            self._file.close()
            self._file = None
