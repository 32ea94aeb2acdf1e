"""What enters ``fit``, ``evaluate`` and ``predict``: the data made one adapter, and checked
against the model the trainer holds, before anything is compiled."""

from __future__ import annotations

import jax
import numpy as np

from jaxdl import _checks
from jaxdl.data.adapters import ArrayAdapter, as_source, is_source


def feature_shapes(x) -> dict[str, tuple]:
    """{field path: the shape of its axes after the first} of an input pytree."""
    leaves = jax.tree_util.tree_flatten_with_path(x)[0]
    return {
        jax.tree_util.keystr(path, simple=True, separator="."): tuple(np.shape(leaf)[1:])
        for path, leaf in leaves
    }


def adapter_for(trainer, data, batch_size: int, name: str, **options):
    """``data`` as one adapter, checked against the model once it has a state."""
    known = trainer.state is not None
    return as_source(
        data,
        batch_size,
        name=name,
        seed=trainer.seed,
        unlabelled=trainer.task.unlabelled,
        input_shape=trainer.input_shape if known else None,
        check_targets=(lambda y, n, where: trainer.task.check_targets(y, n, trainer, where))
        if known and (not is_source(data) or trainer.task.classification)
        else None,  # other targets of a source may hold NaN where it masks them out
        place=trainer.strategy.place_batch,
        vocab_size=getattr(trainer.model, "vocab_size", None),  # token ids in range
        **options,
    )


def check_adapter(trainer, adapter, name: str, training: bool) -> None:
    """Refuse an adapter the trainer cannot run: a batch source on several devices, features
    of another dtype than in training, a batch size larger than the data or not dividing
    over the devices, inputs of other feature sizes than the model was built on."""
    if adapter.kind == "batches" and trainer.strategy.num_devices > 1:
        raise ValueError(
            f"{name}: a batch source ({type(adapter.source).__name__}) builds its batches "
            f"on the host and runs on one device; use Trainer(strategy='single'), not "
            f"{trainer.strategy.name!r}"
        )
    if isinstance(adapter, ArrayAdapter) and trainer.input_shape is not None:
        if adapter.x.dtype.kind != trainer._input_kind:
            expected = "float32" if trainer._input_kind == "f" else "int32"
            raise TypeError(
                f"{name}.x: expected {expected} features as in training, got {adapter.x.dtype}"
            )
        if training:
            _checks.check_batch_size(adapter.batch_size, adapter.num_examples)
    if training and adapter.kind != "batches":
        trainer.strategy.check_batch_size(adapter.batch_size)
    # a stream's training batches are read once, in the epoch: only what it evaluates or
    # predicts is looked at ahead (one example)
    if trainer.state is not None and (adapter.kind == "batches" or not training):
        if adapter.kind != "arrays":
            check_features(trainer, adapter.sample(), name)


def check_features(trainer, x, name: str) -> None:
    """The inputs of a batch source or a pytree (a graph) against the model's: each
    field's feature axes (all but the first) as in the inputs it was built on."""
    have, want = feature_shapes(x), getattr(trainer, "_input_features", None)
    if want is None or have == want:
        return
    for field in sorted(set(have) | set(want)):
        if have.get(field) != want.get(field):
            raise ValueError(
                f"{name}: {field or 'x'} has feature axes {have.get(field)}, the model was "
                f"built on {want.get(field)}"
            )
