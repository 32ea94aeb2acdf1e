"""Convolutional networks: the classic CNN (1-D, 2-D and 3-D) and residual networks (CIFAR
and ImageNet families)."""

from __future__ import annotations

from collections.abc import Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxdl import _checks
from jaxdl.models.layers import (
    Conv,
    _is_int,
    _is_sequence,
    as_images,
    check_padding,
    check_sizes,
    conv_output_size,
    conv_padding,
    global_average_pool,
    pool,
    spatial_sizes,
)

POOLINGS = ("max", "avg", "none")
HEADS = ("flatten", "pooled")
_SPATIAL = {1: "(B, L, C)", 2: "(B, H, W, C)", 3: "(B, D, H, W, C)"}
_NO_CHANNELS = {1: "(B, L)", 2: "(B, H, W)", 3: "(B, D, H, W)"}


def _one_size(value) -> bool:
    # an int, or a flat sequence of ints (one per spatial axis, as flax.linen.Conv reads it)
    return _is_int(value) or (
        _is_sequence(value) and len(value) > 0 and all(_is_int(v) for v in value)
    )


def _one_padding(value) -> bool:
    # "SAME"/"VALID", an int, or per-axis entries that are ints or (low, high) pairs
    if isinstance(value, str) or _is_int(value):
        return True
    return (
        _is_sequence(value)
        and len(value) > 0
        and all(
            _is_int(v) or (_is_sequence(v) and len(v) == 2 and all(_is_int(p) for p in v))
            for v in value
        )
    )


def _per_layer(value, count: int, name: str, is_one, check) -> tuple:
    """``value`` for each of ``count`` convolutions: one value for all of them (when ``value``
    is itself one value) or a sequence of ``count`` values, one per convolution."""
    if is_one(value):
        return (check(value, name),) * count
    if not _is_sequence(value) or len(value) == 0:
        return (check(value, name),) * count  # the check says what one value may be
    if len(value) != count:
        raise ValueError(
            f"{name}: expected one value for every convolution or a sequence of one per "
            f"convolution ({count}, as CNN.channels has), got {len(value)}: {value!r}"
        )
    return tuple(check(v, f"{name}[{i}]") for i, v in enumerate(value))


def _check_pooling(value, name: str) -> str:
    if value is None:
        return "none"
    if not isinstance(value, str) or value not in POOLINGS:
        raise ValueError(f"{name}: expected 'max', 'avg', 'none' or None, got {value!r}")
    return value


def _shape(shape) -> str:
    return "(" + ", ".join(["B", *map(str, shape[1:])]) + ")"


class CNN(nn.Module):
    """conv -> pool -> conv -> pool -> ... -> dense -> logits, for signals, images or volumes.

    Inputs are channels last, and the input's rank picks the convolutions' rank:

    - (B, L, C) signals: 1-D convolutions; (B, H, W, C) images: 2-D; (B, D, H, W, C)
      volumes: 3-D.
    - (B, L) signals: 1-D over one channel.
    - (B, a, b), when ``spatial_dims`` is None: (B, L, 1) is a one-channel signal (1-D);
      (B, H, W) with H == W are grey images (one channel, 2-D); any other (B, a, b) is
      ambiguous (signals of a positions and b channels, or grey a x b images) and refused:
      set ``spatial_dims``.
    - ``spatial_dims=n`` fixes the rank: inputs (B, S_1, ..., S_n, C), or (B, S_1, ..., S_n)
      that gain a channel axis; other ranks are refused.

    Output (B, num_classes). Through layer i the spatial sizes S go
    ``S -> (S + low + high - span) // stride + 1`` (the convolution, ``span = (k - 1) *
    dilation + 1``; with "SAME" that is ``ceil(S / stride)``) ``-> S // pool`` (the pooling).
    A kernel that does not fit its input, or a pooling window larger than its input, is
    refused with the layer and the sizes. The head flattens (B, *S, C_last) to
    (B, prod(S) * C_last), or with ``head="pooled"`` averages it over every spatial axis to
    (B, C_last); then the dense layers and the output layer.

    ``kernel_size``, ``strides``, ``dilation``, ``padding``, ``pool_size`` and ``pooling``
    each take one value for every convolution, or a sequence of one value per convolution
    (as many as ``channels``). A sequence that is itself one value is read as one value, as
    ``flax.linen.Conv`` reads it: ``kernel_size=(5, 1)`` is a 5 x 1 kernel in every layer,
    ``kernel_size=((7,), (5,), (3,))`` (or ``(7, 5, (3,))``) three 1-D kernels of 7, 5 and
    3, ``kernel_size=(5, (3, 1))`` a 5 x 5 kernel then a 3 x 1 kernel;
    ``padding=((0, 1), (2, 2))`` pads two axes (low, high), ``padding=("SAME", "VALID")``
    pads the first of two convolutions and not the second. An int size applies to every
    spatial axis.

    Attributes:
      channels: output channels of each convolution; each is followed by its pooling.
        Default (32, 64).
      dense: widths of the dense layers before the output layer. Default (256,).
      num_classes: outputs of the last layer. Default 10.
      kernel_size: the kernels' sizes: int, one int per spatial axis, or one of those per
        convolution. Default 3.
      padding: "SAME" (default: ``ceil(S / stride)`` positions out), "VALID" (none), an int
        (zeros on both sides of every axis), one int or (low, high) pair per spatial axis, or
        one of those per convolution.
      pooling: "max" (default), "avg" or "none" (or None) after each convolution, or one of
        those per convolution.
      pool_size: the pooling window, which is also its stride: int (default 2), one int per
        spatial axis, or one of those per convolution.
      batch_norm: batch normalisation after each convolution (before the activation); the
        convolutions then have no bias. Default False.
      dropout_rate: dropout before each dense layer, in training only. Default 0.
      strides: the convolutions' strides, as ``kernel_size``. Default 1.
      dilation: the gap between a kernel's taps, as ``kernel_size`` (1, the default, is a
        plain convolution).
      head: "flatten" (default) or "pooled" (global average pooling over the spatial
        axes, so the dense layers do not depend on the input's size).
      spatial_dims: None (default: the rank follows the input, as above), or 1, 2 or 3.

    Example:
      Signals of 32 steps and 2 channels, (B, L, C): ``spatial_dims=1`` says they are not
      32 x 2 grey images, so the kernels are 1-D, (k, C_in, C_out), and the head flattens
      32 // 2 = 16 positions of 4 channels into 64 features:

      >>> cnn = jaxdl.models.CNN(channels=(4,), dense=(), num_classes=3, spatial_dims=1)
      >>> signals = np.zeros((2, 32, 2), np.float32)
      >>> variables = cnn.init(jax.random.key(0), signals)
      >>> params = variables["params"]
      >>> params["conv_0"]["kernel"].shape, params["output"]["kernel"].shape
      ((3, 2, 4), (64, 3))
      >>> cnn.apply(variables, signals).shape
      (2, 3)

      8x8 grey images, as ``jaxdl.data.load("digits", image=True)`` gives them, (B, 8, 8, 1),
      or (B, 8, 8) without the channel axis (H == W: one channel): 2-D kernels (kh, kw,
      C_in, C_out), and 8x8 -> 4x4 positions of 4 channels, 64 features, after the pooling:

      >>> cnn = jaxdl.models.CNN(channels=(4,), dense=(), num_classes=10)
      >>> images = np.zeros((2, 8, 8, 1), np.float32)
      >>> variables = cnn.init(jax.random.key(0), images)
      >>> variables["params"]["conv_0"]["kernel"].shape
      (3, 3, 1, 4)
      >>> cnn.apply(variables, images[..., 0]).shape  # the same images without channel axis
      (2, 10)
    """

    channels: Sequence[int] = (32, 64)
    dense: Sequence[int] = (256,)
    num_classes: int = 10
    kernel_size: int | Sequence = 3
    padding: str | int | Sequence = "SAME"
    pooling: str | None | Sequence = "max"
    pool_size: int | Sequence = 2
    batch_norm: bool = False
    dropout_rate: float = 0.0
    strides: int | Sequence = 1
    dilation: int | Sequence = 1
    head: str = "flatten"
    spatial_dims: int | None = None

    def __post_init__(self):
        _checks.check_widths(self.channels, "CNN.channels")
        _checks.check_widths(self.dense, "CNN.dense")
        _checks.check_int(self.num_classes, "CNN.num_classes")
        _layers(self)  # every per-layer field, refused here if malformed
        if self.head not in HEADS:
            raise ValueError(f"CNN.head: expected 'flatten' or 'pooled', got {self.head!r}")
        if self.spatial_dims is not None:
            _checks.check_int(self.spatial_dims, "CNN.spatial_dims", 1, 3)
        _checks.check_rate(self.dropout_rate, "CNN.dropout_rate")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = _with_channels(self, x)
        for i, (c, layer) in enumerate(zip(self.channels, _plan(self, x.shape), strict=True)):
            x = Conv(
                c,
                layer["kernel_size"],
                layer["strides"],
                padding=layer["padding"],
                use_bias=not self.batch_norm,
                kernel_dilation=layer["dilation"],
                name=f"conv_{i}",
            )(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, name=f"norm_{i}")(x)
            x = nn.relu(x)
            if layer["pooling"] != "none":
                x = pool(x, layer["pool_size"], layer["pooling"])
        if self.head == "pooled":
            x = global_average_pool(x)
        else:
            x = x.reshape(x.shape[0], -1)
        for i, width in enumerate(self.dense):
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
            x = nn.relu(nn.Dense(width, name=f"dense_{i}")(x))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return nn.Dense(self.num_classes, name="output")(x)


# The CNN's helpers are functions, not methods: Flax wraps a module's methods, so method
# interceptors (jaxdl.summary's) would take each for a call of the module, bound or not.


def _layers(self: CNN) -> dict[str, tuple]:
    """{field: (its value for convolution 0, for convolution 1, ...)}; the sizes as ints
    or per-axis tuples, not yet matched to the input's rank."""
    n = len(self.channels)
    sizes = lambda f: _per_layer(getattr(self, f), n, f"CNN.{f}", _one_size, check_sizes)
    return {
        "kernel_size": sizes("kernel_size"),
        "strides": sizes("strides"),
        "dilation": sizes("dilation"),
        "pool_size": sizes("pool_size"),
        "padding": _per_layer(self.padding, n, "CNN.padding", _one_padding, check_padding),
        "pooling": _per_layer(
            self.pooling,
            n,
            "CNN.pooling",
            lambda v: v is None or isinstance(v, str),
            _check_pooling,
        ),
    }


def _with_channels(self: CNN, x: jax.Array) -> jax.Array:
    """``x`` as (B, *spatial, C), by the rule of the class docstring."""
    n, shape = self.spatial_dims, x.shape
    if n is None:
        if x.ndim == 2:
            return x[..., None]
        if x.ndim == 3:
            if shape[2] == 1:
                return x
            if shape[1] == shape[2]:
                return x[..., None]
            raise ValueError(
                f"CNN: input {_shape(shape)} is ambiguous: (B, L, C) signals of "
                f"{shape[1]} positions and {shape[2]} channels, or (B, H, W) grey "
                f"{shape[1]}x{shape[2]} images; set CNN.spatial_dims=1 for signals or "
                f"CNN.spatial_dims=2 for images"
            )
        if x.ndim in (4, 5):
            return x
        raise ValueError(
            f"CNN: expected (B, L), (B, L, C), (B, H, W), (B, H, W, C) or "
            f"(B, D, H, W, C) inputs, got shape {tuple(shape)}"
        )
    if x.ndim == n + 1:
        return x[..., None]
    if x.ndim == n + 2:
        return x
    raise ValueError(
        f"CNN: with spatial_dims={n}, expected inputs {_SPATIAL[n]} or {_NO_CHANNELS[n]}, "
        f"got shape {tuple(shape)}"
    )


def _plan(self: CNN, shape: tuple[int, ...]) -> list[dict]:
    """Each convolution's sizes matched to the spatial axes of an input of ``shape`` (B,
    *spatial, C), its padding as (low, high) pairs, and its pooling; refuses a kernel or a
    pooling window that does not fit the feature map it gets."""
    rank, fields = len(shape) - 2, _layers(self)
    spatial = tuple(shape[1:-1])
    trail = [f"input {_shape(shape)}"]
    plan = []
    for i in range(len(self.channels)):
        layer = {"pooling": fields["pooling"][i]}
        for field in ("kernel_size", "strides", "dilation", "pool_size"):
            value = fields[field][i]
            name = f"CNN.{field}" if _one_size(getattr(self, field)) else f"CNN.{field}[{i}]"
            try:
                layer[field] = spatial_sizes(value, rank, name)
            except ValueError as error:
                raise ValueError(f"{error}{_nesting_hint(self, field)}") from None
        k, s, d = layer["kernel_size"], layer["strides"], layer["dilation"]
        name = "CNN.padding" if _one_padding(self.padding) else f"CNN.padding[{i}]"
        pads = conv_padding(spatial, k, s, d, fields["padding"][i], name)
        out = tuple(conv_output_size(spatial[a], k[a], s[a], d[a], pads[a]) for a in range(rank))
        if min(out) < 1:
            a = min(range(rank), key=lambda a: out[a])
            span = (k[a] - 1) * d[a] + 1
            raise ValueError(
                f"CNN: conv_{i} (kernel {k}, dilation {d}, padding {pads}) spans {span} "
                f"positions on spatial axis {a}, but its input there has {spatial[a]} "
                f"(+ {pads[a][0] + pads[a][1]} padding); sizes so far: "
                f"{' -> '.join(trail)}. Use padding='SAME', a smaller kernel or "
                f"dilation, fewer layers, or larger inputs"
            )
        layer["padding"], spatial = pads, out
        trail.append(f"conv_{i} {spatial}")
        window = layer["pool_size"]
        if layer["pooling"] != "none":
            if any(w > size for w, size in zip(window, spatial, strict=True)):
                raise ValueError(
                    f"CNN: the {layer['pooling']} pooling after conv_{i} has window "
                    f"{window}, larger than the {spatial} feature map it gets (sizes so "
                    f"far: {' -> '.join(trail)}), which it would leave no position. Use a smaller "
                    f"CNN.pool_size, pooling 'none' for this layer (CNN.pooling takes one "
                    f"value per convolution), fewer layers, or larger inputs"
                )
            spatial = tuple(size // w for size, w in zip(spatial, window, strict=True))
            trail.append(f"pool {spatial}")
        plan.append(layer)
    return plan


def _nesting_hint(self: CNN, field: str) -> str:
    value = getattr(self, field)
    if _is_sequence(value) and len(value) == len(self.channels) and _one_size(value):
        nested = "(" + ", ".join(f"({int(v)},)" for v in value) + ")"
        return (
            f" (a flat sequence of ints is one size per spatial axis, for every "
            f"convolution; for one size per convolution write each as a tuple: "
            f"{field}={nested})"
        )
    return ""


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a shortcut (ResNet-18/34 and CIFAR nets)."""

    channels: int
    stride: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        norm = lambda name: nn.BatchNorm(use_running_average=not train, momentum=0.9, name=name)
        s = (self.stride, self.stride)
        y = Conv(self.channels, (3, 3), s, padding=1, use_bias=False, name="conv_0")(x)
        y = nn.relu(norm("norm_0")(y))
        y = Conv(self.channels, (3, 3), padding=1, use_bias=False, name="conv_1")(y)
        y = norm("norm_1")(y)
        if x.shape != y.shape:
            x = Conv(self.channels, (1, 1), s, use_bias=False, name="shortcut")(x)
            x = norm("shortcut_norm")(x)
        return nn.relu(x + y)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4) with batch norm and a shortcut (ResNet-50 and up)."""

    channels: int
    stride: int = 1
    expansion: int = 4

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        norm = lambda name: nn.BatchNorm(use_running_average=not train, momentum=0.9, name=name)
        s = (self.stride, self.stride)
        out = self.channels * self.expansion
        y = nn.relu(norm("norm_0")(Conv(self.channels, (1, 1), use_bias=False, name="conv_0")(x)))
        y = Conv(self.channels, (3, 3), s, padding=1, use_bias=False, name="conv_1")(y)
        y = nn.relu(norm("norm_1")(y))
        y = norm("norm_2")(Conv(out, (1, 1), use_bias=False, name="conv_2")(y))
        if x.shape != y.shape:
            x = norm("shortcut_norm")(Conv(out, (1, 1), s, use_bias=False, name="shortcut")(x))
        return nn.relu(x + y)


# depth -> (block, blocks per stage, channels of the first stage)
RESNETS = {
    20: (BasicBlock, (3, 3, 3), 16),
    32: (BasicBlock, (5, 5, 5), 16),
    44: (BasicBlock, (7, 7, 7), 16),
    56: (BasicBlock, (9, 9, 9), 16),
    110: (BasicBlock, (18, 18, 18), 16),
    18: (BasicBlock, (2, 2, 2, 2), 64),
    34: (BasicBlock, (3, 4, 6, 3), 64),
    50: (Bottleneck, (3, 4, 6, 3), 64),
    101: (Bottleneck, (3, 4, 23, 3), 64),
    152: (Bottleneck, (3, 8, 36, 3), 64),
}


class ResNet(nn.Module):
    """Residual network by depth: CIFAR family (20, 32, 44, 56, 110: three stages of 16, 32,
    64 channels, a 3x3 stem) or ImageNet family (18, 34 with basic blocks; 50, 101, 152 with
    bottlenecks: four stages of 64..512 channels, a 7x7 stride-2 stem and max pooling).

    Input (B, H, W, C); output (B, num_classes). ``small_inputs=True`` gives the ImageNet
    family the 3x3 stem without down-sampling, for 32x32 images or smaller. ``width``
    overrides the channels of the first stage and ``blocks`` the blocks per stage (both for
    small test instances). ``remat=True`` recomputes each residual block's activations in
    the backward pass (``jax.checkpoint``) instead of keeping them: less memory, the same
    numbers.

    Attributes:
      depth: one of the depths above (default 20).
      num_classes: outputs (default 10).
      small_inputs: the 3x3 stem for the ImageNet family (default False).
      width: channels of the first stage (default None: 16, or 64 for the ImageNet family).
      blocks: blocks per stage, 3 or 4 stages (default None: the depth's).
      remat: recompute the blocks' activations in the backward pass (default False).

    Example:
      ``jax.eval_shape`` gives the variables' shapes without computing them, so a full-size
      ResNet-20 for CIFAR-10 costs nothing to inspect; it has its 0.27M parameters:

      >>> resnet = jaxdl.models.ResNet(20, num_classes=10)
      >>> images = np.zeros((2, 32, 32, 3), np.float32)
      >>> variables = jax.eval_shape(resnet.init, jax.random.key(0), images)
      >>> sorted(variables)  # the batch norms' running statistics live in "batch_stats"
      ['batch_stats', 'params']
      >>> sum(int(np.prod(p.shape)) for p in jax.tree.leaves(variables["params"]))
      272474
      >>> jax.eval_shape(resnet.apply, variables, images).shape
      (2, 10)

      In training the statistics are updated, so ``apply`` returns them too:

      >>> logits, updates = jax.eval_shape(
      ...     lambda v, x: resnet.apply(v, x, train=True, mutable=["batch_stats"]),
      ...     variables, images,
      ... )
      >>> logits.shape, sorted(updates)
      ((2, 10), ['batch_stats'])
    """

    depth: int = 20
    num_classes: int = 10
    small_inputs: bool = False
    width: int | None = None
    blocks: tuple[int, ...] | None = None
    remat: bool = False

    def __post_init__(self):
        if isinstance(self.depth, bool) or self.depth not in RESNETS:
            raise ValueError(
                f"ResNet.depth: unknown ResNet depth {self.depth!r}; expected one of "
                f"{sorted(RESNETS)}"
            )
        _checks.check_int(self.num_classes, "ResNet.num_classes")
        if self.width is not None:
            _checks.check_int(self.width, "ResNet.width")
        if self.blocks is not None:
            blocks = _checks.check_widths(self.blocks, "ResNet.blocks", allow_empty=False)
            if len(blocks) not in (3, 4):
                raise ValueError(
                    f"ResNet.blocks: expected 3 stages (CIFAR family) or 4 (ImageNet family), "
                    f"got {blocks!r}"
                )
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if self.depth not in RESNETS:
            raise ValueError(
                f"unknown ResNet depth {self.depth}; expected one of {sorted(RESNETS)}"
            )
        x = as_images(x)
        chex.assert_rank(x, 4)
        block, stages, base = RESNETS[self.depth]
        if self.remat:
            block = nn.remat(block, static_argnums=(2,))  # train is static
        base = self.width or base
        stages = self.blocks or stages
        imagenet = len(stages) == 4
        norm = lambda name: nn.BatchNorm(use_running_average=not train, momentum=0.9, name=name)
        if imagenet and not self.small_inputs:
            x = Conv(base, (7, 7), (2, 2), padding=3, use_bias=False, name="stem")(x)
            x = nn.relu(norm("stem_norm")(x))
            x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
        else:
            x = nn.relu(
                norm("stem_norm")(Conv(base, (3, 3), padding=1, use_bias=False, name="stem")(x))
            )
        for stage, blocks in enumerate(stages):
            for i in range(blocks):
                stride = 2 if stage > 0 and i == 0 else 1
                x = block(base * 2**stage, stride, name=f"stage{stage}_block{i}")(x, train)
        x = global_average_pool(x)
        return nn.Dense(self.num_classes, name="output")(x.astype(jnp.float32))
