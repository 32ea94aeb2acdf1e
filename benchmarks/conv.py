"""jaxdl's convolution against ``lax.conv_general_dilated`` and ``flax.linen.Conv``, forward
and gradient, on every convolution shape the zoo and the other benchmarks use.

One row is one convolution layer (with its bias): the time of one jitted call that computes
the gradient of ``sum(conv(x) * g)`` (``g`` a fixed cotangent) with respect to the kernel
and bias, and also to ``x`` where the layer is not a net's first (a first layer's input
gradient is never needed, and XLA drops it). The sides, interleaved round by round
(``harness.interleaved``), each the median of its rounds:

- patches: the im2col formulation of ``cpu_kernels`` forced (2-D stride-1 rows only)
- jaxdl: ``jaxdl.models.layers.Conv`` with ``use_cpu_kernels(True)``: what its dispatch
  rule picks (``patches`` says whether that is the im2col formulation)
- lax: the same module with ``use_cpu_kernels(False)``, ``lax.conv_general_dilated``
- flax: ``flax.linen.Conv`` with the same parameters

``jaxdl_to_lax`` is jaxdl's time over lax's (below 1: jaxdl faster), and ``patches_to_lax``
the im2col formulation's. ``max_err`` is the largest difference between jaxdl's gradients and
lax's, relative to the largest gradient entry. ``load`` is ``os.getloadavg()[0]`` before the
row (other processes on the machine slow every side alike, as the sides are interleaved).

The shapes (batch, spatial, Cin -> Cout, kernel / stride):

- cnn_default: ``CNN()`` on 8x8x1 digits, batch 64 (32 and 64 channels, 3x3 SAME)
- cnn_small / cnn_medium: ``cases.zoo_case("cnn", ...)``, ``peers``' CNN (28x28x1, VALID)
- cnn1d_signal: ``loop_modes``' 1-D signal (40 positions), kernel 5, stride 2 and 1
- resnet20: ``ResNet(20)`` on 32x32x3 CIFAR images, batch 64: the stem, the 3x3 convolutions
  of each stage, the strided 3x3 and 1x1 shortcut convolutions entering stages 2 and 3
- resnet_imagenet: the 7x7/2 stem on 224x224x3, a stage-1 3x3 and the 1x1 bottleneck
  convolutions on 56x56, and stage 4's on 7x7, batch 8
- issue_40x1 / issue_44x5: two user nets' shapes: (100, 40, 1) inputs with 5-wide kernels
  (as 1-D signals and as 40x1 images), and (100, 44, 5, 25) inputs with 5x5 kernels

Depthwise convolutions are not offered by ``jaxdl.models.layers.Conv`` (no feature groups),
so there is no row for them.

Command: ``python benchmarks/conv.py`` (a few minutes; ``--quick``: fewer, shorter rounds),
writes ``results/conv.md`` and appends to ``results/conv.jsonl``.
"""

from __future__ import annotations

import argparse
import os
import statistics

import common  # benchmarks/common.py, beside this script
import flax.linen as nn
import harness
import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import cpu_kernels
from jaxdl.models.layers import Conv, conv_padding

# (name, batch, spatial, cin, cout, kernel, stride, padding, input gradient)
CASES = [
    ("cnn_default conv_0", 64, (8, 8), 1, 32, 3, 1, "SAME", False),
    ("cnn_default conv_1", 64, (4, 4), 32, 64, 3, 1, "SAME", True),
    ("cnn_small conv_0", 64, (8, 8), 1, 16, 3, 1, "SAME", False),
    ("cnn_small conv_1", 64, (4, 4), 16, 32, 3, 1, "SAME", True),
    ("cnn_medium conv_0", 128, (28, 28), 1, 32, 3, 1, "VALID", False),
    ("cnn_medium conv_1", 128, (13, 13), 32, 64, 3, 1, "VALID", True),
    ("cnn1d_signal conv_0 /2", 100, (40,), 1, 8, 5, 2, "SAME", False),
    ("cnn1d_signal conv_1 /2", 100, (20,), 8, 16, 5, 2, "SAME", True),
    ("resnet20 stem", 64, (32, 32), 3, 16, 3, 1, 1, False),
    ("resnet20 stage1 3x3", 64, (32, 32), 16, 16, 3, 1, 1, True),
    ("resnet20 stage2 3x3 /2", 64, (32, 32), 16, 32, 3, 2, 1, True),
    ("resnet20 stage2 1x1 /2", 64, (32, 32), 16, 32, 1, 2, 0, True),
    ("resnet20 stage2 3x3", 64, (16, 16), 32, 32, 3, 1, 1, True),
    ("resnet20 stage3 3x3 /2", 64, (16, 16), 32, 64, 3, 2, 1, True),
    ("resnet20 stage3 1x1 /2", 64, (16, 16), 32, 64, 1, 2, 0, True),
    ("resnet20 stage3 3x3", 64, (8, 8), 64, 64, 3, 1, 1, True),
    ("resnet_imagenet stem 7x7 /2", 8, (224, 224), 3, 64, 7, 2, 3, False),
    ("resnet_imagenet stage1 3x3", 8, (56, 56), 64, 64, 3, 1, 1, True),
    ("resnet_imagenet 1x1 reduce", 8, (56, 56), 256, 64, 1, 1, 0, True),
    ("resnet_imagenet 1x1 expand", 8, (56, 56), 64, 256, 1, 1, 0, True),
    ("resnet_imagenet stage4 1x1 reduce", 8, (7, 7), 2048, 512, 1, 1, 0, True),
    ("resnet_imagenet stage4 3x3", 8, (7, 7), 512, 512, 3, 1, 1, True),
    ("resnet_imagenet stage4 1x1 expand", 8, (7, 7), 512, 2048, 1, 1, 0, True),
    ("issue_40x1 1-D conv_0", 100, (40,), 1, 32, 5, 1, "SAME", False),
    ("issue_40x1 1-D conv_1", 100, (20,), 32, 64, 5, 1, "SAME", True),
    ("issue_40x1 2-D conv_0", 100, (40, 1), 1, 32, 5, 1, "SAME", False),
    ("issue_40x1 2-D conv_1", 100, (20, 1), 32, 64, 5, 1, "SAME", True),
    ("issue_44x5 conv_0", 100, (44, 5), 25, 32, 5, 1, "SAME", False),
    ("issue_44x5 conv_1", 100, (22, 5), 32, 64, 5, 1, "SAME", True),
]
QUICK = {"cnn_default conv_1", "resnet20 stage1 3x3", "resnet20 stage2 3x3 /2", "issue_44x5 conv_0"}
COLUMNS = ["case", "x", "kernel", "patches", "patches_ms", "jaxdl_ms", "lax_ms", "flax_ms",
           "jaxdl_to_lax", "patches_to_lax", "flax_to_lax", "max_err", "load"]  # fmt: skip


class Patches(nn.Module):
    """``Conv``'s parameters, computed by the im2col formulation whatever the dispatch rule
    says (2-D, stride 1 only)."""

    features: int
    kernel_size: tuple
    padding: object

    @nn.compact
    def __call__(self, x):
        shape = (*self.kernel_size, x.shape[-1], self.features)
        kernel = self.param("kernel", nn.initializers.lecun_normal(), shape)
        pad = conv_padding(x.shape[1:-1], self.kernel_size, (1, 1), (1, 1), self.padding, "pad")
        x = jnp.pad(x, ((0, 0), *pad, (0, 0)))
        y = cpu_kernels._conv2d_patches(x, kernel)
        return y + self.param("bias", nn.initializers.zeros, (self.features,))


def gradient_call(module, x, g, input_grad: bool, setting):
    """A warm ``run(n)``: n calls of the jitted gradient, traced with the switch at
    ``setting``; and (its gradients, whether it traced the im2col formulation)."""
    params = module.init(jax.random.key(0), x)

    def loss(params, x):
        return jnp.sum(module.apply(params, x) * g)

    grad = jax.grad(loss, (0, 1) if input_grad else 0)
    with cpu_kernels.use_cpu_kernels(setting):
        patches = "custom_vjp" in str(jax.make_jaxpr(module.apply)(params, x))
        step = jax.jit(grad).lower(params, x).compile()
    out = step(params, x)
    jax.block_until_ready(out)

    def run(n: int) -> None:
        for _ in range(n):
            out = step(params, x)
        jax.block_until_ready(out)

    return run, out, patches


def measure(case, repeats: int, min_round_s: float) -> dict:
    name, batch, spatial, cin, cout, k, stride, padding, input_grad = case
    rank = len(spatial)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(batch, *spatial, cin)), jnp.float32)
    size, strides = (k,) * rank, (stride,) * rank
    jaxdl_conv = Conv(cout, size, strides, padding)
    out = jax.eval_shape(jaxdl_conv.init_with_output, jax.random.key(0), x)[0]
    g = jnp.asarray(rng.normal(size=out.shape), jnp.float32)
    load = os.getloadavg()[0]
    runs = {}
    results = {}
    if rank == 2 and stride == 1:
        runs["patches"], results["patches"], _ = gradient_call(
            Patches(cout, size, padding), x, g, input_grad, True
        )
    runs["jaxdl"], results["jaxdl"], patches = gradient_call(jaxdl_conv, x, g, input_grad, True)
    runs["lax"], results["lax"], _ = gradient_call(jaxdl_conv, x, g, input_grad, False)
    flax_padding = padding if isinstance(padding, str) else [(padding, padding)] * rank
    runs["flax"], results["flax"], _ = gradient_call(
        nn.Conv(cout, size, strides, flax_padding), x, g, input_grad, False
    )
    errors = []
    for a, b in zip(*map(jax.tree.leaves, (results["jaxdl"], results["lax"])), strict=True):
        errors.append(float(jnp.abs(a - b).max() / (1e-30 + jnp.abs(b).max())))
    rates, _ = harness.interleaved(runs, repeats, min_round_s)
    ms = {side: 1e3 / statistics.median(r) for side, r in rates.items()}
    row = {
        "case": name,
        "x": "x".join(map(str, (batch, *spatial, cin))),
        "kernel": f"{'x'.join(map(str, size))} {cin}->{cout}" + (f" /{stride}" * (stride > 1)),
        "patches": patches,
        "input_grad": input_grad,
        "jaxdl_to_lax": ms["jaxdl"] / ms["lax"],
        "flax_to_lax": ms["flax"] / ms["lax"],
        "max_err": max(errors),
        "load": load,
        "repeats": repeats,
        "min_round_s": min_round_s,
    }
    for side, t in ms.items():
        row[f"{side}_ms"] = t
        row[f"{side}_ms_min"] = 1e3 / max(rates[side])
        row[f"{side}_ms_max"] = 1e3 / min(rates[side])
    if "patches" in ms:
        row["patches_to_lax"] = ms["patches"] / ms["lax"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="four shapes, short rounds")
    parser.add_argument("--cases", nargs="+", help="names starting with these (default: all)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--min-round-s", type=float, default=0.2)
    parser.add_argument("--name", default="conv", help="results file name")
    parser.add_argument("--label", default="", help="a note kept in every row (the rule timed)")
    parser.add_argument("--out", default=common.RESULTS, help="results folder")
    args = parser.parse_args()
    cases = [c for c in CASES if not args.quick or c[0] in QUICK]
    if args.cases:
        cases = [c for c in cases if any(c[0].startswith(p) for p in args.cases)]
    repeats, min_round_s = (3, 0.1) if args.quick else (args.repeats, args.min_round_s)
    print("  ".join(COLUMNS), flush=True)
    rows = []
    for case in cases:
        rows.append({**measure(case, repeats, min_round_s), "label": args.label})
        print("  ".join(common.cell(rows[-1].get(c)) for c in COLUMNS), flush=True)
    print("wrote", common.write(args.name, rows, COLUMNS, args.out))


if __name__ == "__main__":
    main()
