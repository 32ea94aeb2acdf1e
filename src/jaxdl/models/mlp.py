"""Multi-layer perceptron."""

from __future__ import annotations

import math
from collections.abc import Sequence

import chex
import flax.linen as nn
import jax

from jaxdl import _checks, activations


class MLP(nn.Module):
    """Dense layers with an activation between them; the last layer is linear (logits).

    Input (batch, ...) is flattened to (batch, in_features); output (batch, features[-1]).
    ``MLP(features=(10,))`` is a single linear layer (multinomial logistic regression).

    Attributes:
      features: width of each layer, the last one being the number of outputs.
      activation: name from ``jaxdl.activations.ACTIVATIONS`` or a callable.
      dropout_rate: dropout after each hidden activation, active only when ``train=True``.
      batch_norm: batch normalisation before each hidden activation.
    """

    features: Sequence[int] = (128, 128, 10)
    activation: str = "relu"
    dropout_rate: float = 0.0
    batch_norm: bool = False

    def __post_init__(self):
        _checks.check_widths(self.features, "MLP.features", allow_empty=False)
        _checks.check_rate(self.dropout_rate, "MLP.dropout_rate")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        chex.assert_rank(x, {2, 3, 4, 5})
        x = x.reshape(x.shape[0], math.prod(x.shape[1:]))  # -1 fails on zero rows
        act = activations.get(self.activation)
        for i, width in enumerate(self.features[:-1]):
            x = nn.Dense(width, name=f"dense_{i}")(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, name=f"norm_{i}")(x)
            x = act(x)
            if self.dropout_rate > 0:
                x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return nn.Dense(self.features[-1], name="output")(x)
