"""The XLA:CPU formulations of the models' heavy operations, behind one switch.

Each public function here is one piece of mathematics (a dense product, a convolution, a
pooling, an attention, an LSTM recurrence, the GELU) in two formulations with the same
numbers: the plain one of the library (``lax.dot_general``, ``lax.conv_general_dilated``,
``nn.max_pool``, ``jax.nn.dot_product_attention``, a ``lax.scan`` left to autodiff,
``jax.nn.gelu``), and one written for XLA:CPU: other layouts, custom VJPs and matrix
products that XLA:CPU runs faster. The model files call only the public functions.

The switch: ``use_cpu_kernels(setting)`` with ``setting`` one of

- ``"auto"`` (the default): the CPU formulations when the computation runs on CPU. Attention
  decides per platform inside the compiled function (``lax.platform_dependent``); the other
  operations decide when they are traced, from ``jax.default_backend()``.
- ``True``: the CPU formulations on every backend (to test them anywhere).
- ``False``: the plain formulations everywhere (to compare against them, or to time them).

It can be set for the whole process, ``use_cpu_kernels(False)``, or for a block,
``with use_cpu_kernels(False): ...``, which restores the previous setting on leaving. The
environment variable ``JAXDL_CPU_KERNELS`` (``auto``, ``1``/``true``, ``0``/``false``) gives
the setting a process starts with. ``enabled()`` says what the switch resolves to now. The
setting is read when a function is traced: a function that ``jax.jit`` compiled before the
switch moved keeps the formulation it was compiled with.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erf

_SETTINGS = {"auto": "auto", "1": True, "true": True, "0": False, "false": False}
_ENVIRONMENT = os.environ.get("JAXDL_CPU_KERNELS", "auto").strip().lower()
if _ENVIRONMENT not in _SETTINGS:
    raise ValueError(
        f"JAXDL_CPU_KERNELS: expected one of {sorted(_SETTINGS)}, got {_ENVIRONMENT!r}"
    )
_switch = {"setting": _SETTINGS[_ENVIRONMENT]}


def use_cpu_kernels(setting: bool | str = True) -> contextlib.AbstractContextManager:
    """Set the switch to ``True``, ``False`` or ``"auto"`` (see the module docstring).

    Returns a context manager: ``with use_cpu_kernels(False): ...`` restores the previous
    setting when the block ends; called alone, the setting stays.
    """
    if not (setting is True or setting is False or setting == "auto"):
        raise ValueError(f"use_cpu_kernels: expected True, False or 'auto', got {setting!r}")
    previous, _switch["setting"] = _switch["setting"], setting

    @contextlib.contextmanager
    def restore():
        try:
            yield
        finally:
            _switch["setting"] = previous

    return restore()


def enabled() -> bool:
    """Whether what is traced now uses the CPU formulations: the setting, with ``"auto"``
    resolved from ``jax.default_backend()``."""
    setting = _switch["setting"]
    return jax.default_backend() == "cpu" if setting == "auto" else setting


# --------------------------------------------------------------------------- dense


def _flat_dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    # A dense layer on (B, T, D) written as (B*T, D) @ (D, out): on more than two axes
    # XLA:CPU copies the cotangent transposed before the weight-gradient product.
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


def dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    """``jax.lax.dot_general``, the product of a dense layer. With the CPU kernels, a
    contraction of the trailing axes of ``lhs`` with the leading axes of ``rhs`` runs as one
    2-D matrix product; other contractions go to ``lax.dot_general`` unchanged."""
    product = _flat_dot_general if enabled() else jax.lax.dot_general
    return product(
        lhs, rhs, dimension_numbers, precision, preferred_element_type=preferred_element_type
    )


# nn.Dense and nn.DenseGeneral (same parameters) whose product is ``dot_general``
Dense = functools.partial(nn.Dense, dot_general=dot_general)
DenseGeneral = functools.partial(nn.DenseGeneral, dot_general=dot_general)


def gelu(x: jax.Array) -> jax.Array:
    """The exact GELU, ``x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2)))``, as PyTorch computes it.

    ``jax.nn.gelu(approximate=False)`` is the same function written with ``erfc``, which
    XLA:CPU evaluates more slowly than ``erf``; the CPU kernels use ``erf``.
    """
    if not enabled():
        return jax.nn.gelu(x, approximate=False)
    return 0.5 * x * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))


# --------------------------------------------------------------------------- pooling


def _windows(x: jax.Array, window: int) -> jax.Array:
    """(B, H, W, C) -> (B, H // w, W // w, C, w * w): each pooling window on the last axis."""
    b, h, w, c = x.shape
    hh, ww = h // window, w // window
    x = x[:, : hh * window, : ww * window].reshape(b, hh, window, ww, window, c)
    return x.transpose(0, 1, 3, 5, 2, 4).reshape(b, hh, ww, c, window * window)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _windowed_max(x: jax.Array, window: int) -> jax.Array:
    # The gradient goes to the first maximum of each window, as with lax.reduce_window and
    # PyTorch. From the arg-max it takes a few element-wise passes, where XLA:CPU's
    # select_and_scatter (and the gradient of a reshape-and-max) are many times slower.
    return _windows(x, window).max(axis=-1)


def _windowed_max_forward(x, window):
    win = _windows(x, window)
    return win.max(axis=-1), (x.shape, win.argmax(axis=-1).astype(jnp.int8))


def _windowed_max_backward(window, residuals, dy):
    (b, h, w, c), index = residuals
    hh, ww = h // window, w // window
    g = jax.nn.one_hot(index, window * window, dtype=dy.dtype) * dy[..., None]
    g = g.reshape(b, hh, ww, c, window, window).transpose(0, 1, 4, 2, 5, 3)
    g = g.reshape(b, hh * window, ww * window, c)
    return (jnp.pad(g, ((0, 0), (0, h - hh * window), (0, w - ww * window), (0, 0))),)


_windowed_max.defvjp(_windowed_max_forward, _windowed_max_backward)


def max_pool(x: jax.Array, window: int) -> jax.Array:
    """Non-overlapping max pooling of NHWC ``x``: (B, H, W, C) -> (B, H // w, W // w, C);
    trailing rows and columns that do not fill a window are dropped (VALID pooling)."""
    if enabled():
        return _windowed_max(x, window)
    return nn.max_pool(x, (window, window), strides=(window, window))


def avg_pool(x: jax.Array, window: int) -> jax.Array:
    """Non-overlapping average pooling, shapes as :func:`max_pool`."""
    if enabled():
        return _windows(x, window).mean(axis=-1)
    return nn.avg_pool(x, (window, window), strides=(window, window))


# --------------------------------------------------------------------------- convolution

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")
# the patches take kh * kw times the memory of their input: above this, XLA's convolution
_PATCH_BYTES = 256 << 20


def _valid_conv(x, kernel):
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
    # XLA:CPU runs the kernel gradient of a convolution (and small convolutions forward) far
    # below its matrix-product speed; as one product over the windows (im2col), the backward
    # pass reuses the windows: the kernel gradient is patches^T @ dy.
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
    dx = jax.vjp(lambda x: _valid_conv(x, kernel), x)[1](dy)[0]
    dk = patches.reshape(-1, kh * kw * cin).T @ d
    return dx, dk.reshape(kernel.shape).astype(kernel.dtype)


_conv2d_patches.defvjp(_patches_forward, _patches_backward)


def _patches_win(kh: int, kw: int, cout: int, positions: int) -> bool:
    """Whether the windows' matrix product beats XLA:CPU's convolution (forward and gradient)
    for a stride-1 kernel: a 1x1 kernel (the product is a plain matrix product, no copies),
    or a kernel of at most ``_PATCHES_MAX_TAPS`` taps with at least ``_PATCHES_MIN_FEATURES``
    output channels over at least ``_PATCHES_MIN_POSITIONS`` output positions per image.
    Elsewhere (fewer channels or positions: the copies into the windows outweigh the
    product's gain; wider kernels: XLA's convolution is the faster) XLA's convolution.
    ``benchmarks/conv.py`` measures both on the shapes these bounds come from."""
    if kh * kw == 1:
        return True
    return (
        kh * kw <= _PATCHES_MAX_TAPS
        and cout >= _PATCHES_MIN_FEATURES
        and positions >= _PATCHES_MIN_POSITIONS
    )


_PATCHES_MAX_TAPS = 9  # 3x3
_PATCHES_MIN_FEATURES = 32
_PATCHES_MIN_POSITIONS = 100


def conv2d(x: jax.Array, kernel: jax.Array, strides=(1, 1), padding=((0, 0), (0, 0))):
    """2-D convolution, the numbers of ``lax.conv_general_dilated``: x (B, H, W, Cin), kernel
    (kh, kw, Cin, Cout), ``padding`` ((top, bottom), (left, right)) -> (B, H', W', Cout).

    With the CPU kernels, a stride-1 convolution where the windows' matrix product measured
    faster than XLA:CPU's convolution is one matrix product over its windows (im2col): 1x1
    kernels, and kernels of at most 3x3 with at least 32 output channels over at least 100
    output positions per image; unless the windows would take more than 256 MiB. Every other
    convolution (other strides, wider kernels, few channels or positions) is XLA's.
    """
    strides, padding = tuple(strides), tuple(map(tuple, padding))
    kh, kw, _, cout = kernel.shape
    positions = (x.shape[1] + sum(padding[0]) - kh + 1) * (x.shape[2] + sum(padding[1]) - kw + 1)
    if not enabled() or strides != (1, 1) or not _patches_win(kh, kw, cout, positions):
        return jax.lax.conv_general_dilated(
            x, kernel, strides, padding, dimension_numbers=_DIMENSIONS
        )
    x = jnp.pad(x, ((0, 0), *padding, (0, 0)))
    if not all(isinstance(d, int) for d in x.shape):  # a symbolic batch (jax.export): its
        return _valid_conv(x, kernel)  # windows' size is unknown, so XLA's own convolution
    if x.size * kh * kw * x.dtype.itemsize <= _PATCH_BYTES:
        return _conv2d_patches(x, kernel)
    return _valid_conv(x, kernel)


# --------------------------------------------------------------------------- attention


def attention(q, k, v, mask=None, causal=False):
    """``softmax(Q K^T / sqrt(d_head) + mask) V`` over (B, T, heads, d_head) queries and
    (B, S, heads, d_head) keys and values -> (B, T, heads, d_head); ``mask`` broadcastable to
    (B, heads, T, S), True where a query may attend; ``causal`` masks the future.

    The plain formulation is ``jax.nn.dot_product_attention`` (GPUs get their fused kernels).
    The CPU kernels compute self-attention with batch and heads merged into one leading axis,
    whose products XLA:CPU runs faster than (B, heads)-batched ones, and a causal attention
    of even T >= 64 with no other mask in two halves of the queries: the first half attends
    to the first T/2 keys only, which skips a quarter of the products.
    """

    def plain(q, k, v, mask):
        return jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=causal)

    if k.shape[1] != q.shape[1]:  # queries against a cache of keys: one call
        return plain(q, k, v, mask)
    cpu = functools.partial(_merged_heads_attention, causal=causal)
    if _switch["setting"] == "auto":
        return jax.lax.platform_dependent(q, k, v, mask, cpu=cpu, default=plain)
    return (cpu if _switch["setting"] else plain)(q, k, v, mask)


def _merged_heads_attention(q, k, v, mask=None, causal=False):
    # The mathematics of jax.nn.dot_product_attention: logits in at least float32, masked
    # with a large negative number, softmax in float32.
    batch, steps, heads, head = q.shape

    def merge(a):
        return a.transpose(0, 2, 1, 3).reshape(batch * heads, steps, head)

    q, k, v = merge(q), merge(k), merge(v)
    if causal and mask is None and steps % 2 == 0 and steps >= 64:
        half = steps // 2
        first = _softmax_attention(q[:, :half], k[:, :half], v[:, :half], heads, _seen(0, half))
        second = _softmax_attention(q[:, half:], k, v, heads, _seen(half, steps))
        out = jnp.concatenate([first, second], axis=1)
    else:
        keep = None if mask is None else jnp.asarray(mask, bool)
        if causal:
            keep = _seen(0, steps) if keep is None else keep & _seen(0, steps)
        out = _softmax_attention(q, k, v, heads, keep)
    return out.reshape(batch, heads, steps, head).transpose(0, 2, 1, 3)


def _seen(first: int, keys: int) -> jax.Array:
    """(keys - first, keys) causal mask of the queries at positions first, ..., keys - 1."""
    return jnp.arange(keys)[None, :] <= jnp.arange(first, keys)[:, None]


def _softmax_attention(q, k, v, heads, keep=None):
    """(X, T, d) queries against (X, S, d) keys and values, X = B * heads; ``keep``
    broadcastable to (B, heads, T, S)."""
    logits = jnp.einsum(
        "xtd,xsd->xts", q, k, preferred_element_type=jnp.promote_types(q.dtype, jnp.float32)
    )
    logits = logits * jnp.asarray(1.0 / np.sqrt(q.shape[-1]), logits.dtype)
    if keep is not None:
        x, t, s = logits.shape
        negative = jnp.asarray(-0.7 * jnp.finfo(logits.dtype).max, logits.dtype)
        logits = jnp.where(keep, logits.reshape(x // heads, heads, t, s), negative)
        logits = logits.reshape(x, t, s)
    weights = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(v.dtype)
    return jnp.einsum("xts,xsd->xtd", weights, v)


# --------------------------------------------------------------------------- LSTM


def _lstm_scan(a, bias, w_h, mask, keep_gates=False):
    """The masked LSTM recurrence; returns the outputs, the final (h, c) and, with
    ``keep_gates``, each step's state and gates for the hand-written backward pass."""
    batch, hidden = a.shape[1], w_h.shape[0]
    h0 = jnp.zeros((batch, hidden), a.dtype)

    def step(carry, inputs):
        h, c = carry
        a_t, m = inputs
        z_i, z_f, z_g, z_o = jnp.split(a_t + bias + h @ w_h, 4, axis=-1)
        i, f, o, g = jax.nn.sigmoid(z_i), jax.nn.sigmoid(z_f), jax.nn.sigmoid(z_o), jnp.tanh(z_g)
        c_new = f * c + i * g
        tanh_c = jnp.tanh(c_new)
        h_new = o * tanh_c
        carry = (m * h_new + (1.0 - m) * h, m * c_new + (1.0 - m) * c)
        return carry, (h_new * m, (h, c, i, f, g, o, tanh_c) if keep_gates else None)

    (h, c), (outputs, saved) = jax.lax.scan(step, (h0, h0), (a, mask))
    return outputs, (h, c), saved


@jax.custom_vjp
def _lstm_with_vjp(a, bias, w_h, mask):
    # Autodiff of a scan accumulates the recurrent kernel's gradient inside the backward
    # loop, one small product and one addition per step. This VJP keeps only the sequential
    # part in the loop (the gate gradients and dz @ w_h^T) and forms dw_h = sum_t h_t^T dz_t
    # afterwards as one matrix product over all steps.
    outputs, last, _ = _lstm_scan(a, bias, w_h, mask, keep_gates=True)
    return outputs, last


def _lstm_vjp_forward(a, bias, w_h, mask):
    outputs, last, saved = _lstm_scan(a, bias, w_h, mask, keep_gates=True)
    return (outputs, last), (a, bias, w_h, mask, saved)


def _lstm_vjp_backward(residuals, cotangents):
    a, bias, w_h, mask, saved = residuals
    d_outputs, (d_h, d_c) = cotangents
    # The transposed kernel laid out once before the loop: XLA:CPU's per-step product with a
    # transposed right operand is slower than with a plain one.
    w_t = jax.lax.optimization_barrier(w_h.T)
    steps = mask.shape[0]

    def step(k, carry):
        t = steps - 1 - k
        dh, dc, dz_all = carry
        dy, m, (h, c, i, f, g, o, tanh_c) = jax.tree.map(
            lambda v: jax.lax.dynamic_index_in_dim(v, t, keepdims=False), (d_outputs, mask, saved)
        )
        dh_new = m * (dh + dy)
        dc_new = m * dc + dh_new * o * (1.0 - tanh_c**2)
        dz = jnp.concatenate(
            [
                dc_new * g * i * (1.0 - i),
                dc_new * c * f * (1.0 - f),
                dc_new * i * (1.0 - g**2),
                dh_new * tanh_c * o * (1.0 - o),
            ],
            axis=-1,
        )
        dh_prev = (1.0 - m) * dh + dz @ w_t
        dc_prev = (1.0 - m) * dc + dc_new * f
        dz_all = jax.lax.dynamic_update_index_in_dim(dz_all, dz.astype(dz_all.dtype), t, 0)
        return dh_prev, dc_prev, dz_all

    # The gate gradients go into the buffer of the projections a, which nothing reads any
    # more, rather than into a fresh (T, B, 4H) buffer that XLA would first fill with zeros.
    _, _, dz = jax.lax.fori_loop(0, steps, step, (d_h, d_c, a))
    hidden, size = w_h.shape
    # Likewise h laid out as (H, T*B) before the product: XLA:CPU multiplies a transposed
    # left operand more slowly than the copy costs.
    h_prev = jax.lax.optimization_barrier(saved[0].reshape(-1, hidden).T)
    d_w = h_prev @ dz.reshape(-1, size)
    d_bias = dz.sum(axis=(0, 1))
    return dz, d_bias.astype(bias.dtype), d_w.astype(w_h.dtype), jnp.zeros_like(mask)


_lstm_with_vjp.defvjp(_lstm_vjp_forward, _lstm_vjp_backward)


def lstm(a, bias, w_h, mask):
    """The masked LSTM over time-major input projections ``a`` (T, B, 4H) (without their
    bias), the bias (4H,), the recurrent kernel ``w_h`` (H, 4H) and ``mask`` (T, B, 1) ->
    (outputs (T, B, H), (h_T, c_T)), each (B, H). With gates ``i, f, g, o = split(a_t + bias
    + h W_h)``: ``c' = s(f) c + s(i) tanh(g)``, ``h' = s(o) tanh(c')``; where ``mask`` is 0
    the state stays and the output is 0. The bias is added inside the time loop, where it
    joins the gates' element-wise work.

    The plain formulation is a ``lax.scan`` left to autodiff; the CPU kernels give it a
    hand-written backward pass (the same gradients).
    """
    if enabled():
        return _lstm_with_vjp(a, bias, w_h, mask)
    outputs, last, _ = _lstm_scan(a, bias, w_h, mask)
    return outputs, last
