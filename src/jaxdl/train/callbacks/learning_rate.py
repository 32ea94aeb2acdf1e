"""``ReduceLROnPlateau``: lower the learning rate when a monitored metric stops improving."""

from __future__ import annotations

import logging
import math

import jax
import numpy as np

from jaxdl import _checks, optim
from jaxdl.train.callbacks.base import Callback, monitored

# One logger for the whole package, under its own name: a filter or handler set on
# "jaxdl.train.callbacks" sees every callback's messages, whichever module sends them.
logger = logging.getLogger("jaxdl.train.callbacks")


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved for
    ``patience`` epochs, as Keras's callback of that name does.

    The factor lives in the optimizer state (a ``jaxdl.optim.LearningRateFactorState``: built
    in with ``Optimizer.build(learning_rate_factor=True)``, or else put after the optimizer
    when a fit with this callback begins, so the run compiles with it from its start): a
    reduction between epochs compiles nothing, a checkpoint keeps it and a resumed run goes
    on at the reduced rate. Every parameter group's rate is multiplied, and
    a ``schedule`` goes on under the factor. The history's ``lr`` shows a reduction made
    after epoch ``e`` from epoch ``e + 1``, the first that trains with it. Unlike
    ``schedule="plateau"``, which watches the training loss inside the step, this watches
    any metric of the logs, validation metrics included.

    Args:
      monitor: a metric of the logs (default "val_loss": needs ``validation_data``).
      factor: each reduction multiplies the rate by this, in (0, 1) (default 0.1).
      patience: epochs without improvement before a reduction, >= 1 (default 10).
      min_delta: an improvement must be larger than this (default 1e-4).
      cooldown: epochs after a reduction that count for nothing (default 0).
      min_lr: the rate is never taken below this (with groups: the highest group rate);
        a reduction that would cross it sets it to ``min_lr`` (default 0).
      mode: "min", "max" or "auto" (min for losses and errors, max otherwise).

    Attributes:
      best: the best monitored value so far; ``wait``: epochs since it, or since the last
      reduction; ``cooldown_counter``: cooldown epochs left.
      needs_learning_rate_factor: True: a trainer that builds its optimizer for a fit with
        this callback builds the factor in (``Optimizer.build(learning_rate_factor=True)``).
    """

    needs_learning_rate_factor = True

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        mode: str = "auto",
    ):
        self.mode = _checks.monitor_mode(monitor, mode)
        if isinstance(factor, bool) or not isinstance(factor, int | float) or not 0 < factor < 1:
            raise ValueError(f"factor: expected a number in (0, 1), got {factor!r}")
        for name, value, low in (("patience", patience, 1), ("cooldown", cooldown, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
        for name, value in (("min_delta", min_delta), ("min_lr", min_lr)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
        self.monitor, self.factor, self.patience = monitor, float(factor), patience
        self.min_delta, self.cooldown, self.min_lr = float(min_delta), cooldown, float(min_lr)
        self._reset()

    def _reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait, self.cooldown_counter = 0, 0

    def state_dict(self) -> dict:
        """What a checkpoint keeps of this callback (JSON); the factor itself is in the
        optimizer state."""
        best = None if math.isinf(self.best) else self.best
        return {"best": best, "wait": self.wait, "cooldown_counter": self.cooldown_counter}

    def load_state_dict(self, saved: dict) -> None:
        """Take back what ``state_dict`` returned (a checkpoint restoring a resumed run):
        the best value, the epochs waited and the cooldown left."""
        self._reset()
        if saved["best"] is not None:
            self.best = float(saved["best"])
        self.wait, self.cooldown_counter = int(saved["wait"]), int(saved["cooldown_counter"])

    def on_train_begin(self, trainer):
        state = trainer.state
        if np.ndim(jax.device_get(state.step)):
            raise ValueError(
                "ReduceLROnPlateau changes one run's learning rate; a sweep's members would "
                "each need their own: give each configuration its own Trainer"
            )
        self._reset()
        if not optim.has_learning_rate_factor(state.opt_state):
            if getattr(trainer.optimizer, "ema", None) is not None:
                raise ValueError(
                    "ReduceLROnPlateau: this state's optimizer was built without a "
                    "learning-rate factor, and one put after it would come after the average "
                    "of Optimizer(ema=...), which must see the scaled updates; give the "
                    "callback to the fit that builds the state (the first)"
                )
            tx, opt_state = optim.with_learning_rate_factor(state.tx, state.opt_state)
            trainer.state = trainer.strategy.place_state(state.replace(tx=tx, opt_state=opt_state))
        if self.min_lr > 0 and not optim.learning_rates(trainer.state.opt_state):
            raise ValueError(
                "ReduceLROnPlateau(min_lr=...) needs a learning rate it can read: an optimizer "
                "by name (jaxdl.Optimizer), or an optax transformation made with "
                "optax.inject_hyperparams; or leave min_lr at 0"
            )

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, trainer, epoch, logs):
        value = monitored(trainer, logs, self.monitor, "ReduceLROnPlateau")
        if value is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(value):
            self.best, self.wait = value, 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= self.patience and self._reduce(trainer, epoch):
                self.cooldown_counter, self.wait = self.cooldown, 0

    def _reduce(self, trainer, epoch: int) -> bool:
        """Multiply the factor in the state; False when the rate is at ``min_lr`` already."""
        opt_state = trainer.state.opt_state
        (_, node), *_ = optim.find_states(opt_state, optim.LearningRateFactorState)
        old = float(jax.device_get(node.factor))
        rates = [float(v) for v in optim.learning_rates(opt_state).values()]
        new = old * self.factor
        if rates:
            highest = max(rates)
            if not highest > np.float32(self.min_lr):
                return False
            new = max(new, old * self.min_lr / highest)
        trainer.state = trainer.state.replace(
            opt_state=optim.set_learning_rate_factor(opt_state, new)
        )
        logger.info(
            "epoch %d: %s has not improved for %d epochs; learning rate multiplied by %.4g%s",
            epoch + 1,
            self.monitor,
            self.wait,
            new / old,
            f", to {max(rates) * new / old:.4g}" if rates else "",
        )
        return True
