"""``Checkpoint``: the callback that saves a run, resumes it, and stops it cleanly on a signal.

The face of ``jaxdl.train.checkpoint.Checkpointer`` (Orbax) in a run, as Keras's
``BackupAndRestore`` and ``ModelCheckpoint`` are: it saves the whole state after every
``every_epochs`` epochs and at the end of the run, also every ``every_steps`` steps inside an
epoch (with the position in the epoch and its partial metrics), keeps the ``keep`` newest
and, with ``keep_best``, the best epoch's. On ``fit(resume=True)`` it restores the newest
checkpoint, the history and every callback's state, so the run ends bit-identical to one
that never stopped. While it runs, SIGINT and SIGTERM stop training after the running
compiled call, save where it stopped and end ``fit`` with a message saying how to resume.

``ModelCheckpoint`` is the same machinery with Keras's and Lightning's knobs: the best epoch
by a monitored metric, and the last. A ``Checkpoint`` in ``fit(callbacks=)`` beside the
trainer's own only writes: the trainer's checkpoint restores a resumed run and catches the
signals.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import _checks
from jaxdl.train.callbacks import Callback, monitored, raise_if_nonfinite
from jaxdl.train.checkpoint import Checkpointer
from jaxdl.train.errors import CheckpointMismatchError

# the settings a resumed run must share with the saved one (the strategy may change)
_SAME_RUN = ("model", "task", "loss", "loss_options", "optimizer", "metrics", "seed", "precision")

logger = logging.getLogger(__name__)


def _flat(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        return {
            k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}{key}.").items()
        }
    return {prefix[:-1]: value}


def config_differences(saved: dict, current: dict) -> list[str]:
    """The settings of ``_SAME_RUN`` whose saved value differs from the current one."""
    current = json.loads(json.dumps(current, default=str))  # as config.json holds it
    have = _flat({k: saved.get(k) for k in _SAME_RUN})
    want = _flat({k: current.get(k) for k in _SAME_RUN})
    return [
        f"{name}: saved {have.get(name)!r}, now {want.get(name)!r}"
        for name in sorted(set(have) | set(want))
        if have.get(name) != want.get(name)
    ]


class _FolderLock:
    """An exclusive lock on a checkpoint folder for the length of a run; the system releases
    it when the process ends, however it ends."""

    def __init__(self, directory: str):
        self.path, self.file = os.path.join(directory, ".lock"), None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return
        self.file = open(self.path, "a+")  # noqa: SIM115 - held for the run
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.close()
            self.file = None
            raise RuntimeError(
                f"another run is training in the checkpoint folder {os.path.dirname(self.path)}; "
                "wait for it to end, or give this run a folder of its own"
            ) from None

    def release(self) -> None:
        if self.file is not None:
            self.file.close()  # closing releases the lock
            self.file = None


class Checkpoint(Callback):
    """Save the run under ``directory``; see the module's docstring.

    Args:
      directory: the checkpoints' folder (created if missing).
      every_epochs: save after every that many epochs (and after the last); default 1.
      every_steps: also save every that many steps inside an epoch; data held on the device
        then runs in stretches of that many steps per compiled call. Default None: no
        periodic save inside an epoch.
      keep: how many of the newest checkpoints are kept (at least 1; default 3).
      keep_best: a metric of the history (e.g. ``"val_loss"``): the checkpoint of the epoch
        where it was best is kept too (min for losses and errors, max otherwise, or
        ``mode``); ``Trainer.load_checkpoint("best")`` restores it. Default None: none.
      mode: how ``keep_best`` compares, "min", "max" or "auto" (default: min for losses
        and errors, max otherwise).

    Example:
      >>> x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
      >>> y = (x[:, 0] > 0).astype(np.int32)
      >>> trainer = jaxdl.Trainer(jaxdl.models.MLP((8, 2)), checkpoint=jaxdl.Checkpoint("run"))
      >>> _ = trainer.fit(x, y, epochs=1, batch_size=16, verbose=False)

      The same script run again with ``resume=True`` (after an interruption, in a new
      process) goes on from the newest checkpoint, to the parameters a run that never
      stopped ends with; ``epochs`` counts from the run's start:

      >>> again = jaxdl.Trainer(jaxdl.models.MLP((8, 2)), checkpoint="run")
      >>> history = again.fit(x, y, epochs=2, batch_size=16, resume=True, verbose=False)
      >>> again.epoch, len(history["loss"])  # it trained epoch 2; the history holds both
      (2, 2)
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        every_epochs: int = 1,
        every_steps: int | None = None,
        keep: int = 3,
        keep_best: str | None = None,
        mode: str = "auto",
    ):
        if not isinstance(directory, str | os.PathLike):
            raise TypeError(f"directory: expected a folder path, got {directory!r}")
        self.directory = os.fspath(directory)
        if os.path.exists(self.directory) and not os.path.isdir(self.directory):
            raise NotADirectoryError(f"checkpoint directory {self.directory!r} is a file")
        for name, value in (("every_epochs", every_epochs), ("keep", keep)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
        if every_steps is not None and (
            isinstance(every_steps, bool) or not isinstance(every_steps, int) or every_steps < 1
        ):
            raise ValueError(f"every_steps: expected an int >= 1 or None, got {every_steps!r}")
        self.every_epochs, self.sync_every, self.keep = every_epochs, every_steps, keep
        self.keep_best = keep_best
        self.mode = _checks.monitor_mode(keep_best, mode) if keep_best else None
        self._checkpointer = None
        self._lock = None
        self._signals: list[int] = []
        self._previous: dict = {}

    @property
    def checkpointer(self) -> Checkpointer:
        """The ``jaxdl.train.checkpoint.Checkpointer`` (Orbax) that writes and reads
        ``directory``, keeping the ``keep`` newest (and the best with ``keep_best``); made
        on first use, which creates the folder."""
        if self._checkpointer is None:
            self._checkpointer = Checkpointer(self.directory, keep=self.keep, best=self.mode)
        return self._checkpointer

    # ------------------------------------------------------------------ the hooks

    def _owns_run(self, trainer) -> bool:
        """Whether this checkpoint restores a resumed run and catches the signals: it is the
        trainer's (``Trainer(checkpoint=)``), or, without one, the first in the callbacks.
        Another one only writes (two would restore twice and stack signal handlers)."""
        owner = getattr(trainer, "checkpoint", None)
        if owner is None:
            owner = next((c for c in trainer.run.callbacks if isinstance(c, Checkpoint)), self)
        return owner is self

    def on_train_begin(self, trainer):
        run, checkpointer = trainer.run, self.checkpointer
        self._signals, self._stopped_inside = [], None
        self._lock = _FolderLock(checkpointer.directory)
        self._lock.acquire()
        latest = checkpointer.latest_step()
        owner = self._owns_run(trainer)
        if run.resume and latest is not None and owner:
            self._check_config(trainer)
            trainer.state, saved = checkpointer.restore(trainer.state)
            trainer.broken = None
            trainer.epoch = int(saved["epoch"])
            run.history.update(saved["history"])
            run.position = saved.get("position")
            self._load_callbacks(run.callbacks, saved)
            step = int(np.max(jax.device_get(trainer.state.step)))  # a damaged newest is skipped
            logger.info("resuming from %s (epoch %d done)", checkpointer.path(step), trainer.epoch)
        elif not run.resume and latest is not None:
            # a new run must not mix with the checkpoints of an old one
            if latest > int(jax.device_get(trainer.state.step)):
                raise FileExistsError(
                    f"{self.directory} already holds checkpoints up to step {latest}; pass "
                    "resume=True to continue that run, or choose another checkpoint folder"
                )
        if owner:
            self._catch_signals()

    def on_train_batch_end(self, trainer, batch, steps):
        run = trainer.run
        signalled = bool(self._signals)
        due = signalled or (self.sync_every is not None and batch % self.sync_every == 0)
        if batch >= run.num_batches or not due:
            return  # the epoch's end saves
        raise_if_nonfinite(trainer)
        leaves = jax.device_get(jax.tree.leaves(run.metrics))
        position = {
            "batch": batch,
            "acc": [np.asarray(leaf).tolist() for leaf in leaves],
            "first_bad": int(jax.device_get(run.first_bad)),
            "epoch_start_step": run.epoch_start_step,
        }
        self._save(trainer, position=position)
        if signalled:
            self._stopped_inside = (run.epoch, batch, run.num_batches)
            trainer.stop_training = True

    def on_epoch_end(self, trainer, epoch, logs):
        value = None  # an epoch validation_freq left unvalidated is saved without a value
        if self.keep_best is not None:
            value = monitored(trainer, logs, self.keep_best, f"keep_best={self.keep_best!r}")
        signalled = bool(self._signals)
        last = trainer.epoch >= trainer.run.epochs or trainer.stop_training or signalled
        if trainer.epoch % self.every_epochs == 0 or last:
            self._save(trainer, value=value)
        if signalled:
            trainer.stop_training = True

    def on_train_end(self, trainer):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}
        if self._checkpointer is not None:
            self._checkpointer.wait()
        if self._lock is not None:
            self._lock.release()
        if self._signals:
            number = self._signals[0]
            where = f"after epoch {trainer.epoch}"
            if self._stopped_inside is not None:
                epoch, done, n = self._stopped_inside
                where = f"in epoch {epoch + 1} after batch {done} of {n}"
            message = (
                f"{signal.Signals(number).name} received: training stopped {where} and its "
                f"checkpoint is saved in {self.directory}; run fit(..., resume=True) to "
                "continue"
            )
            self._signals = []
            if number == signal.SIGINT:
                raise KeyboardInterrupt(message)
            raise SystemExit(message)  # exit status 1, the message on stderr

    # ------------------------------------------------------------------ saving

    def _check_config(self, trainer) -> None:
        """A resumed run must be the saved run: refuse another model, task, optimizer, seed
        or precision, naming each difference, before anything is restored or moved."""
        path = os.path.join(self.checkpointer.directory, "config.json")
        try:
            with open(path) as f:
                saved = json.load(f)
        except (OSError, ValueError):
            return  # no readable config: the arrays' own check still applies
        if not isinstance(saved, dict):
            return
        differences = config_differences(saved, trainer.config())
        if differences:
            raise CheckpointMismatchError(
                f"the checkpoints in {self.directory} are of another run (nothing was moved):\n  "
                + "\n  ".join(differences)
                + "\nresume with the saved settings, or train into another folder"
            )

    def _catch_signals(self) -> None:
        """SIGINT and SIGTERM are recorded, and acted on after the running compiled call."""
        if threading.current_thread() is not threading.main_thread():
            return  # handlers can only be set from the main thread
        for number in (signal.SIGINT, signal.SIGTERM):
            self._previous[number] = signal.signal(
                number, lambda signum, frame: self._signals.append(signum)
            )

    def _save(self, trainer, position=None, value=None) -> None:
        """Checkpoint the run at the state's step; ``position`` says where inside an epoch
        (None at its end), ``value`` is the ``keep_best`` metric of the epoch."""
        checkpointer = self.checkpointer
        step = int(jax.device_get(trainer.state.step))
        if checkpointer.latest_step() == step:
            return  # nothing ran since it was saved
        callbacks = list(trainer.run.callbacks)
        states = [c.state_dict() if hasattr(c, "state_dict") else None for c in callbacks]
        arrays = {}  # what callbacks keep as arrays (EarlyStopping's best weights)
        for i, callback in enumerate(callbacks):
            tree = callback.array_state() if hasattr(callback, "array_state") else None
            if tree is not None:
                arrays[str(i)] = tree
        meta = {"epoch": trainer.epoch, "history": trainer.run.history, "callbacks": states}
        if position is not None:
            meta["position"] = position
        if value is not None and not math.isfinite(value):
            value = None
        checkpointer.save(step, trainer.state, meta, arrays=arrays, value=value)
        if not os.path.exists(os.path.join(checkpointer.directory, "config.json")):
            checkpointer.write_config(trainer.config())

    @staticmethod
    def _load_callbacks(callbacks, saved: dict) -> None:
        """Give each callback the state (JSON) and arrays it had when ``saved`` was written."""
        states = saved.get("callbacks") or []
        arrays = saved.get("callback_arrays") or {}
        for i, callback in enumerate(callbacks):
            if i < len(states) and states[i] is not None and hasattr(callback, "load_state_dict"):
                callback.load_state_dict(states[i])
            if str(i) in arrays and hasattr(callback, "load_array_state"):
                callback.load_array_state(arrays[str(i)])

    def restore(self, trainer, which: str | int = "latest") -> dict:
        """Put checkpoint ``which`` ("latest", "best" or a step) into ``trainer``; returns its
        metadata (epoch, history, ...)."""
        checkpointer = self.checkpointer
        if which == "latest":
            step = checkpointer.latest_step()
        elif which == "best":
            if self.keep_best is None:
                raise ValueError('load_checkpoint("best") needs Checkpoint(keep_best=METRIC)')
            step = checkpointer.best_step()
        elif isinstance(which, int) and not isinstance(which, bool):
            step = which
        else:
            raise ValueError(f'which must be "latest", "best" or a step number, got {which!r}')
        if step is None:
            raise FileNotFoundError(f"no {which} checkpoint in {self.directory}")
        trainer.state, meta = checkpointer.restore(trainer.state, step)
        trainer.epoch = int(meta["epoch"])
        return meta


class ModelCheckpoint(Checkpoint):
    """Keep the best epoch by ``monitor`` and the last, in ``directory``: a ``Checkpoint``
    (``keep=1``, ``keep_best=monitor``) with Keras's names.

    ``Trainer.load_checkpoint("best")`` (or ``restore(trainer, "best")`` when it is a
    callback of ``fit``) restores the best; ``"latest"`` the newest. As
    ``Trainer(checkpoint=ModelCheckpoint(...))`` it also resumes runs and stops them cleanly
    on SIGINT/SIGTERM, from the newest checkpoint written.

    Args:
      directory: the checkpoints' folder (created if missing; jaxdl's alone).
      monitor: a metric of the logs (default "val_loss"), or None: the last epoch only.
      mode: "min", "max" or "auto" (min for losses and errors, max otherwise).
      save_best_only: write a checkpoint only after an epoch that improved on the best
        ``monitor`` so far (and, with ``save_last``, after the run's last epoch); default
        False: after every epoch, so a stopped run resumes from its last epoch.
      save_last: keep the last epoch's checkpoint beside the best (default True). Without
        it, only the best is kept, which needs ``save_best_only=True``.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        monitor: str | None = "val_loss",
        mode: str = "auto",
        save_best_only: bool = False,
        save_last: bool = True,
    ):
        for name, value in (("save_best_only", save_best_only), ("save_last", save_last)):
            if not isinstance(value, bool):
                raise TypeError(f"{name}: expected True or False, got {value!r}")
        if monitor is None and (save_best_only or not save_last):
            raise ValueError(
                "ModelCheckpoint(monitor=None) keeps the last epoch; save_best_only=True and "
                "save_last=False need a monitored metric"
            )
        if not save_best_only and not save_last:
            raise ValueError(
                "save_last=False keeps the best epoch alone, so only the epochs that improve "
                "may be written: pass save_best_only=True with it"
            )
        super().__init__(directory, keep=1, keep_best=monitor, mode=mode)
        self.monitor, self.save_best_only, self.save_last = monitor, save_best_only, save_last
        self.best = None

    def state_dict(self) -> dict:
        """The best monitored value so far (JSON), so a resumed run compares alike."""
        return {"best": self.best}

    def load_state_dict(self, saved: dict) -> None:
        """Take back what ``state_dict`` returned (a checkpoint restoring a resumed run)."""
        self.best = saved.get("best")

    def _improved(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_train_begin(self, trainer):
        self.best, self._unsaved = None, None
        super().on_train_begin(trainer)

    def on_epoch_end(self, trainer, epoch, logs):
        if self.monitor is None:
            return super().on_epoch_end(trainer, epoch, logs)
        value = monitored(trainer, logs, self.monitor, "ModelCheckpoint")
        if value is None:
            return super().on_epoch_end(trainer, epoch, logs)
        improved = self._improved(value)
        if improved:
            logger.info(
                "epoch %d: %s %s %.6g; checkpoint in %s",
                epoch + 1,
                self.monitor,
                "is" if self.best is None else f"improved from {self.best:.6g} to",
                value,
                self.directory,
            )
            self.best = value
        last = trainer.epoch >= trainer.run.epochs or trainer.stop_training
        if improved or not self.save_best_only or (self.save_last and last) or self._signals:
            self._save(trainer, value=value)
            self._unsaved = None
        else:  # the last epoch, if a later callback ends the run here
            self._unsaved = (trainer.state, value)
        if self._signals:
            trainer.stop_training = True

    def on_train_end(self, trainer):
        # the run's last epoch, when a callback after this one stopped it; not if a callback
        # has replaced the state since (EarlyStopping's best parameters) or it broke
        if self.save_last and self._unsaved is not None and trainer.broken is None:
            state, value = self._unsaved
            if trainer.state is state:
                self._save(trainer, value=value)
        self._unsaved = None
        super().on_train_end(trainer)


def restored_metrics(empty, saved_leaves) -> dict:
    """Metric states shaped like ``empty`` holding ``saved_leaves`` (nested lists), restored
    to their dtypes bit for bit."""
    leaves, tree = jax.tree.flatten(empty)
    return jax.tree.unflatten(
        tree, [jnp.asarray(np.asarray(v, leaf.dtype)) for v, leaf in zip(saved_leaves, leaves)]
    )
