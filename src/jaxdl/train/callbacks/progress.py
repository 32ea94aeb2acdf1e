"""``ProgressBar``: a tqdm bar while an epoch runs in a terminal, then one line per epoch."""

from __future__ import annotations

import sys

import numpy as np

from jaxdl.train.callbacks.base import Callback


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
            # tqdm redraws at most every 0.1 s: draw where the epoch ended before the line
            # replaces the bar, so the last frame never depends on the machine's speed
            self.bar.refresh()
            self.bar.close()
            self.bar = None
