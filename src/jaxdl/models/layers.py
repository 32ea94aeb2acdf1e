"""Small building blocks shared by the model families."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import _checks, activations
from jaxdl import cpu_kernels as kernels

PADDINGS = ("SAME", "VALID")


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_sequence(value) -> bool:
    return isinstance(value, Sequence | np.ndarray) and not isinstance(value, str)


def check_sizes(value, name: str, minimum: int = 1) -> int | tuple[int, ...]:
    """A size for every spatial axis: an int (the same on each axis) or a non-empty sequence
    of ints, one per axis, each ``>= minimum``. Returns the int or the tuple."""
    if _is_int(value):
        return _checks.check_int(value, name, minimum)
    if not _is_sequence(value) or len(value) == 0 or not all(_is_int(v) for v in value):
        raise TypeError(
            f"{name}: expected an int or a sequence of ints (one per spatial axis), got "
            f"{type(value).__name__}: {value!r}"
        )
    for axis, v in enumerate(value):
        if v < minimum:
            raise ValueError(f"{name}: expected ints >= {minimum}, got {value!r} (axis {axis})")
    return tuple(int(v) for v in value)


def spatial_sizes(value, rank: int, name: str) -> tuple[int, ...]:
    """``value`` (an int, or one int per axis) as one int per each of ``rank`` spatial axes."""
    if _is_int(value):
        return (int(value),) * rank
    value = tuple(int(v) for v in value)
    if len(value) != rank:
        axes = "axis" if rank == 1 else "axes"
        raise ValueError(
            f"{name}: {value!r} gives {len(value)} sizes, but the input has {rank} spatial "
            f"{axes}; give one size per spatial axis, or an int for all of them"
        )
    return value


def check_padding(padding, name: str):
    """A convolution's padding: "SAME", "VALID", an int >= 0 (both sides of every axis), or
    one entry per spatial axis, each an int (both sides) or a ``(low, high)`` pair, as
    ``flax.linen.Conv`` takes it. Returns it with sequences as tuples."""
    if isinstance(padding, str):
        if padding not in PADDINGS:
            raise ValueError(
                f"{name}: expected 'SAME', 'VALID', an int or per-side pairs, got {padding!r}"
            )
        return padding
    if _is_int(padding):
        return _checks.check_int(padding, name, minimum=0)
    if _is_sequence(padding) and len(padding) > 0:
        entries = []
        for axis, entry in enumerate(padding):
            if _is_int(entry) and entry >= 0:
                entries.append(int(entry))
            elif (
                _is_sequence(entry)
                and len(entry) == 2
                and all(_is_int(v) and v >= 0 for v in entry)
            ):
                entries.append((int(entry[0]), int(entry[1])))
            else:
                raise ValueError(
                    f"{name}: per-axis padding takes an int >= 0 or a (low, high) pair of ints "
                    f">= 0 for each axis, got {padding!r} (axis {axis} is {entry!r})"
                )
        return tuple(entries)
    raise TypeError(
        f"{name}: expected 'SAME', 'VALID', an int or a sequence of (low, high) pairs, got "
        f"{type(padding).__name__}: {padding!r}"
    )


def conv_padding(
    spatial: Sequence[int],
    kernel_size: Sequence[int],
    strides: Sequence[int],
    dilation: Sequence[int],
    padding,
    name: str = "padding",
) -> tuple[tuple[int, int], ...]:
    """The ``(low, high)`` zeros a convolution adds on each spatial axis.

    "SAME" pads as ``lax.conv_general_dilated`` and ``flax.linen.Conv`` do: the output has
    ``ceil(size / stride)`` positions, the extra zero (when the total is odd) on the high
    side; at stride 1 that is ``((k - 1) // 2, k // 2)`` for a kernel spanning k positions.
    "VALID" adds none; an int p adds p on both sides of every axis.
    """
    rank = len(spatial)
    if isinstance(padding, str):
        if padding == "VALID":
            return ((0, 0),) * rank
        span = tuple((k - 1) * d + 1 for k, d in zip(kernel_size, dilation, strict=True))
        return tuple(tuple(p) for p in jax.lax.padtype_to_pads(spatial, span, strides, "SAME"))
    if _is_int(padding):
        return ((int(padding), int(padding)),) * rank
    if len(padding) != rank:
        axes = "axis" if rank == 1 else "axes"
        raise ValueError(
            f"{name}: {padding!r} pads {len(padding)} axes, but the input has {rank} spatial "
            f"{axes}; give one int or (low, high) pair per spatial axis"
        )
    return tuple((p, p) if _is_int(p) else (int(p[0]), int(p[1])) for p in padding)


def conv_output_size(size: int, kernel: int, stride: int, dilation: int, pad: tuple[int, int]):
    """Positions a convolution gives along one axis: ``(size + low + high - span) // stride
    + 1`` with ``span = (kernel - 1) * dilation + 1``; 0 or less when the kernel does not fit."""
    span = (kernel - 1) * dilation + 1
    return (size + pad[0] + pad[1] - span) // stride + 1


def pool(x: jax.Array, window, kind: str = "max") -> jax.Array:
    """Non-overlapping pooling (window and stride ``window``) over the spatial axes of
    channels-last ``x`` (B, *spatial, C) with 1, 2 or more spatial axes:
    (B, S_1, ..., S_n, C) -> (B, S_1 // w_1, ..., S_n // w_n, C).

    ``window`` is an int (the same on every axis) or one int per spatial axis; ``kind`` is
    "max" or "avg". Trailing positions that do not fill a window are dropped (as VALID
    pooling does). 2-D square windows take ``cpu_kernels.max_pool`` / ``avg_pool``; the
    other shapes ``flax.linen.max_pool`` / ``avg_pool``.
    """
    if kind not in ("max", "avg"):
        raise ValueError(f"pooling must be 'max' or 'avg', got {kind!r}")
    if x.ndim < 3:
        raise ValueError(f"pool: expected (B, *spatial, C) with a spatial axis, got {x.shape}")
    window = spatial_sizes(check_sizes(window, "pool window"), x.ndim - 2, "pool window")
    if len(window) == 2 and window[0] == window[1]:
        return (kernels.max_pool if kind == "max" else kernels.avg_pool)(x, window[0])
    reduce = nn.max_pool if kind == "max" else nn.avg_pool
    return reduce(x, window, strides=window, padding="VALID")


def _dimension_numbers(rank: int) -> jax.lax.ConvDimensionNumbers:
    # x (B, *spatial, Cin), kernel (*k, Cin, Cout): specs list (batch or out-feature axis,
    # feature or in-feature axis, spatial axes...)
    spatial = tuple(range(1, rank + 1))
    return jax.lax.ConvDimensionNumbers(
        lhs_spec=(0, rank + 1, *spatial),
        rhs_spec=(rank + 1, rank, *range(rank)),
        out_spec=(0, rank + 1, *spatial),
    )


class Conv(nn.Module):
    """N-D convolution over channels-last inputs with the parameters of ``flax.linen.Conv``:
    "kernel" (*kernel_size, Cin, Cout) and "bias" (Cout,).

    Input (B, S_1, ..., S_n, Cin) with n >= 1 spatial axes (n is the input's rank minus two:
    (B, L, C) signals, (B, H, W, C) images, (B, D, H, W, C) volumes); output
    (B, S'_1, ..., S'_n, features) with ``S' = (S + low + high - span) // stride + 1``,
    ``span = (k - 1) * dilation + 1``.

    2-D convolutions without dilation are computed by ``cpu_kernels.conv2d`` (one matrix
    product over the windows on CPU at stride 1); the other ranks and dilated kernels by
    ``jax.lax.conv_general_dilated``.

    Attributes:
      features: output channels Cout.
      kernel_size: an int (the same on every spatial axis) or one int per spatial axis;
        default 3.
      strides: an int or one int per spatial axis; default 1.
      padding: "SAME" (default: ``ceil(S / stride)`` positions out, padded as
        ``flax.linen.Conv`` pads), "VALID" (none), an int (both sides of every axis) or one
        entry per spatial axis, each an int or a ``(low, high)`` pair.
      use_bias: add the "bias" parameter; default True.
      kernel_dilation: an int or one int per spatial axis: the gap between the kernel's
        taps (1, the default, is a plain convolution), as in ``flax.linen.Conv``.
    """

    features: int
    kernel_size: int | Sequence[int] = 3
    strides: int | Sequence[int] = 1
    padding: str | int | Sequence = "SAME"
    use_bias: bool = True
    kernel_dilation: int | Sequence[int] = 1

    def __post_init__(self):
        _checks.check_int(self.features, "Conv.features")
        check_sizes(self.kernel_size, "Conv.kernel_size")
        check_sizes(self.strides, "Conv.strides")
        check_sizes(self.kernel_dilation, "Conv.kernel_dilation")
        check_padding(self.padding, "Conv.padding")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if x.ndim < 3:
            raise ValueError(
                f"Conv: expected channels-last inputs (B, *spatial, C) with at least one "
                f"spatial axis, got shape {x.shape}"
            )
        rank = x.ndim - 2
        size = spatial_sizes(self.kernel_size, rank, "Conv.kernel_size")
        strides = spatial_sizes(self.strides, rank, "Conv.strides")
        dilation = spatial_sizes(self.kernel_dilation, rank, "Conv.kernel_dilation")
        spatial = x.shape[1:-1]
        pad = conv_padding(spatial, size, strides, dilation, self.padding, "Conv.padding")
        for axis, sizes in enumerate(zip(spatial, size, strides, dilation, pad, strict=True)):
            if conv_output_size(*sizes) < 1:
                span = (size[axis] - 1) * dilation[axis] + 1
                raise ValueError(
                    f"Conv: a kernel spanning {span} positions does not fit spatial axis "
                    f"{axis} of the input {x.shape} (size {spatial[axis]}, padded by "
                    f"{pad[axis]})"
                )
        kernel = self.param(
            "kernel", nn.initializers.lecun_normal(), (*size, x.shape[-1], self.features)
        )
        kernel = kernel.astype(x.dtype)
        if rank == 2 and dilation == (1, 1):
            y = kernels.conv2d(x, kernel, strides, pad)
        else:
            y = jax.lax.conv_general_dilated(
                x,
                kernel,
                strides,
                pad,
                rhs_dilation=dilation,
                dimension_numbers=_dimension_numbers(rank),
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
    """The mean over every spatial axis of channels-last ``x``: (B, *spatial, C) -> (B, C),
    e.g. (B, H, W, C) -> (B, C) or (B, L, C) -> (B, C)."""
    if x.ndim < 3:
        raise ValueError(
            f"global_average_pool: expected (B, *spatial, C) with a spatial axis, got {x.shape}"
        )
    return jnp.mean(x, axis=tuple(range(1, x.ndim - 1)))
