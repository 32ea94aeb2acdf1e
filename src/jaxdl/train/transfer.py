"""Transfer learning: copy pretrained weights into a new model, by parameter path.

A new model with another head shares the backbone's parameter paths (``conv_0/kernel``,
``dense_0/bias``, ...) with the pretrained one. :func:`transfer_variables` copies the arrays
of the paths that match ``include`` (and not ``exclude``) and checks their shapes;
:func:`read_variables` reads the pretrained arrays from a model written by
``export_model``/``Trainer.export``, from a ``Trainer`` checkpoint folder, or takes them from
a variables dict or a trained ``Trainer``. Freezing and per-group learning rates live in
``jaxdl.optim`` (``freeze``, ``make_optimizer(param_groups=...)``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import optim

_COLLECTIONS = ("params", "batch_stats")


def read_variables(source) -> dict:
    """``{"params": ..., "batch_stats": ...}`` of a pretrained model.

    ``source``: a folder written by ``export_model`` (it holds ``model.json``), a ``Trainer``
    checkpoint folder (its newest checkpoint is read), a variables dict, or an object with a
    ``state`` (a fitted ``Trainer``).
    """
    if isinstance(source, dict):
        return {k: source[k] for k in _COLLECTIONS if k in source}
    if hasattr(source, "state"):
        if source.state is None:
            raise ValueError("pretrained: the Trainer has no parameters yet; fit it first")
        return source.state.variables()
    if not isinstance(source, str | os.PathLike):
        raise TypeError(
            "pretrained: expected an exported model folder, a checkpoint folder, a variables "
            f"dict or a fitted Trainer, got {type(source).__name__}"
        )
    path = os.path.abspath(os.fspath(source))
    if os.path.isfile(os.path.join(path, "model.json")):
        from jaxdl.train.export import load_model

        return load_model(path)[1]
    if os.path.isdir(path):
        from jaxdl.train.checkpoint import Checkpointer

        checkpointer = Checkpointer(path, asynchronous=False, create=False)
        try:
            if checkpointer.latest_step() is not None:
                arrays = checkpointer.read_arrays()
                return {k: arrays[k] for k in _COLLECTIONS if k in arrays}
        finally:
            checkpointer.close()
    raise FileNotFoundError(
        f"pretrained: {path} is neither an exported model (model.json) nor a checkpoint folder"
    )


def transfer_variables(
    target: dict,
    source: dict,
    include: str | Sequence[str] = "*",
    exclude: str | Sequence[str] = (),
) -> tuple[dict, list[str]]:
    """``(variables, copied)``: ``target`` with the arrays of ``source`` copied in.

    A leaf is copied when its path (``params/conv_0/kernel`` without the collection name,
    e.g. ``conv_0/kernel``) matches ``include``, does not match ``exclude``, and exists in
    ``source``. Each pattern of ``include`` must copy something, and a copied leaf must
    have the target's shape: either failing is a ValueError naming the path, so a renamed
    layer or a typo is never skipped in silence. ``copied`` lists the copied paths.
    Copied arrays are new arrays of the target's dtype.
    """
    include = (include,) if isinstance(include, str) else tuple(include)
    exclude = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    copied, used, out = [], set(), dict(target)
    for collection in _COLLECTIONS:
        if collection not in target or not target[collection]:
            continue
        have = dict(
            zip(
                optim.parameter_paths(source.get(collection, {})),
                jax.tree.leaves(source.get(collection, {})),
            )
        )
        leaves = []
        for path, leaf in zip(
            optim.parameter_paths(target[collection]), jax.tree.leaves(target[collection])
        ):
            wanted = [p for p in include if optim.matches(path, p)]
            if not wanted or optim.matches(path, exclude) or path not in have:
                leaves.append(leaf)
                continue
            new = have[path]
            if tuple(np.shape(new)) != tuple(np.shape(leaf)):
                raise ValueError(
                    f"pretrained {collection}/{path} has shape {tuple(np.shape(new))}, the "
                    f"model's has {tuple(np.shape(leaf))}: leave it out with exclude="
                    f"{(path.rsplit('/', 1)[0] + '/*',)!r}"
                )
            # a copy: the source's arrays may belong to a Trainer whose steps donate them
            leaves.append(jnp.array(new, dtype=jnp.result_type(leaf), copy=True))
            copied.append(path)
            used.update(wanted)
        out[collection] = jax.tree.unflatten(jax.tree.structure(target[collection]), leaves)
    for pattern in include:
        if pattern not in used:
            raise ValueError(
                f"pretrained: include pattern {pattern!r} copied nothing (no parameter path of "
                "both models matches it)"
            )
    return out, copied


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """Weights a run starts from: ``source`` (see :func:`read_variables`) and the paths to
    copy (``include``, not ``exclude``; see :func:`transfer_variables`). The rest, a new
    head say, keep their fresh initialisation."""

    source: object
    include: Sequence[str] = ("*",)
    exclude: Sequence[str] = ()

    @classmethod
    def of(cls, pretrained) -> Pretrained | None:
        """``Trainer(pretrained=)``: None, a ``Pretrained``, or a source (copy every path)."""
        if pretrained is None or isinstance(pretrained, Pretrained):
            return pretrained
        return cls(pretrained)

    def apply(self, state):
        """``state`` with the pretrained arrays copied in and a fresh optimizer state."""
        variables, _ = transfer_variables(
            state.variables(), read_variables(self.source), self.include, self.exclude
        )
        return state.replace(
            params=variables["params"],
            batch_stats=variables.get("batch_stats", state.batch_stats),
            opt_state=state.tx.init(variables["params"]),
        )
