"""``jaxdl.summary(model, x)``: the layers of a model, their output shapes and sizes.

Everything is worked out from shapes with ``jax.eval_shape``: no parameter is initialised
and nothing is computed, so summarising a ResNet-50 takes a fraction of a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import flax.linen as nn
import jax
import numpy as np

from jaxdl.train.state import mode_argument, mode_kwargs


@dataclass(frozen=True)
class LayerRow:
    """One module: its path, class, output shape(s), parameters and other variables."""

    path: str
    kind: str
    output: str
    params: int
    other: int


@dataclass(frozen=True)
class ModelSummary:
    """The rows of :func:`summary` and the totals; ``str()`` gives the table."""

    rows: tuple[LayerRow, ...]
    total_params: int
    total_other: int
    param_bytes: int
    output: str

    def __str__(self) -> str:
        header = ("layer", "type", "output shape", "params")
        lines = [header] + [
            (r.path, r.kind, r.output, f"{r.params:,}" + (f" (+{r.other:,})" if r.other else ""))
            for r in self.rows
        ]
        widths = [max(len(line[i]) for line in lines) for i in range(4)]
        rule = "-" * (sum(widths) + 6)
        text = [rule, "  ".join(h.ljust(w) for h, w in zip(header, widths)), rule]
        for line in lines[1:]:
            text.append("  ".join(c.ljust(w) for c, w in zip(line, widths)))
        text += [
            rule,
            f"output: {self.output}",
            f"parameters: {self.total_params:,} ({self.param_bytes / 2**20:.2f} MiB)",
        ]
        if self.total_other:
            text.append(f"other variables (batch statistics, ...): {self.total_other:,}")
        return "\n".join(text)

    def _repr_pretty_(self, printer, cycle):  # IPython shows the table
        printer.text(str(self))


def _shapes(tree) -> str:
    leaves = jax.tree.leaves(tree)
    parts = [f"{tuple(leaf.shape)} {leaf.dtype}" for leaf in leaves]
    return parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"


def _size(tree) -> int:
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(tree))


def _find(tree, path: tuple[str, ...]):
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return {}
        tree = tree[key]
    return tree


def summary(model: nn.Module, x, depth: int = 1, **call_kwargs) -> ModelSummary:
    """Layers of ``model`` applied to ``x`` (B, *input_shape; only its shape is used).

    ``depth`` is how deep nested modules are listed (1: the model's own children, such as
    ``conv_0`` or ``stage_1``; each row counts everything inside it). ``call_kwargs`` go to
    the model's ``__call__`` (``train=False`` is passed to models that take it). Returns a
    :class:`ModelSummary`; ``print`` it for the table. The totals are exact.
    """
    if depth < 1:
        raise ValueError(f"depth: expected an int >= 1, got {depth!r}")
    for name, value in mode_kwargs(mode_argument(model), train=False).items():
        call_kwargs.setdefault(name, value)
    rngs = {name: jax.random.key(0) for name in ("params", "dropout", "latent")}
    variables = jax.eval_shape(lambda r, x: model.init(r, x, **call_kwargs), rngs, x)

    calls: dict[tuple[str, ...], tuple[str, object] | None] = {}

    def record(next_fun, args, kwargs, context):
        path = tuple(context.module.path)
        first = context.method_name == "__call__" and path and path not in calls
        if first:  # a place in call order before the children take theirs
            calls[path] = None
        out = next_fun(*args, **kwargs)
        if first:
            shapes = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), out)
            calls[path] = (type(context.module).__name__, shapes)
        return out

    def apply(v, x):
        with nn.intercept_methods(record):
            return model.apply(
                v,
                x,
                rngs={"dropout": jax.random.key(0), "latent": jax.random.key(1)},
                **call_kwargs,
            )

    output = jax.eval_shape(apply, variables, x)
    params = variables.get("params", {})
    others = {k: v for k, v in variables.items() if k != "params"}
    rows = [
        LayerRow(
            "/".join(path),
            kind,
            _shapes(out),
            _size(_find(params, path)),
            sum(_size(_find(v, path)) for v in others.values()),
        )
        for path, (kind, out) in calls.items()
        if len(path) <= depth
    ]
    total = _size(params)
    param_bytes = sum(
        math.prod(leaf.shape) * np.dtype(leaf.dtype).itemsize for leaf in jax.tree.leaves(params)
    )
    return ModelSummary(
        tuple(rows), total, sum(_size(v) for v in others.values()), param_bytes, _shapes(output)
    )
