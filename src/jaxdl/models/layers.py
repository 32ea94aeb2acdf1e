"""Small building blocks shared by the model families."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxdl import _checks, activations
from jaxdl import cpu_kernels as kernels


def pool(x: jax.Array, window: int, kind: str = "max") -> jax.Array:
    """Non-overlapping 2-D pooling of NHWC ``x``: (B, H, W, C) -> (B, H // w, W // w, C).

    Trailing rows and columns that do not fill a window are dropped (as VALID pooling does).
    """
    if kind == "max":
        return kernels.max_pool(x, window)
    if kind == "avg":
        return kernels.avg_pool(x, window)
    raise ValueError(f"pooling must be 'max' or 'avg', got {kind!r}")


class Conv(nn.Module):
    """2-D convolution over NHWC with the parameters of ``flax.linen.Conv`` ("kernel"
    (kh, kw, Cin, Cout), "bias" (Cout,)), computed by ``cpu_kernels.conv2d``."""

    features: int
    kernel_size: tuple[int, int] = (3, 3)
    strides: tuple[int, int] = (1, 1)
    padding: str | int = "SAME"
    use_bias: bool = True

    def __post_init__(self):
        _checks.check_int(self.features, "Conv.features")
        _checks.check_widths(self.kernel_size, "Conv.kernel_size")
        _checks.check_widths(self.strides, "Conv.strides")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kh, kw = self.kernel_size
        kernel = self.param(
            "kernel", nn.initializers.lecun_normal(), (kh, kw, x.shape[-1], self.features)
        )
        kernel = kernel.astype(x.dtype)
        pad = self.padding
        if pad == "SAME":
            pad = ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2)
        elif pad == "VALID":
            pad = ((0, 0), (0, 0))
        elif isinstance(pad, int):
            pad = ((pad, pad), (pad, pad))
        y = kernels.conv2d(x, kernel, self.strides, pad)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(y.dtype)
        return y


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

    def __post_init__(self):
        _checks.check_int(self.hidden, "FeedForward.hidden")
        _checks.check_int(self.out, "FeedForward.out")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = activations.get(self.activation)(kernels.Dense(self.hidden, name="up")(x))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return kernels.Dense(self.out, name="down")(x)


def global_average_pool(x: jax.Array) -> jax.Array:
    """(B, H, W, C) -> (B, C)."""
    return jnp.mean(x, axis=(1, 2))
