"""``History``: each epoch's logs, the learning rate added, kept in the run's history."""

from __future__ import annotations

from jaxdl import optim
from jaxdl.train.callbacks.base import Callback


class History(Callback):
    """Appends each epoch's logs to ``trainer.run.history`` ({name: [value per epoch]}),
    after adding the learning rate to them.

    The learning rate is the one the epoch ended with, the rate of its last update: the
    schedule's at that update's count (updates, not batches, with ``accumulate_steps``),
    times a ``schedule="plateau"`` scale and the factor of ``ReduceLROnPlateau``
    (``jaxdl.optim.learning_rates``); a reduction between epochs shows from the next epoch,
    the first that trains with it. It is ``lr``, or ``lr/<group>`` for each group of an
    optimizer with parameter groups of their own rates; a run whose optimizer state holds no
    rate (an optax transformation without ``inject_hyperparams``) has none.
    """

    def on_epoch_end(self, trainer, epoch, logs):
        logs.update(learning_rate_logs(trainer))
        for k, v in logs.items():
            trainer.run.history.setdefault(k, []).append(v)


def learning_rate_logs(trainer) -> dict:
    """The learning rate ``trainer``'s state is at, as logs: ``{"lr": rate}``, or one
    ``lr/<group>`` per group for an optimizer with parameter groups of their own rates, in
    every epoch alike (``jaxdl.optim.learning_rates``)."""
    groups = getattr(trainer.optimizer, "param_groups", None) or {}
    by_group = any(rate != optim.FROZEN for rate in groups.values())
    return optim.learning_rates(trainer.state.opt_state, by_group=by_group)
