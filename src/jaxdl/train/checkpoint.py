"""Checkpoints of a training run with Orbax: the state as arrays, the rest as JSON.

A checkpoint holds everything the run depends on — parameters, batch statistics, optimizer
state, step counter, RNG key — plus, as JSON, the epoch, the history and the callbacks' state,
so a resumed run continues exactly where the saved one was. Orbax writes each checkpoint to a
temporary folder and renames it when complete, so a run killed while saving leaves the
previous checkpoints intact; nothing is unpickled when loading.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

import jax
import orbax.checkpoint as ocp

from jaxdl.train.state import TrainState


class CheckpointMismatchError(ValueError):
    """A checkpoint holds arrays of other shapes than the model being restored."""


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

    Checkpoints are numbered by epoch; the ``keep`` newest are kept. Saving is asynchronous
    when ``asynchronous`` is True: the arrays are copied to host memory and written while
    training goes on (``wait`` blocks until the writes are done).
    """

    def __init__(self, directory: str | os.PathLike, keep: int = 3, asynchronous: bool = True):
        self.directory = os.path.abspath(os.fspath(directory))
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, enable_async_checkpointing=asynchronous, create=True
        )
        handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
        self.manager = ocp.CheckpointManager(
            self.directory, options=options, item_handlers=handlers
        )

    def save(self, epoch: int, state: TrainState, meta: dict[str, Any]) -> None:
        """Write checkpoint ``epoch``: the state's arrays and ``meta`` (JSON-serialisable)."""
        # a copy: the write is asynchronous, and the caller goes on appending to its history
        meta = json.loads(json.dumps(meta))
        self.manager.save(
            epoch,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(_arrays(state)), meta=ocp.args.JsonSave(meta)
            ),
        )

    def latest_epoch(self) -> int | None:
        """The newest complete checkpoint's epoch, or None when there is none."""
        return self.manager.latest_step()

    def path(self, epoch: int) -> str:
        """The folder of checkpoint ``epoch``."""
        return os.path.join(self.directory, str(epoch))

    def check_shapes(self, epoch: int, template: TrainState) -> None:
        """Raise CheckpointMismatchError (a ValueError) listing every parameter and batch
        statistic whose saved shape differs from the template's, with both shapes."""
        saved = self.manager.item_metadata(epoch)["state"]

        def shapes(tree) -> dict[str, tuple]:
            leaves = jax.tree_util.tree_flatten_with_path(
                tree, is_leaf=lambda x: hasattr(x, "shape")
            )
            return {jax.tree_util.keystr(path): tuple(leaf.shape) for path, leaf in leaves[0]}

        arrays = _arrays(template)
        have = shapes({k: saved[k] for k in ("params", "batch_stats") if k in saved})
        want = shapes({k: arrays[k] for k in ("params", "batch_stats")})
        problems = [
            f"{name}: checkpoint {have.get(name, 'missing')}, model {want.get(name, 'missing')}"
            for name in sorted(set(have) | set(want))
            if have.get(name) != want.get(name)
        ]
        if problems:
            raise CheckpointMismatchError(
                f"checkpoint {self.path(epoch)} does not fit this model:\n  "
                + "\n  ".join(problems)
            )

    def restore(self, template: TrainState, epoch: int | None = None):
        """``(state, meta)`` from checkpoint ``epoch``, or from the newest one that reads.

        ``template`` is a state of the same model and optimizer (e.g. freshly initialised):
        it gives the structure, shapes and dtypes to restore into. A newest checkpoint that
        cannot be read (truncated, corrupted) is reported by name with a warning and the one
        before it is restored; a checkpoint of another model raises CheckpointMismatchError.
        """
        if epoch is not None:
            candidates = [epoch]
        else:
            candidates = sorted(self.manager.all_steps(), reverse=True)
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
                try:
                    restored = self.manager.restore(
                        step,
                        args=ocp.args.Composite(
                            state=ocp.args.StandardRestore(abstract),
                            meta=ocp.args.JsonRestore(),
                        ),
                    )
                except Exception as error:  # Orbax and TensorStore raise many types
                    restored, failure = None, error
            if restored is not None:
                break
            fallback = (
                f"restoring {self.path(candidates[i + 1])}" if i + 1 < len(candidates) else ""
            )
            warnings.warn(
                f"checkpoint {self.path(step)} could not be read "
                f"({type(failure).__name__}: {str(failure)[:200]}); {fallback or 'none left'}",
                stacklevel=2,
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
        return state, dict(restored["meta"])

    def write_config(self, config: dict[str, Any]) -> None:
        """The run's configuration as ``config.json`` beside the checkpoints."""
        with open(os.path.join(self.directory, "config.json"), "w") as f:
            json.dump(config, f, indent=2, default=str)

    def wait(self) -> None:
        """Block until every asynchronous save has been written."""
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()
