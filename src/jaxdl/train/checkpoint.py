"""Checkpoints of a training run with Orbax: the state as arrays, the rest as JSON.

A checkpoint holds everything the run depends on — parameters, batch statistics, optimizer
state, step counter, RNG key — plus, as JSON, the epoch, the position inside it, the history
and the callbacks' state, and, as arrays again, what callbacks keep (the best weights of
``EarlyStopping``), so a resumed run continues exactly where the saved one was. Checkpoints
are numbered by optimizer step. Orbax writes each checkpoint to a temporary folder and
renames it when complete, so a run killed while saving leaves the previous checkpoints
intact; nothing is unpickled when loading.

jaxdl touches only what it wrote. A checkpoint folder holds a marker file
(``jaxdl-checkpoints.json``) and nothing but jaxdl's own entries; a folder with anything else
in it is refused before training, and nothing in it is moved, deleted or overwritten. A
checkpoint that does not fit the run (another model, optimizer or policy) raises
``CheckpointMismatchError`` naming each difference and leaves every file where it is; only a
checkpoint that cannot be read at all is set aside (into ``damaged/``), and the one before it
restored.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from jaxdl.train.errors import CheckpointMismatchError
from jaxdl.train.state import TrainState

log = logging.getLogger(__name__)

MARKER = "jaxdl-checkpoints.json"
_FORMAT = "jaxdl-checkpoints-1"
_OWN_FILES = {MARKER, "config.json", "damaged", ".lock"}
_STEP = re.compile(r"^\d+$")
_WRITING = re.compile(r"^\d+\.orbax-checkpoint-tmp(-\d+)?$")  # Orbax's folder while it writes


def _is_step(directory: str, name: str) -> bool:
    """Whether ``name`` is a checkpoint folder as Orbax writes one for jaxdl."""
    path = os.path.join(directory, name)
    parts = ("_CHECKPOINT_METADATA", "state", "meta")
    return bool(_STEP.match(name)) and any(os.path.exists(os.path.join(path, p)) for p in parts)


def foreign_entries(directory: str) -> list[str]:
    """The entries of ``directory`` that are not jaxdl's checkpoints or files."""
    names = sorted(os.listdir(directory))
    return [
        n
        for n in names
        if n not in _OWN_FILES and not _WRITING.match(n) and not _is_step(directory, n)
    ]


def claim_folder(directory: str, create: bool = True) -> None:
    """Make ``directory`` jaxdl's checkpoint folder, or refuse it: a file, a folder that
    cannot be written, or one holding anything jaxdl did not write."""
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise NotADirectoryError(f"checkpoint folder {directory} is a file")
    if not os.path.exists(directory):
        if not create:
            raise FileNotFoundError(f"no checkpoint folder {directory}")
        os.makedirs(directory)
    foreign = foreign_entries(directory)
    if foreign:
        shown = ", ".join(foreign[:6]) + (", ..." if len(foreign) > 6 else "")
        raise FileExistsError(
            f"checkpoint folder {directory} holds entries jaxdl did not write ({shown}); "
            "jaxdl keeps its checkpoints in a folder of their own and never moves or deletes "
            "anything else: choose an empty or new folder"
        )
    if create and not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError(f"checkpoint folder {directory} is not writable")
    marker = os.path.join(directory, MARKER)
    if create and not os.path.exists(marker):
        with open(marker, "w") as f:
            json.dump({"format": _FORMAT}, f)


def _key_name(key) -> str:
    for attribute in ("key", "name", "idx"):
        if hasattr(key, attribute):
            return str(getattr(key, attribute))
    return str(key)


def _shapes(tree) -> dict[str, tuple]:
    """{"opt_state/0/mu/dense_0/kernel": shape, ...} of a state's arrays or their metadata
    (the same names for both: NamedTuple fields and dict keys alike)."""
    leaves = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: hasattr(x, "shape"))
    return {"/".join(_key_name(k) for k in path): tuple(leaf.shape) for path, leaf in leaves[0]}


def _check_meta(meta: dict) -> dict:
    """The JSON part of a checkpoint with the types a run needs, or ValueError (a damaged
    or edited checkpoint, taken as unreadable)."""
    epoch, history = meta.get("epoch"), meta.get("history")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"epoch: expected an int >= 0, got {epoch!r}")
    if not isinstance(history, dict) or not all(
        isinstance(v, list) and all(isinstance(x, int | float) for x in v) for v in history.values()
    ):
        raise ValueError("history: expected {name: [numbers]}")
    if not isinstance(meta.get("callbacks", []), list | type(None)):
        raise ValueError("callbacks: expected a list")
    position = meta.get("position")
    if position is not None and not (
        isinstance(position, dict) and isinstance(position.get("batch"), int)
    ):
        raise ValueError("position: expected {'batch': int, ...}")
    return meta


def _arrays(state: TrainState) -> dict:
    """The pytree of a state that a checkpoint stores (the RNG key as its raw uint32 data)."""
    return {
        "step": state.step,
        "params": state.params,
        "opt_state": state.opt_state,
        "batch_stats": state.batch_stats,
        "rng": jax.random.key_data(state.rng),
    }


class Checkpointer:
    """Save and restore a :class:`TrainState` with its metadata under ``directory``.

    Checkpoints are numbered by optimizer step; the ``keep`` newest are kept, and with
    ``best="min"`` or ``"max"`` also the one whose monitored value (``save(..., value=)``) was
    best. Saving is asynchronous when ``asynchronous`` is True: the arrays are copied to host
    memory and written while training goes on (``wait`` blocks until the writes are done).
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        keep: int = 3,
        asynchronous: bool = True,
        best: str | None = None,
        create: bool = True,
    ):
        if best not in (None, "min", "max"):
            raise ValueError(f"best must be None, 'min' or 'max', got {best!r}")
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep: expected an int >= 1, got {keep!r}")
        self.directory = os.path.abspath(os.fspath(directory))
        claim_folder(self.directory, create)
        self.best = best
        policy = policies.LatestN(n=keep)
        if best is not None:
            # BestN keeps the last n of the sorted values: descending order keeps the smallest
            newest_and_best = policies.BestN(
                get_metric_fn=lambda metrics: metrics["value"],
                reverse=best == "min",
                n=1,
                keep_checkpoints_without_metrics=False,
            )
            policy = policies.AnyPreservationPolicy([policy, newest_and_best])
        options = ocp.CheckpointManagerOptions(
            preservation_policy=policy, enable_async_checkpointing=asynchronous, create=create
        )
        handlers = {
            "state": ocp.StandardCheckpointHandler(),
            "meta": ocp.JsonCheckpointHandler(),
            "callbacks": ocp.StandardCheckpointHandler(),
        }
        self.manager = ocp.CheckpointManager(
            self.directory, options=options, item_handlers=handlers
        )

    def save(
        self,
        step: int,
        state: TrainState,
        meta: dict[str, Any],
        arrays: dict[str, Any] | None = None,
        value: float | None = None,
    ) -> None:
        """Write checkpoint ``step``: the state's arrays, ``meta`` (JSON-serialisable), the
        callbacks' ``arrays`` (a pytree, optional) and the monitored ``value`` that ``best``
        ranks by (a non-finite or missing value never counts as best)."""
        # a copy: the write is asynchronous, and the caller goes on appending to its history
        meta = json.loads(json.dumps({**meta, "value": value}))
        items = {"state": ocp.args.StandardSave(_arrays(state)), "meta": ocp.args.JsonSave(meta)}
        if arrays:
            items["callbacks"] = ocp.args.StandardSave(jax.device_get(arrays))
        metrics = None
        if self.best is not None and value is not None and math.isfinite(value):
            metrics = {"value": float(value)}
        self.manager.save(step, args=ocp.args.Composite(**items), metrics=metrics)

    def latest_step(self) -> int | None:
        """The newest complete checkpoint's step, or None when there is none."""
        steps = self.steps()
        return steps[-1] if steps else None

    def steps(self) -> list[int]:
        """The steps of every kept checkpoint, oldest first."""
        return sorted(s for s in self.manager.all_steps() if _is_step(self.directory, str(s)))

    def meta(self, step: int) -> dict[str, Any]:
        """The JSON part of checkpoint ``step``: epoch, position, history, callbacks, value."""
        restored = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return dict(restored["meta"])

    def best_step(self) -> int | None:
        """The kept checkpoint with the best monitored value (needs ``best``), or None."""
        if self.best is None:
            raise ValueError("best_step() needs Checkpointer(best='min' or 'max')")
        values = {}
        for step in self.steps():
            value = self.meta(step).get("value")
            if value is not None and math.isfinite(value):
                values[step] = value
        if not values:
            return None
        pick = min if self.best == "min" else max
        return pick(values, key=lambda step: (values[step], -step))

    def path(self, step: int) -> str:
        """The folder of checkpoint ``step``."""
        return os.path.join(self.directory, str(step))

    def check_shapes(self, step: int, template: TrainState) -> None:
        """Raise CheckpointMismatchError (a ValueError) listing every array of the state
        (parameters, batch statistics, optimizer state) whose saved shape differs from the
        template's, or that only one of them has, with both shapes."""
        have = _shapes(self.manager.item_metadata(step)["state"])
        want = _shapes(_arrays(template))
        problems = [
            f"{name}: checkpoint {have.get(name, 'missing')}, model {want.get(name, 'missing')}"
            for name in sorted(set(have) | set(want))
            if have.get(name) != want.get(name)
        ]
        if problems:
            shown = problems[:12] + (
                [f"... and {len(problems) - 12} more"] if len(problems) > 12 else []
            )
            raise CheckpointMismatchError(
                f"checkpoint {self.path(step)} does not fit this model and optimizer (nothing "
                "was moved):\n  " + "\n  ".join(shown)
            )

    def restore(self, template: TrainState, step: int | None = None):
        """``(state, meta)`` from checkpoint ``step``, or from the newest one that reads.

        ``template`` is a state of the same model and optimizer (e.g. freshly initialised):
        it gives the structure, shapes and dtypes to restore into. A newest checkpoint that
        cannot be read (truncated, corrupted) is reported by name with a warning and the one
        before it is restored, the damaged one moved into ``damaged/`` (when no ``step`` is
        asked for); a checkpoint of another model raises CheckpointMismatchError.
        The callbacks' arrays, where saved, come back as NumPy arrays under
        ``meta["callback_arrays"]``.
        """
        step_given = step
        if step is not None:
            candidates = [step]
        else:
            candidates = self.steps()[::-1]
        if not candidates:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _arrays(template))
        for i, step in enumerate(candidates):
            try:
                self.check_shapes(step, template)
            except CheckpointMismatchError:
                raise
            except Exception as error:  # unreadable metadata: a damaged checkpoint
                restored, failure = None, error
            else:
                items = {
                    "state": ocp.args.StandardRestore(abstract),
                    "meta": ocp.args.JsonRestore(),
                }
                if os.path.isdir(os.path.join(self.path(step), "callbacks")):
                    items["callbacks"] = ocp.args.StandardRestore()
                try:
                    restored = self.manager.restore(step, args=ocp.args.Composite(**items))
                    _check_meta(dict(restored["meta"]))
                except Exception as error:  # Orbax and TensorStore raise many types
                    restored, failure = None, error
            if restored is not None:
                break
            fallback = (
                f"restoring {self.path(candidates[i + 1])}" if i + 1 < len(candidates) else ""
            )
            moved = ""
            if step_given is None:  # out of the way, so that the run can save that step again
                moved = f"moved to {self._set_aside(step)}; "
            log.warning(
                "checkpoint %s could not be read (%s: %s); %s%s",
                self.path(step),
                type(failure).__name__,
                str(failure)[:200],
                moved,
                fallback or "none left",
            )
        else:
            raise FileNotFoundError(f"no readable checkpoint in {self.directory}")
        arrays = restored["state"]
        state = template.replace(
            step=arrays["step"],
            params=arrays["params"],
            opt_state=arrays["opt_state"],
            batch_stats=arrays["batch_stats"],
            rng=jax.random.wrap_key_data(arrays["rng"]),
        )
        meta = dict(restored["meta"])
        if "callbacks" in items:
            meta["callback_arrays"] = jax.device_get(restored["callbacks"])
        return state, meta

    def read_arrays(self) -> dict:
        """The state's arrays of the newest checkpoint that reads, without a template (for
        ``pretrained=``); a damaged newer one is named in a warning and left in place."""
        for step in self.steps()[::-1]:
            try:
                args = ocp.args.Composite(state=ocp.args.StandardRestore())
                return dict(self.manager.restore(step, args=args)["state"])
            except Exception as error:  # Orbax and TensorStore raise many types
                log.warning(
                    "checkpoint %s could not be read (%s: %s); trying the one before it",
                    self.path(step),
                    type(error).__name__,
                    str(error)[:200],
                )
        raise FileNotFoundError(f"no readable checkpoint in {self.directory}")

    def _set_aside(self, step: int) -> str:
        """Move a damaged checkpoint into ``damaged/``, where Orbax no longer sees it."""
        target = os.path.join(self.directory, "damaged", str(step))
        if os.path.exists(target):
            target += f"-{time.time_ns()}"
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(self.path(step), target)
        self.manager.reload()
        return target

    def write_config(self, config: dict[str, Any]) -> None:
        """The run's configuration as ``config.json`` beside the checkpoints."""
        with open(os.path.join(self.directory, "config.json"), "w") as f:
            json.dump(config, f, indent=2, default=str)

    def wait(self) -> None:
        """Block until every asynchronous save has been written."""
        self.manager.wait_until_finished()

    def close(self) -> None:
        """Wait for the saves still being written, then release Orbax's manager."""
        self.manager.wait_until_finished()
        self.manager.close()
