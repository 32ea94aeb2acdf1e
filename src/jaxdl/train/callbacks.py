"""Host-side callbacks: they see each epoch's numbers and never enter compiled code."""

from __future__ import annotations

import csv
import math
import os
from typing import TYPE_CHECKING

import jax

from jaxdl import _checks

if TYPE_CHECKING:
    from jaxdl.train.trainer import Trainer


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss."""


class Callback:
    """Hooks the :class:`Trainer` calls; ``logs`` maps metric names to this epoch's floats.

    Set ``trainer.stop_training = True`` to end ``fit`` after the current epoch.
    """

    def on_train_begin(self, trainer: Trainer) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        pass

    def on_train_end(self, trainer: Trainer) -> None:
        pass


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
    """Append one row per epoch to ``path`` (epoch, then each metric), flushed every epoch."""

    def __init__(self, path: str | os.PathLike, append: bool = False):
        self.path, self.append = os.fspath(path), append

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
        self._file.close()
