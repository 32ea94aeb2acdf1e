"""``CSVLogger``: one row per epoch appended to a CSV file."""

from __future__ import annotations

import csv
import os

from jaxdl.train.callbacks.base import Callback


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
