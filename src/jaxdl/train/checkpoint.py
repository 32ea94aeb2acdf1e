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
from typing import Any

import jax
import orbax.checkpoint as ocp

from jaxdl.train.state import TrainState


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
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def save(self, epoch: int, state: TrainState, meta: dict[str, Any]) -> None:
        """Write checkpoint ``epoch``: the state's arrays and ``meta`` (JSON-serialisable)."""
        self.manager.save(
            epoch,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(_arrays(state)), meta=ocp.args.JsonSave(meta)
            ),
        )

    def latest_epoch(self) -> int | None:
        """The newest complete checkpoint's epoch, or None when there is none."""
        return self.manager.latest_step()

    def restore(self, template: TrainState, epoch: int | None = None):
        """``(state, meta)`` from checkpoint ``epoch`` (default: the newest).

        ``template`` is a state of the same model and optimizer (e.g. freshly initialised):
        it gives the structure, shapes and dtypes to restore into.
        """
        epoch = self.latest_epoch() if epoch is None else epoch
        if epoch is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _arrays(template))
        restored = self.manager.restore(
            epoch,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
            ),
        )
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
