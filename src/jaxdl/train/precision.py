"""Precision policies: parameters in float32, computation in bfloat16 or float16.

A policy keeps the parameters, optimizer state and batch statistics in float32, casts the
parameters and floating inputs to the compute dtype for the forward and backward passes,
and casts the outputs back to float32 before the loss (``jaxdl.train.steps.forward``).
bfloat16 has float32's range and needs nothing more. float16 does not: small gradients
underflow to zero, so its policy scales the loss (``DynamicLossScale``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

POLICIES = ("float32", "bfloat16", "float16")


def check_policy(name: str) -> str:
    """``name`` if it is one of ``POLICIES``, else a ValueError that lists them."""
    if name not in POLICIES:
        raise ValueError(f"precision: expected one of {', '.join(POLICIES)}, got {name!r}")
    return name


def cast_floats(tree, dtype):
    """Every floating leaf of ``tree`` cast to ``dtype``; integer leaves (token ids, labels)
    and keys unchanged."""
    dtype = jnp.dtype(dtype)

    def cast(leaf):
        if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.floating):
            return leaf.astype(dtype)
        return leaf

    return jax.tree.map(cast, tree)


def all_finite(tree) -> jax.Array:
    """A scalar bool: whether every value of every leaf is finite."""
    leaves = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


class DynamicLossScale(struct.PyTreeNode):
    """The loss scale of float16 training, adjusted as in Micikevicius et al. (2018).

    The loss is multiplied by ``scale`` before differentiation and the gradients divided by
    it. A step whose gradients overflow (not finite) is skipped and the scale halved; after
    ``period`` finite steps in a row the scale doubles, never above ``2**24``.
    """

    scale: jax.Array
    good_steps: jax.Array
    period: int = struct.field(pytree_node=False, default=2000)
    factor: float = struct.field(pytree_node=False, default=2.0)

    @classmethod
    def create(cls, initial: float = 2.0**15, period: int = 2000) -> DynamicLossScale:
        return cls(
            scale=jnp.asarray(initial, jnp.float32),
            good_steps=jnp.zeros((), jnp.int32),
            period=int(period),
        )

    def scale_loss(self, loss: jax.Array) -> jax.Array:
        return loss * self.scale.astype(loss.dtype)

    def unscale(self, grads):
        return jax.tree.map(lambda g: (g / self.scale).astype(g.dtype), grads)

    def adjust(self, finite: jax.Array) -> DynamicLossScale:
        """The scale after a step whose gradients were ``finite`` (a scalar bool)."""
        grown = self.good_steps + 1 >= self.period
        scale = jnp.where(
            finite,
            jnp.where(grown, jnp.minimum(self.scale * self.factor, 2.0**24), self.scale),
            jnp.maximum(self.scale / self.factor, 1.0),
        )
        good = jnp.where(finite & ~grown, self.good_steps + 1, 0)
        return self.replace(scale=scale, good_steps=good.astype(jnp.int32))
