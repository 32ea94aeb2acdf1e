"""Activation functions by name, and the Maxout layer.

Every activation maps an array to an array of the same shape; ``softmax`` normalises over the
last axis.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxdl import cpu_kernels
from jaxdl._checks import lookup

Activation = Callable[[jax.Array], jax.Array]


def gelu(x: jax.Array) -> jax.Array:
    """The exact GELU, ``x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2)))``, as PyTorch computes it
    (``jaxdl.cpu_kernels.gelu``, which chooses the formulation)."""
    return cpu_kernels.gelu(x)


ACTIVATIONS: dict[str, Activation] = {
    "linear": lambda x: x,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "leaky_relu": partial(jax.nn.leaky_relu, negative_slope=0.01),
    "elu": jax.nn.elu,
    "gelu": gelu,
    "swish": jax.nn.swish,
    "softmax": partial(jax.nn.softmax, axis=-1),
}


def get(name_or_fn: str | Activation) -> Activation:
    """The activation called ``name`` (see ``ACTIVATIONS``), or ``name_or_fn`` if callable."""
    if callable(name_or_fn):
        return name_or_fn
    return lookup("activation", name_or_fn, ACTIVATIONS)


class Maxout(nn.Module):
    """Maxout unit (Goodfellow et al., 2013): the maximum of ``pieces`` affine maps.

    Input (..., in_features) -> output (..., features), with
    ``y_j = max_k (x @ W[:, j, k] + b[j, k])``.
    """

    features: int
    pieces: int = 2

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        z = nn.Dense(self.features * self.pieces, name="dense")(x)
        z = z.reshape(*z.shape[:-1], self.features, self.pieces)
        return jnp.max(z, axis=-1)
