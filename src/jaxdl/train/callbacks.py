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

``History`` also puts the learning rate into each epoch's logs (``lr``, or one ``lr/<group>``
per parameter group of its own rate), so every later callback (the progress line, CSV,
TensorBoard) sees it. Messages go to the ``jaxdl`` logger (``logging.getLogger("jaxdl")``,
one child per module); jaxdl configures no handler: the host program decides what is shown.
Only the progress bar and its epoch lines write to standard output themselves.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import sys

import jax
import numpy as np
import optax

from jaxdl import _checks, optim
from jaxdl.train.errors import NonFiniteLossError

logger = logging.getLogger(__name__)


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


def format_number(value) -> str:
    """A log value as the progress line shows it: 4 decimals, or 4 significant digits for
    a value under 1e-3 or of 1e5 and more (a learning rate); an array (a sweep's, one value
    per member) element by element."""
    if np.ndim(value):
        return "[" + " ".join(format_number(v) for v in np.ravel(value)) + "]"
    value = float(value)
    return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e5 else f"{value:.4g}"


def _live(stream) -> bool:
    """Whether a bar on ``stream`` is seen as it moves: a terminal, or a notebook (which
    shows its own widget); not a log file or a pipe."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) or "ipykernel" in sys.modules


class ProgressBar(Callback):
    """One line per epoch, each number once: ``epoch 3: loss=0.1234  accuracy=0.9500
    val_loss=0.2345  val_accuracy=0.9200  lr=0.0010``.

    While an epoch runs in a terminal or a notebook, a tqdm bar of its steps stands where its
    line will be (the epoch and its step count, no numbers: those come once, in the line),
    and is cleared when the line is written. Where the stream is not a terminal (a log file,
    a pipe) only the lines are written: no bar frames.

    Args:
      file: the text stream of the bar and the lines; default: standard output as it is when
        training begins.
    """

    def __init__(self, file=None):
        self.file, self.bar = file, None

    def on_train_begin(self, trainer):
        self._stream = self.file if self.file is not None else sys.stdout
        self._live = _live(self._stream)

    def on_epoch_begin(self, trainer, epoch):
        self._close_bar()
        if not self._live:
            return
        from tqdm.auto import tqdm

        run = trainer.run
        self.bar = tqdm(
            total=run.num_batches,
            initial=run.batch,  # a resumed run may start inside the epoch
            desc=f"epoch {epoch + 1}/{run.epochs}",
            unit="step",
            leave=False,  # the epoch's line takes its place
            file=self._stream,
            dynamic_ncols=True,
        )

    def on_train_batch_end(self, trainer, batch, steps):
        if self.bar is not None:
            self.bar.update(steps)

    def on_epoch_end(self, trainer, epoch, logs):
        self._close_bar()
        numbers = "  ".join(f"{k}={format_number(v)}" for k, v in logs.items())
        print(f"epoch {epoch + 1}: {numbers}", file=self._stream, flush=True)

    def on_train_end(self, trainer):
        self._close_bar()

    def _close_bar(self):
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


_ELSEWHERE = {
    "Checkpoint": "jaxdl.train.checkpointing",
    "ModelCheckpoint": "jaxdl.train.checkpointing",
    "TensorBoard": "jaxdl.train.writers",
}


def __getattr__(name: str):
    """The callbacks that live in modules of their own, importable from here as well
    (``from jaxdl.train.callbacks import ModelCheckpoint``)."""
    if name in _ELSEWHERE:
        import importlib

        return getattr(importlib.import_module(_ELSEWHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
