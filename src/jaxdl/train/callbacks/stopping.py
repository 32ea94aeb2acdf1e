"""``EarlyStopping``: end a run whose monitored metric has stopped improving."""

from __future__ import annotations

import logging
import math

import jax

from jaxdl import _checks
from jaxdl.train.callbacks.base import Callback, monitored

# One logger for the whole package, under its own name: a filter or handler set on
# "jaxdl.train.callbacks" sees every callback's messages, whichever module sends them.
logger = logging.getLogger("jaxdl.train.callbacks")


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``mode`` is "min", "max" or "auto" (min for losses and errors, max otherwise). With
    ``restore_best=True`` the parameters and batch statistics of the best epoch are put back
    when training ends. ``stopped_epoch`` and ``best_epoch`` are 0-based epoch indices.

    Args:
      monitor: a metric of the epoch's logs (default "val_loss": needs validation data).
      patience: epochs without improvement before the run stops, >= 0 (default 5).
      min_delta: an improvement must be larger than this (default 0).
      mode: "min", "max" or "auto" (default).
      restore_best: put the best epoch's variables back at the end (default True).

    Example:
      >>> x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
      >>> y = (x[:, 0] > 0).astype(np.int32)
      >>> stop = jaxdl.EarlyStopping("val_loss", patience=2, min_delta=10.0)
      >>> trainer = jaxdl.Trainer(jaxdl.models.MLP((8, 2)))
      >>> history = trainer.fit(
      ...     x, y, epochs=20, batch_size=16, validation_split=0.25, callbacks=[stop],
      ...     verbose=False,
      ... )
      >>> len(history["loss"]), stop.best_epoch, stop.stopped_epoch  # no gain of 10 after 0
      (3, 0, 2)
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
        """Take back what ``state_dict`` returned (a checkpoint restoring a resumed run):
        the best value, its epoch and the epochs waited since."""
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
        """Take back what ``array_state`` returned: {"params", "batch_stats"} (the batch
        statistics may be missing: none), the best epoch's variables that ``restore_best``
        puts back at the end of the run."""
        self._best_variables = (arrays["params"], arrays.get("batch_stats", {}))

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, trainer, epoch, logs):
        value = monitored(trainer, logs, self.monitor, "EarlyStopping")
        if value is None:
            return
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
                logger.info(
                    "epoch %d: stopping early, %s has not improved for %d epochs (best %.6g "
                    "at epoch %d)",
                    epoch + 1,
                    self.monitor,
                    self.wait,
                    self.best,
                    self.best_epoch + 1,
                )

    def on_train_end(self, trainer):
        if self.restore_best and self._best_variables is not None:
            params, batch_stats = jax.device_put(self._best_variables)
            trainer.state = trainer.state.replace(params=params, batch_stats=batch_stats)
            logger.info("restored the parameters of epoch %d, the best", self.best_epoch + 1)
