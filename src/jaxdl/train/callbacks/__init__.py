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

from jaxdl.train.callbacks.base import Callback, CallbackList, callbacks_argument, monitored
from jaxdl.train.callbacks.csv_logger import CSVLogger
from jaxdl.train.callbacks.history import History, learning_rate_logs
from jaxdl.train.callbacks.learning_rate import ReduceLROnPlateau
from jaxdl.train.callbacks.nonfinite import NonFiniteCheck, raise_if_nonfinite
from jaxdl.train.callbacks.progress import ProgressBar, format_number
from jaxdl.train.callbacks.stopping import EarlyStopping

__all__ = [
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "NonFiniteCheck",
    "ProgressBar",
    "ReduceLROnPlateau",
    "callbacks_argument",
    "format_number",
    "learning_rate_logs",
    "monitored",
    "raise_if_nonfinite",
]

# These modules import this package (for ``Callback``), so they are loaded on first use.
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
