"""Small building blocks shared by the model families."""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxdl import activations


def flat_dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    """``jax.lax.dot_general`` for ``nn.Dense``/``nn.DenseGeneral``, as one 2-D product.

    A dense layer contracts the trailing axes of its input with the leading axes of its
    kernel. On an input of more than two axes, say (B, T, D), XLA:CPU copies the (B, T, out)
    cotangent transposed before the weight-gradient product; written as (B*T, D) @ (D, out)
    it does not, and the Transformer LM benchmark step runs about 10% faster. The result is
    the same product. Other contractions (batch axes, other axis orders) go to
    ``lax.dot_general`` unchanged. ``FlatDense`` and ``FlatDenseGeneral`` use it.
    """
    (lhs_contract, rhs_contract), batch = dimension_numbers
    n = len(lhs_contract)
    trailing = tuple(range(lhs.ndim - n, lhs.ndim))
    if any(batch) or tuple(lhs_contract) != trailing or tuple(rhs_contract) != tuple(range(n)):
        return jax.lax.dot_general(
            lhs, rhs, dimension_numbers, precision, preferred_element_type=preferred_element_type
        )
    outer, inner = lhs.shape[: lhs.ndim - n], rhs.shape[:n]
    out = jax.lax.dot_general(
        lhs.reshape(math.prod(outer), math.prod(inner)),
        rhs.reshape(math.prod(inner), math.prod(rhs.shape[n:])),
        (((1,), (0,)), ((), ())),
        precision,
        preferred_element_type=preferred_element_type,
    )
    return out.reshape(outer + rhs.shape[n:])


# nn.Dense and nn.DenseGeneral with flat_dot_general, for layers that see (B, T, ...) inputs
FlatDense = functools.partial(nn.Dense, dot_general=flat_dot_general)
FlatDenseGeneral = functools.partial(nn.DenseGeneral, dot_general=flat_dot_general)


def _windows(x: jax.Array, window: int) -> jax.Array:
    """(B, H, W, C) -> (B, H // w, W // w, C, w * w): each pooling window on the last axis."""
    b, h, w, c = x.shape
    hh, ww = h // window, w // window
    x = x[:, : hh * window, : ww * window].reshape(b, hh, window, ww, window, c)
    return x.transpose(0, 1, 3, 5, 2, 4).reshape(b, hh, ww, c, window * window)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def max_pool(x: jax.Array, window: int) -> jax.Array:
    """Non-overlapping max pooling of NHWC ``x``: (B, H, W, C) -> (B, H // w, W // w, C).

    The gradient goes to the first maximum of each window, as with ``lax.reduce_window``
    and PyTorch; computed from the arg-max it takes a few element-wise passes, where XLA's
    ``select_and_scatter`` (and even the gradient of a reshape-and-max) are many times
    slower on CPU.
    """
    return _windows(x, window).max(axis=-1)


def _max_pool_forward(x, window):
    win = _windows(x, window)
    return win.max(axis=-1), (x.shape, win.argmax(axis=-1).astype(jnp.int8))


def _max_pool_backward(window, residuals, dy):
    (b, h, w, c), index = residuals
    hh, ww = h // window, w // window
    g = jax.nn.one_hot(index, window * window, dtype=dy.dtype) * dy[..., None]
    g = g.reshape(b, hh, ww, c, window, window).transpose(0, 1, 4, 2, 5, 3)
    g = g.reshape(b, hh * window, ww * window, c)
    return (jnp.pad(g, ((0, 0), (0, h - hh * window), (0, w - ww * window), (0, 0))),)


max_pool.defvjp(_max_pool_forward, _max_pool_backward)


def pool(x: jax.Array, window: int, kind: str = "max") -> jax.Array:
    """Non-overlapping 2-D pooling of NHWC ``x``: (B, H, W, C) -> (B, H // w, W // w, C).

    Trailing rows and columns that do not fill a window are dropped (as VALID pooling does).
    """
    if kind == "max":
        return max_pool(x, window)
    if kind == "avg":
        return _windows(x, window).mean(axis=-1)
    raise ValueError(f"pooling must be 'max' or 'avg', got {kind!r}")


_DIMENSIONS = ("NHWC", "HWIO", "NHWC")
_PATCH_BYTES = 256 << 20


def _xla_conv(x, kernel):
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=_DIMENSIONS)


def _patches(x, kh, kw):
    """(B, H, W, C) -> (B, H - kh + 1, W - kw + 1, kh * kw * C): every VALID window, in the
    (kh, kw, C) order of a kernel's first three axes."""
    oh, ow = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    return jnp.concatenate(
        [x[:, i : i + oh, j : j + ow, :] for i in range(kh) for j in range(kw)], axis=-1
    )


@jax.custom_vjp
def _conv2d_patches(x, kernel):
    kh, kw, cin, cout = kernel.shape
    return _patches(x, kh, kw) @ kernel.reshape(kh * kw * cin, cout)


def _patches_forward(x, kernel):
    kh, kw, cin, cout = kernel.shape
    patches = _patches(x, kh, kw)
    return patches @ kernel.reshape(kh * kw * cin, cout), (x, kernel, patches)


def _patches_backward(residuals, dy):
    x, kernel, patches = residuals
    kh, kw, cin, cout = kernel.shape
    d = dy.reshape(-1, cout)
    dx = jax.vjp(lambda x: _xla_conv(x, kernel), x)[1](dy)[0]
    dk = patches.reshape(-1, kh * kw * cin).T @ d
    return dx, dk.reshape(kernel.shape).astype(kernel.dtype)


_conv2d_patches.defvjp(_patches_forward, _patches_backward)


def conv2d(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """VALID, stride-1 2-D convolution: x (B, H, W, Cin), kernel (kh, kw, Cin, Cout) ->
    (B, H - kh + 1, W - kw + 1, Cout); the numbers of ``lax.conv_general_dilated``.

    On CPU, XLA runs the gradient of a convolution with respect to its kernel at a fraction
    of the machine's matrix speed, and small convolutions forward below it too. There the
    convolution is computed as one matrix product over the windows (im2col), which the
    backward pass reuses: the kernel gradient becomes ``patches^T @ dy``. The patches take
    kh * kw times the memory of ``x``, so inputs whose patches would pass 256 MiB keep XLA's
    convolution, as do other backends (cuDNN on GPU, the MXU on TPU).
    """
    kh, kw = kernel.shape[:2]
    patch_bytes = x.size * kh * kw * x.dtype.itemsize
    if jax.default_backend() == "cpu" and patch_bytes <= _PATCH_BYTES:
        return _conv2d_patches(x, kernel)
    return _xla_conv(x, kernel)


class Conv(nn.Module):
    """2-D convolution over NHWC with the parameters of ``flax.linen.Conv`` ("kernel"
    (kh, kw, Cin, Cout), "bias" (Cout,)). Stride 1 runs through :func:`conv2d`; other strides
    through ``nn.Conv``'s computation."""

    features: int
    kernel_size: tuple[int, int] = (3, 3)
    strides: tuple[int, int] = (1, 1)
    padding: str | int = "SAME"
    use_bias: bool = True

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
        if tuple(self.strides) == (1, 1):
            y = conv2d(jnp.pad(x, ((0, 0), *pad, (0, 0))), kernel)
        else:
            y = jax.lax.conv_general_dilated(
                x, kernel, self.strides, pad, dimension_numbers=_DIMENSIONS
            )
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

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = activations.get(self.activation)(FlatDense(self.hidden, name="up")(x))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return FlatDense(self.out, name="down")(x)


def global_average_pool(x: jax.Array) -> jax.Array:
    """(B, H, W, C) -> (B, C)."""
    return jnp.mean(x, axis=(1, 2))
