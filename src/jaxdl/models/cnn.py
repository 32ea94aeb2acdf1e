"""Convolutional networks: the classic CNN and residual networks (CIFAR and ImageNet families)."""

from __future__ import annotations

from collections.abc import Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxdl import _checks
from jaxdl.models.layers import Conv, as_images, global_average_pool, pool


class CNN(nn.Module):
    """conv -> pool -> conv -> pool -> ... -> dense -> logits.

    Input (B, H, W, C) images (or (B, H, W) grey ones); output (B, num_classes).

    Attributes:
      channels: output channels of each convolution; each is followed by its pooling.
      dense: widths of the dense layers before the output layer.
      kernel_size: square convolution kernel.
      padding: "SAME" keeps the spatial size through a convolution; "VALID" trims it.
      pooling: "max" or "avg", window and stride ``pool_size``.
      batch_norm: batch normalisation after each convolution (before the activation).
      dropout_rate: dropout before each dense layer, in training only.
    """

    channels: Sequence[int] = (32, 64)
    dense: Sequence[int] = (256,)
    num_classes: int = 10
    kernel_size: int = 3
    padding: str = "SAME"
    pooling: str = "max"
    pool_size: int = 2
    batch_norm: bool = False
    dropout_rate: float = 0.0

    def __post_init__(self):
        _checks.check_widths(self.channels, "CNN.channels")
        _checks.check_widths(self.dense, "CNN.dense")
        for field in ("num_classes", "kernel_size", "pool_size"):
            _checks.check_int(getattr(self, field), f"CNN.{field}")
        if self.padding not in ("SAME", "VALID"):
            raise ValueError(f"CNN.padding: expected 'SAME' or 'VALID', got {self.padding!r}")
        if self.pooling not in ("max", "avg"):
            raise ValueError(f"CNN.pooling: expected 'max' or 'avg', got {self.pooling!r}")
        _checks.check_rate(self.dropout_rate, "CNN.dropout_rate")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = as_images(x)
        k = self.kernel_size
        for i, c in enumerate(self.channels):
            x = Conv(
                c, (k, k), padding=self.padding, use_bias=not self.batch_norm, name=f"conv_{i}"
            )(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, name=f"norm_{i}")(x)
            x = nn.relu(x)
            if x.shape[1] >= self.pool_size and x.shape[2] >= self.pool_size:
                x = pool(x, self.pool_size, self.pooling)
        x = x.reshape(x.shape[0], -1)
        for i, width in enumerate(self.dense):
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
            x = nn.relu(nn.Dense(width, name=f"dense_{i}")(x))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return nn.Dense(self.num_classes, name="output")(x)


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
