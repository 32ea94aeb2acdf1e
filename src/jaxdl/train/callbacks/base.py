"""The callback protocol: ``Callback`` (the hooks, each a no-op), ``CallbackList`` (calls
them in order), the check of ``fit(callbacks=)`` and ``monitored``, the value a callback
watches in an epoch's logs. The hooks and the order a run calls them in are tabled in the
package's docstring (``jaxdl.train.callbacks``)."""

from __future__ import annotations


class Callback:
    """Hooks the loop calls (see the module's table); each does nothing by default.

    Every hook gets the ``Trainer`` being fitted: ``trainer.state`` is the state as it is at
    that point, ``trainer.run`` (a ``jaxdl.train.loop.Run``) where the run stands. A
    subclass overrides the hooks it needs.
    """

    def on_train_begin(self, trainer) -> None:
        """Called once per ``fit``, before its first epoch, with ``trainer.run`` set and
        ``trainer.state`` built. On ``fit(resume=True)`` the trainer's checkpoint, last in the
        list, restores the state, the epoch, the history and the other callbacks' states in
        its own ``on_train_begin``, after theirs. ``on_train_end`` runs even if this hook
        raises.

        Args:
          trainer: the ``Trainer`` being fitted.
        """

    def on_epoch_begin(self, trainer, epoch: int) -> None:
        """Called before the first compiled call of each epoch the run trains.

        Args:
          trainer: the ``Trainer`` being fitted; ``trainer.run.num_batches`` is the epoch's
            batch count and ``trainer.run.batch`` the batches already done (0, or a resumed
            run's position inside the epoch).
          epoch: the epoch's 0-based index (``trainer.epoch``).
        """

    def on_train_batch_end(self, trainer, batch: int, steps: int) -> None:
        """Called after each compiled call: after every batch when the run takes one step
        per call (``steps_per_call=1``, or as "auto" chose; batch sources, streams); after
        every stretch when an epoch held on the device runs as compiled ``lax.scan``
        stretches (the whole epoch, or stretches ending at multiples of ``sync_every`` when
        a callback asks for that).
        ``trainer.state`` and ``trainer.run.metrics`` are those after the call, on the
        device. Setting ``trainer.stop_training = True`` ends the run after this call; an
        epoch with batches left then gets no ``on_epoch_end``.

        Args:
          trainer: the ``Trainer`` being fitted.
          batch: the batches of the epoch done so far, this call's included
            (``trainer.run.batch``; ``trainer.run.num_batches`` after the epoch's last call).
          steps: how many batches (steps) that call ran.
        """

    def on_validation_end(self, trainer, logs: dict[str, float]) -> None:
        """Called after each validated epoch, before its ``on_epoch_end``: every
        ``validation_freq``-th epoch (default: every epoch) of a fit with
        ``validation_data`` or ``validation_split``; never without validation data.

        Args:
          trainer: the ``Trainer`` being fitted.
          logs: the validation numbers, {"val_<metric>": value}; they then join the epoch's
            logs that ``on_epoch_end`` gets.
        """

    def on_epoch_end(self, trainer, epoch: int, logs: dict[str, float]) -> None:
        """Called after each complete epoch; ``trainer.epoch`` already counts it (it is
        ``epoch + 1``). Every callback gets the same ``logs`` dict in turn, so an entry one
        adds (``History``'s learning rate) is seen by the later ones.

        Args:
          trainer: the ``Trainer`` being fitted.
          epoch: the epoch's 0-based index.
          logs: the epoch's numbers, {name: value}: the training metrics over the whole
            epoch (the loss first), then the ``val_*`` entries of a validated epoch.
        """

    def on_train_end(self, trainer) -> None:
        """Called once per ``fit``, last, however the run ends: after its last epoch, after
        a stop, or when an error ends it (a non-finite loss, an interrupt, a callback that
        raised), which is raised once every callback's ``on_train_end`` has run.

        Args:
          trainer: the ``Trainer`` being fitted.
        """


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
        """Call every callback's ``on_train_begin(trainer)``, in order."""
        for c in self.callbacks:
            c.on_train_begin(trainer)

    def on_epoch_begin(self, trainer, epoch):
        """Call every callback's ``on_epoch_begin(trainer, epoch)``, in order."""
        for c in self.callbacks:
            c.on_epoch_begin(trainer, epoch)

    def on_train_batch_end(self, trainer, batch, steps):
        """Call every callback's ``on_train_batch_end(trainer, batch, steps)``, in order."""
        for c in self.callbacks:
            c.on_train_batch_end(trainer, batch, steps)

    def on_validation_end(self, trainer, logs):
        """Call every callback's ``on_validation_end(trainer, logs)``, in order, with the
        same ``logs``."""
        for c in self.callbacks:
            c.on_validation_end(trainer, logs)

    def on_epoch_end(self, trainer, epoch, logs):
        """Call every callback's ``on_epoch_end(trainer, epoch, logs)``, in order, with the
        same ``logs`` (what one adds, the later ones see)."""
        for c in self.callbacks:
            c.on_epoch_end(trainer, epoch, logs)

    def on_train_end(self, trainer):
        """Call every callback's ``on_train_end(trainer)``, in order, each even when an
        earlier one raised; then raise the first such error."""
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


def monitored(trainer, logs: dict, monitor: str, who: str) -> float | None:
    """The value of ``monitor`` in an epoch's ``logs``; None for a ``val_`` entry on an epoch
    that ``validation_freq`` left unvalidated. A name the run never produces is refused."""
    if monitor in logs:
        return float(logs[monitor])
    run = getattr(trainer, "run", None)
    unvalidated = not any(k.startswith("val_") for k in logs)
    if monitor.startswith("val_") and unvalidated and getattr(run, "validation_freq", 1) > 1:
        return None
    raise ValueError(
        f"{who} monitors {monitor!r}, which this run does not produce; "
        f"available: {', '.join(sorted(logs))}"
    )
