"""The non-finite policy: ``NonFiniteCheck`` and ``raise_if_nonfinite``, which stop a run
whose loss or gradients became NaN or infinite."""

from __future__ import annotations

import jax
import optax

from jaxdl import optim
from jaxdl.train.callbacks.base import Callback
from jaxdl.train.errors import NonFiniteLossError


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
        """What a checkpoint keeps of this callback (JSON): ``{"skipped_before": n}``, the
        optimizer state's total of skipped updates when the last epoch ended (or the run
        began), so a resumed run reports its epoch's ``skipped_updates`` alike."""
        return {"skipped_before": self.skipped_before}

    def load_state_dict(self, saved: dict) -> None:
        """Take back what ``state_dict`` returned (a checkpoint restoring a resumed run)."""
        self.skipped_before = int(saved["skipped_before"])

    @staticmethod
    def _finite_state(trainer) -> optax.ApplyIfFiniteState:
        """The ``apply_if_finite`` state (outermost, unless a callback such as
        ``ReduceLROnPlateau`` wrapped the optimizer)."""
        opt_state = trainer.state.opt_state
        if isinstance(opt_state, optax.ApplyIfFiniteState):
            return opt_state
        return optim.find_states(opt_state, optax.ApplyIfFiniteState)[0][1]

    def on_train_begin(self, trainer):
        self.skipping = trainer.optimizer.skip_nonfinite
        self.limit = trainer.optimizer.max_skipped_in_a_row
        self.skipped_before = 0
        if self.skipping:
            self.skipped_before = int(jax.device_get(self._finite_state(trainer).total_notfinite))

    def on_epoch_end(self, trainer, epoch, logs):
        if self.skipping:
            opt_state = self._finite_state(trainer)
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
