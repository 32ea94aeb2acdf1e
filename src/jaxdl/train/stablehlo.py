"""Export a model as a compiled program (StableHLO, through ``jax.export``): inference with
no Python model code at all, for any Flax module, custom ones included.

``export_stablehlo(path, predict, example)`` writes ``model.json`` (the format, the inputs'
shapes and dtypes, the platforms) and ``program-<time>.bin``, the serialised
``jax.export.Exported`` of ``predict`` with the trained variables inside it as constants.
``load_exported(path)`` reads it back in any process, with only JAX installed:
``load_exported(path).call(x)``. The same file is read by plain JAX with
``jax.export.deserialize(bytearray(open(file, "rb").read()))``.

The first axis of an array input is symbolic by default, so the program runs on batches of
any size. Loading deserialises a program; it never runs code from the files.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import jax
import numpy as np
from jax import export as jax_export

from jaxdl.graphs import GraphsTuple
from jaxdl.train.export import read_description, write_export

FORMAT = "jaxdl-stablehlo-1"
BATCH = "batch"  # the name of the symbolic first axis in the program and in model.json


def _register_graphs() -> None:
    """Let a program whose inputs are graphs be written and read (the registry is JAX's own,
    so a program of graphs needs jaxdl imported to load)."""
    try:
        # the name changed with the field order (receivers before senders, as jraph's), so
        # a program written with the old order fails to load instead of swapping its edges
        name = "jaxdl.GraphsTuple"
        jax_export.register_namedtuple_serialization(GraphsTuple, serialized_name=name)
    except ValueError:  # registered already, in this process
        pass


def _input_specs(example, batch_polymorphic: bool):
    """ShapeDtypeStructs for ``example`` (arrays or ShapeDtypeStructs, any pytree); the first
    axis symbolic when asked and when every leaf shares it (graph inputs do not: nodes,
    edges and graphs have their own counts, so they keep the example's sizes)."""
    leaves, tree = jax.tree_util.tree_flatten(example)
    if not leaves:
        raise ValueError("example: expected an array or a pytree of arrays, got no arrays")
    shapes = [tuple(np.shape(leaf)) for leaf in leaves]
    dtypes = [np.dtype(leaf.dtype) for leaf in leaves]
    shared = all(s and s[0] == shapes[0][0] for s in shapes) if shapes[0] else False
    if batch_polymorphic and shared:
        (batch,) = jax_export.symbolic_shape(BATCH)
        shapes = [(batch, *s[1:]) for s in shapes]
    specs = [jax.ShapeDtypeStruct(s, d) for s, d in zip(shapes, dtypes, strict=True)]
    return jax.tree_util.tree_unflatten(tree, specs)


def _describe_inputs(specs) -> list[dict]:
    return [
        {
            "path": jax.tree_util.keystr(path, simple=True, separator="."),
            "shape": [d if isinstance(d, int) else str(d) for d in spec.shape],
            "dtype": str(spec.dtype),
        }
        for path, spec in jax.tree_util.tree_flatten_with_path(specs)[0]
    ]


def export_stablehlo(
    path: str | os.PathLike,
    predict: Callable,
    example,
    *,
    batch_polymorphic: bool = True,
    platforms: tuple[str, ...] | None = None,
    model: str | dict | None = None,
) -> str:
    """Compile ``predict(x) -> outputs`` for inputs shaped like ``example`` and write it to
    the folder ``path``; returns the folder.

    Args:
      path: the export folder. Writing over an earlier jaxdl export replaces it atomically;
        a folder holding anything else is refused.
      predict: a function of the inputs alone; what it closes over (the trained variables)
        becomes constants of the program.
      example: an input batch (arrays, or ``jax.ShapeDtypeStruct``s), any pytree.
      batch_polymorphic: make the first axis symbolic, so any batch size runs.
      platforms: lower for these platforms ("cpu", "cuda", "rocm", "tpu"); default the
        platform of this process's default backend.
      model: a description of the model written beside the program, for people.
    """
    if not callable(predict):
        raise TypeError(f"predict: expected a function of the inputs, got {predict!r}")
    if platforms is not None:
        if isinstance(platforms, str) or not all(isinstance(p, str) for p in platforms):
            raise TypeError(f"platforms: expected a tuple of names, got {platforms!r}")
        platforms = tuple(platforms)
    specs = _input_specs(example, batch_polymorphic)
    _register_graphs()
    try:
        exported = jax_export.export(jax.jit(predict), platforms=platforms)(specs)
    except Exception as error:  # shape polymorphism can fail deep inside a model
        if not batch_polymorphic:
            raise
        raise ValueError(
            f"the model could not be compiled for a batch of any size ({error}); export it "
            "for the example's batch size with batch_polymorphic=False"
        ) from error
    description = {
        "format": FORMAT,
        "inputs": _describe_inputs(specs),
        "platforms": list(exported.platforms),
        "jax_version": jax.__version__,
        "model": model,
    }
    payload = exported.serialize()

    def write(target):
        with open(target, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())

    return write_export(path, description, write, "program")


def load_exported(path: str | os.PathLike) -> jax_export.Exported:
    """The program written by :func:`export_stablehlo` (or ``Trainer.export(path,
    format="stablehlo")``), as a ``jax.export.Exported``: call it as
    ``load_exported(path).call(x)``."""
    path = os.path.abspath(os.fspath(path))
    saved = read_description(path, FORMAT)
    _register_graphs()
    with open(os.path.join(path, saved["program"]), "rb") as f:
        return jax_export.deserialize(bytearray(f.read()))
