"""Metric writers: TensorBoard event files, written without TensorFlow.

``TensorBoard`` is the callback; it writes with tensorboardX (``pip install
'jaxdl[tensorboard]'``), which needs only NumPy and protobuf. ``read_scalars`` reads the
scalars of event files back, checking each record's framing, for tests and for plots that
compare runs without a TensorBoard server. (``CSVLogger``, the other writer, is in
``jaxdl.train.callbacks``.)
"""

from __future__ import annotations

import glob
import logging
import os
import struct
import uuid

import jax
import numpy as np

from jaxdl.train.callbacks import Callback, learning_rate_logs

logger = logging.getLogger(__name__)

_INSTALL = "pip install 'jaxdl[tensorboard]' (or: pip install tensorboardX)"


def _tensorboardx():
    try:
        import tensorboardX
    except ImportError:
        raise ImportError(
            f"TensorBoard writes its event files with tensorboardX, which is not installed: "
            f"{_INSTALL}"
        ) from None
    return tensorboardX


class TensorBoard(Callback):
    """Write each epoch's numbers as TensorBoard scalars, under ``log_dir``.

    Three runs, one folder each, so that TensorBoard draws training and validation on one
    chart: ``train/`` holds the training metrics and the learning rate, ``validation/`` the
    ``val_*`` metrics under their names without the prefix, both as ``epoch/<name>`` at the
    number of epochs done (1, 2, ...); with ``every_steps``, ``train_steps/`` holds the
    epoch's running metrics (the mean over its batches so far) and the learning rate as
    ``step/<name>`` at the optimizer step count. A sweep's values (one per member) are
    written as ``<name>/member_<k>``.

    Every fit writes new event files, with names no other writer gives; it never opens an
    existing file. A resumed run's files tell TensorBoard to drop what older files hold from
    the epoch (or step) it resumes at on, so an epoch run twice shows once.

    Args:
      log_dir: the folder (created if missing).
      every_steps: also write the running numbers every that many steps; data held on the
        device then runs in stretches of that many steps per compiled call. Default None:
        once per epoch.
      flush_secs: the longest time a written number waits in memory (each epoch's numbers
        are flushed at its end in any case).

    Raises:
      ImportError: tensorboardX is not installed (the message gives the pip command).
    """

    def __init__(
        self, log_dir: str | os.PathLike, every_steps: int | None = None, flush_secs: int = 30
    ):
        if not isinstance(log_dir, str | os.PathLike):
            raise TypeError(f"log_dir: expected a folder path, got {log_dir!r}")
        self.log_dir = os.fspath(log_dir)
        if os.path.exists(self.log_dir) and not os.path.isdir(self.log_dir):
            raise NotADirectoryError(f"log_dir {self.log_dir!r} is a file, not a folder")
        if every_steps is not None and (
            isinstance(every_steps, bool) or not isinstance(every_steps, int) or every_steps < 1
        ):
            raise ValueError(f"every_steps: expected an int >= 1 or None, got {every_steps!r}")
        if isinstance(flush_secs, bool) or not isinstance(flush_secs, int) or flush_secs < 1:
            raise ValueError(f"flush_secs: expected an int >= 1, got {flush_secs!r}")
        self.sync_every, self.flush_secs = every_steps, flush_secs
        self._module = _tensorboardx()  # refuse now, before anything compiles
        self._writers: dict[str, object] = {}

    def _writer(self, run: str, purge_step: int | None):
        if run not in self._writers:
            self._writers[run] = self._module.SummaryWriter(
                logdir=os.path.join(self.log_dir, run),
                purge_step=purge_step,
                flush_secs=self.flush_secs,
                # time and host name alone may repeat: a writer of its own never overwrites
                filename_suffix=f".{os.getpid()}.{uuid.uuid4().hex}",
            )
        return self._writers[run]

    def on_train_begin(self, trainer):
        self._close()
        self._first_epoch = None  # known at the first epoch, after a checkpoint's restore
        logger.info("writing TensorBoard event files under %s", self.log_dir)

    def on_epoch_begin(self, trainer, epoch):
        if self._first_epoch is None:
            self._first_epoch = epoch
            self._first_step = int(np.max(jax.device_get(trainer.state.step)))

    def _purge(self, at: int) -> int | None:
        """Where TensorBoard drops older files' numbers: from this fit's first one on, for a
        run that goes on from a saved (or earlier) state; None for one from the start."""
        return at if self._first_epoch else None

    def on_train_batch_end(self, trainer, batch, steps):
        run = trainer.run
        if self.sync_every is None:
            return
        if batch % self.sync_every and batch < run.num_batches:
            return  # neither a multiple of every_steps nor the epoch's end
        step = int(np.max(jax.device_get(trainer.state.step)))
        values = {**trainer.strategy.compute(run.metrics)}
        values.update(learning_rate_logs(trainer))
        writer = self._writer("train_steps", self._purge(self._first_step + 1))
        self._write(writer, "step", values, step)

    def on_epoch_end(self, trainer, epoch, logs):
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        at = epoch + 1
        for run, values in (("train", train), ("validation", val)):
            if values:
                writer = self._writer(run, self._purge(self._first_epoch + 1))
                self._write(writer, "epoch", values, at)
                writer.flush()
        if "train_steps" in self._writers:
            self._writers["train_steps"].flush()

    @staticmethod
    def _write(writer, prefix: str, values: dict, step: int) -> None:
        for name, value in values.items():
            value = np.asarray(value, np.float64)
            if value.ndim == 0:
                writer.add_scalar(f"{prefix}/{name}", float(value), step)
                continue
            for k, member in enumerate(value.ravel()):
                writer.add_scalar(f"{prefix}/{name}/member_{k}", float(member), step)

    def _close(self):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    def on_train_end(self, trainer):
        self._close()


def _masked_crc(data: bytes) -> int:
    from tensorboardX.crc32c import crc32c

    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_scalars(log_dir: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """The scalars of every event file in ``log_dir`` (not its subfolders), oldest file
    first: {tag: [(step, value), ...]} in the order they were written.

    Each record's length and data are checked against their CRCs (a truncated or damaged
    file raises ValueError naming it). Events a later file's purge covers are kept: this
    reads what the files hold, not what TensorBoard would draw.
    """
    from tensorboardX.proto import event_pb2

    scalars: dict[str, list[tuple[int, float]]] = {}
    paths = glob.glob(os.path.join(os.fspath(log_dir), "*tfevents*"))
    paths.sort(key=lambda path: (os.path.getmtime(path), path))
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        at = 0
        while at < len(data):  # TFRecord framing: length, its CRC, the data, its CRC
            length_bytes, body_start = data[at : at + 8], at + 12
            length = struct.unpack("<Q", length_bytes)[0] if len(length_bytes) == 8 else -1
            body = data[body_start : body_start + max(length, 0)]
            crcs = data[at + 8 : at + 12] + data[body_start + len(body) : body_start + length + 4]
            if length < 0 or len(body) < length or len(crcs) < 8:
                raise ValueError(f"{path}: truncated record at byte {at}")
            length_crc, body_crc = struct.unpack("<II", crcs)
            if length_crc != _masked_crc(length_bytes) or body_crc != _masked_crc(body):
                raise ValueError(f"{path}: damaged record at byte {at}")
            at = body_start + length + 4
            event = event_pb2.Event.FromString(body)
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars
