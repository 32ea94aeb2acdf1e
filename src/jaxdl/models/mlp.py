"""Multi-layer perceptron."""

from __future__ import annotations

import math
from collections.abc import Sequence

import chex
import flax.linen as nn
import jax
import numpy as np

from jaxdl import _checks, activations

NORMS = ("layer", "batch")


class MLP(nn.Module):
    """Dense layers with an activation between them; the last layer is linear (logits).

    Input (batch, ...) is flattened to (batch, in_features); output (batch, features[-1]).
    ``MLP(features=(10,))`` is a single linear layer (multinomial logistic regression).

    Hidden layer ``i`` (every layer but the last) computes
    ``y_i = dropout_i(act(norm_i(dense_i(x_i))))``; with ``residual=True`` its output is
    ``x_i + y_i`` when its input ``x_i`` has its width, that is for each hidden layer
    ``i >= 1`` with ``features[i] == features[i - 1]``. The first hidden layer (its input is
    the data) and the output layer never get a skip connection.

    Attributes:
      features: width of each layer, the last one being the number of outputs.
      activation: name from ``jaxdl.activations.ACTIVATIONS`` or a callable (default "relu").
      dropout_rate: dropout after each hidden activation, active only when ``train=True``:
        one rate for every hidden layer (default 0.0), or a sequence of one rate per hidden
        layer (``len(features) - 1`` of them; a rate of 0 leaves that layer without dropout).
      batch_norm: batch normalisation before each hidden activation (default False); the same
        as ``norm="batch"``, kept so that existing code and exports load as before.
      norm: normalisation before each hidden activation: None (default, or "batch" when
        ``batch_norm`` is set), "layer" (``nn.LayerNorm``) or "batch" (``nn.BatchNorm``,
        whose running statistics live in the "batch_stats" collection). Its parameters are
        "norm_{i}" either way.
      residual: skip connections between hidden layers of equal width, as above (default
        False).

    Example:
      >>> mlp = jaxdl.models.MLP(features=(16, 3), dropout_rate=0.1)
      >>> x = np.zeros((4, 8, 8), np.float32)  # flattened to (4, 64)
      >>> variables = mlp.init(jax.random.key(0), x)
      >>> jax.tree.map(np.shape, variables["params"])
      {'dense_0': {'bias': (16,), 'kernel': (64, 16)},
       'output': {'bias': (3,), 'kernel': (16, 3)}}
      >>> mlp.apply(variables, x).shape
      (4, 3)
      >>> key = jax.random.key(1)  # dropout draws from the "dropout" stream in training
      >>> mlp.apply(variables, x, train=True, rngs={"dropout": key}).shape
      (4, 3)
    """

    features: Sequence[int] = (128, 128, 10)
    activation: str = "relu"
    dropout_rate: float | Sequence[float] = 0.0
    batch_norm: bool = False
    norm: str | None = None
    residual: bool = False

    def __post_init__(self):
        _checks.check_widths(self.features, "MLP.features", allow_empty=False)
        _rates(self)
        _norm(self)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        chex.assert_rank(x, {2, 3, 4, 5})
        x = x.reshape(x.shape[0], math.prod(x.shape[1:]))  # -1 fails on zero rows
        act = activations.get(self.activation)
        norm = _norm(self)
        for i, (width, rate) in enumerate(zip(self.features[:-1], _rates(self), strict=True)):
            y = nn.Dense(width, name=f"dense_{i}")(x)
            if norm == "batch":
                y = nn.BatchNorm(use_running_average=not train, name=f"norm_{i}")(y)
            elif norm == "layer":
                y = nn.LayerNorm(name=f"norm_{i}")(y)
            y = act(y)
            if rate > 0:
                # Named by layer (the names Flax gives when every layer has dropout), so each
                # layer's dropout mask stays the same whichever other layers have dropout.
                y = nn.Dropout(rate, deterministic=not train, name=f"Dropout_{i}")(y)
            x = x + y if self.residual and i > 0 and width == self.features[i - 1] else y
        return nn.Dense(self.features[-1], name="output")(x)


# plain functions, not methods: flax wraps a module's methods, and one called from
# __post_init__ would run on a module not yet bound (jaxdl.summary intercepts them)
def _rates(mlp: MLP) -> tuple[float, ...]:
    """One dropout rate per hidden layer, checked."""
    hidden = len(mlp.features) - 1
    rates = mlp.dropout_rate
    if isinstance(rates, str) or np.ndim(rates) == 0:
        return (_checks.check_rate(rates, "MLP.dropout_rate"),) * hidden
    rates = tuple(rates)
    if len(rates) != hidden:
        raise ValueError(
            f"MLP.dropout_rate: expected one rate or one rate per hidden layer ({hidden} for "
            f"features {tuple(mlp.features)}), got {len(rates)}: {rates!r}"
        )
    return tuple(_checks.check_rate(rate, f"MLP.dropout_rate[{i}]") for i, rate in enumerate(rates))


def _norm(mlp: MLP) -> str | None:
    """The normalisation of the hidden layers: None, "layer" or "batch"."""
    if mlp.norm is not None and mlp.norm not in NORMS:
        raise ValueError(f"MLP.norm: expected None or one of {NORMS}, got {mlp.norm!r}")
    if mlp.batch_norm and mlp.norm not in (None, "batch"):
        raise ValueError(
            f"MLP: batch_norm=True asks for norm='batch', but norm={mlp.norm!r}; "
            "set only one of them"
        )
    return "batch" if mlp.batch_norm else mlp.norm
