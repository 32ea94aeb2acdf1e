"""Rosenblatt's perceptron (1958): a linear threshold unit learnt without gradients.

The rule visits the examples one at a time; on a mistake it moves the weights towards the
example's side: ``w += lr * (target - prediction) * x`` and ``b += lr * (target -
prediction)``, with targets and predictions in {0, 1}. On linearly separable data it stops
making mistakes after finitely many updates (Novikoff's theorem); on XOR, which no line
separates, it never does — the limit that backpropagation through a hidden layer lifts.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import _checks


class PerceptronParams(NamedTuple):
    """What :func:`perceptron_fit` learns.

    Attributes:
      weights: (features,) the weight of each input.
      bias: () the threshold, negated: the unit fires where ``x @ weights + bias > 0``.
    """

    weights: jax.Array
    bias: jax.Array


def perceptron_predict(params: PerceptronParams, x) -> np.ndarray:
    """Class 1 where ``x @ weights + bias > 0``, else 0. x: (N, features) -> (N,) int32."""
    x = jnp.asarray(x, jnp.float32)
    return np.asarray(x @ params.weights + params.bias > 0, np.int32)


@jax.jit
def _epoch(params: PerceptronParams, x, y, lr):
    def visit(params, example):
        xi, target = example
        error = target - (xi @ params.weights + params.bias > 0).astype(x.dtype)
        params = PerceptronParams(params.weights + lr * error * xi, params.bias + lr * error)
        return params, error != 0

    return jax.lax.scan(visit, params, (x, y))


def perceptron_fit(
    x, y, epochs: int = 20, learning_rate: float = 1.0, shuffle: bool = True, seed: int = 0
) -> tuple[PerceptronParams, list[int]]:
    """Learn a perceptron with Rosenblatt's rule, starting from zero weights.

    Args:
      x: (N, features) numbers; y: (N,) labels in {0, 1}.
      epochs: passes over the data; it stops early after a pass without a mistake.
      shuffle: visit the examples in a new random order each pass (fixed by ``seed``).

    Returns:
      The parameters and the number of mistakes (updates) in each pass.
    """
    x = _checks.as_features(x, "x").astype(np.float32)
    y = _checks.as_labels(y, len(x), 2, "y")
    if y.ndim != 1:
        raise ValueError(f"y: expected labels (N,) in {{0, 1}}, got shape {y.shape}")
    params = PerceptronParams(jnp.zeros(x.shape[1], jnp.float32), jnp.zeros((), jnp.float32))
    rng = np.random.default_rng(_checks.check_seed(seed))
    mistakes = []
    for _ in range(epochs):
        order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
        params, wrong = _epoch(params, x[order], y[order].astype(np.float32), learning_rate)
        mistakes.append(int(wrong.sum()))
        if mistakes[-1] == 0:
            break
    return params, mistakes
