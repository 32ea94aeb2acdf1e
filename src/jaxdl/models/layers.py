"""Small building blocks shared by the model families."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def pool(x: jax.Array, window: int, kind: str = "max") -> jax.Array:
    """Non-overlapping 2-D pooling of NHWC ``x``: (B, H, W, C) -> (B, H // w, W // w, C).

    Trailing rows and columns that do not fill a window are dropped (as VALID pooling does).
    Written as a reshape and a reduction rather than ``lax.reduce_window``: the same numbers,
    but its gradient is an element-wise select instead of XLA's ``select_and_scatter``,
    which is several times slower on CPU.
    """
    if kind not in ("max", "avg"):
        raise ValueError(f"pooling must be 'max' or 'avg', got {kind!r}")
    b, h, w, c = x.shape
    hh, ww = h // window, w // window
    x = x[:, : hh * window, : ww * window].reshape(b, hh, window, ww, window, c)
    return x.max(axis=(2, 4)) if kind == "max" else x.mean(axis=(2, 4))


def as_images(x: jax.Array) -> jax.Array:
    """(B, H, W) grey images gain a channel axis; (B, H, W, C) pass through."""
    if x.ndim == 3:
        return x[..., None]
    if x.ndim != 4:
        raise ValueError(f"expected images (B, H, W, C) or (B, H, W), got shape {x.shape}")
    return x


class FeedForward(nn.Module):
    """Dense -> activation -> dropout -> Dense, on the last axis: (..., d) -> (..., out)."""

    hidden: int
    out: int
    dropout_rate: float = 0.0
    activation: str = "gelu"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        from jaxdl import activations

        x = activations.get(self.activation)(nn.Dense(self.hidden, name="up")(x))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return nn.Dense(self.out, name="down")(x)


def global_average_pool(x: jax.Array) -> jax.Array:
    """(B, H, W, C) -> (B, C)."""
    return jnp.mean(x, axis=(1, 2))
