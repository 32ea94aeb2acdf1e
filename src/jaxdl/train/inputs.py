"""What enters ``fit``, ``evaluate`` and ``predict``: the data made one adapter, and checked
against the model the trainer holds, before anything is compiled."""

from __future__ import annotations

import jax
import numpy as np

from jaxdl import _checks
from jaxdl.data import sampling
from jaxdl.data.adapters import (
    ArrayAdapter,
    FirstBatches,
    arrays_of,
    as_source,
    check_weights,
    is_source,
    num_rows,
    take,
)


def paired(x, y):
    """``fit(x, y)`` and ``fit((x, y))`` (``evaluate`` too) as one data argument."""
    if y is None:
        return x
    if is_source(x):
        raise TypeError(f"y: a {type(x).__name__} serves its own targets; pass it without y")
    return (x, y)


def held_out(trainer, data, validation_data, fraction, weight):
    """(training data, validation data, their sample weights) with ``validation_split``'s
    rows held out: drawn once with the trainer's seed, each class split on its own for class
    labels."""
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise TypeError(f"validation_split: expected a fraction in [0, 1), got {fraction!r}")
    if not 0 <= fraction < 1:
        raise ValueError(f"validation_split: expected a fraction in [0, 1), got {fraction}")
    if fraction == 0:
        return data, validation_data, weight, None
    if validation_data is not None:
        raise ValueError("validation_split: give validation_data or validation_split, not both")
    if is_source(data):
        raise ValueError(
            f"validation_split: a {type(data).__name__} serves its own batches; split it "
            "yourself and pass validation_data"
        )
    x, y = arrays_of(data, "data", trainer.task.unlabelled)
    n = num_rows(x)
    labels = y if isinstance(y, np.ndarray) and y.ndim == 1 else None
    stratify = trainer.task.classification and labels is not None and labels.dtype.kind in "iu"
    train, val = sampling.stratified_split(
        labels if stratify else np.zeros(n), (1 - fraction, fraction), trainer.seed, stratify
    )
    if len(train) == 0 or len(val) == 0:
        raise ValueError(
            f"validation_split={fraction} of {n} examples leaves {len(train)} for training "
            f"and {len(val)} for validation; each needs at least one"
        )
    if weight is not None:
        weight = check_weights(weight, n, "sample_weight")
    part = lambda rows: take(x, rows) if y is None else (take(x, rows), take(y, rows))
    weights = (None, None) if weight is None else (weight[train], weight[val])
    return part(train), part(val), *weights


def validation_adapter(trainer, data, batch_size: int, weight, one_batch: bool):
    """The adapter of ``fit(validation_data=)`` (None without it), checked against the
    model; only its first batch with ``one_batch`` (``fast_dev_run``)."""
    if data is None:
        return None
    size = trainer.strategy.inference_batch_size(batch_size)
    adapter = adapter_for(trainer, data, size, "validation_data", sample_weight=weight)
    check_adapter(trainer, adapter, "validation_data", training=False)
    return limited(adapter, 1 if one_batch else None, "validation_data")


def limited(adapter, steps, name: str):
    """``adapter`` cut to its first ``steps`` batches per epoch (None: all of them)."""
    if steps is None:
        return adapter
    steps = _checks.check_int(steps, name if name == "steps_per_epoch" else "steps")
    if steps > adapter.num_batches(0):
        raise ValueError(
            f"{name}: expected at most the {adapter.num_batches(0)} batches an epoch of the "
            f"data has, got {steps}"
        )
    return FirstBatches(adapter, steps)


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
    if isinstance(adapter, ArrayAdapter) and trainer.state is not None:
        if not isinstance(adapter.x, np.ndarray):  # several inputs: each field's shape
            check_features(trainer, adapter.sample(), name)
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
