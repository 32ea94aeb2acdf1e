"""The float32 matrix products of the ``peers`` shapes, XLA:CPU's against PyTorch's: the
rate each library's kernels reach on this machine, which bounds how close a step can come
to PyTorch's whatever the layers do.

Each side multiplies ``count`` different (m, k) inputs by one (k, n) weight and sums the
products: XLA inside one compiled ``fori_loop`` (so no Python dispatch between products),
under its default kernels (YNNPACK), Eigen (``xla_cpu_experimental_ynn_fusion_type=""``)
and oneDNN (``xla_cpu_use_onednn``); PyTorch by ``addmm_`` into an accumulator. All are
interleaved round by round (``harness.interleaved``). The shapes:

- mlp: (128, 784) @ (784, 512), (128, 512) @ (512, 512), the MLP's two large layers
- lstm: (64, 256) @ (256, 1024), the recurrent product of one time step, and
  (64, 1024) @ (1024, 256), its input gradient in the backward
- lm: (2048, 256) @ (256, 1024), (2048, 1024) @ (1024, 256), the LM's MLP up and down

Command: ``python benchmarks/gemm.py`` (about two minutes), writes ``results/gemm.md``.
"""

from __future__ import annotations

import argparse
import statistics

import common
import harness
import jax
import jax.numpy as jnp
import numpy as np

SHAPES = {
    "mlp": [(128, 784, 512), (128, 512, 512)],
    "lstm": [(64, 256, 1024), (64, 1024, 256)],
    "lm": [(2048, 256, 1024), (2048, 1024, 256)],
}
XLA = {
    "xla": {},
    "xla_eigen": {"xla_cpu_experimental_ynn_fusion_type": ""},
    "xla_onednn": {"xla_cpu_use_onednn": True},
}
COLUMNS = ["case", "m", "k", "n", *(f"{name}_gflops" for name in XLA), "torch_gflops",
           "xla_to_torch"]  # fmt: skip


def operands(m: int, k: int, n: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((count, m, k), np.float32)
    return x, (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)


def summed_products(x, w):
    """sum_t x[t] @ w, one product per iteration of a compiled loop."""

    def body(t, total):
        return total + jax.lax.dynamic_index_in_dim(x, t, keepdims=False) @ w

    return jax.lax.fori_loop(0, x.shape[0], body, jnp.zeros((x.shape[1], w.shape[1]), x.dtype))


def xla_run(x: np.ndarray, w: np.ndarray, options: dict):
    """``run(n)``: n calls of ``summed_products`` compiled with ``options``; None where this
    jaxlib does not take them."""
    x, w = jnp.asarray(x), jnp.asarray(w)
    try:
        compiled = jax.jit(summed_products, compiler_options=options).lower(x, w).compile()
    except Exception:
        if not options:  # XLA's defaults must compile: an error there is real
            raise
        return None  # an option this build of XLA does not know

    def run(n: int) -> None:
        for _ in range(n):
            out = compiled(x, w)
        out.block_until_ready()

    return run


def torch_run(x: np.ndarray, w: np.ndarray):
    import torch

    x, w = torch.from_numpy(x), torch.from_numpy(w)
    total = torch.zeros(x.shape[1], w.shape[1])

    def run(n: int) -> None:
        for _ in range(n):
            total.zero_()
            for x_t in x:
                total.addmm_(x_t, w)

    return run


def measure(case: str, m: int, k: int, n: int, count: int, repeats: int, min_round_s: float):
    """A row: GFLOP/s of each side for ``count`` products per call."""
    x, w = operands(m, k, n, count)
    runs = {name: xla_run(x, w, options) for name, options in XLA.items()}
    runs = {name: run for name, run in runs.items() if run is not None}
    try:
        runs["torch"] = torch_run(x, w)
    except ImportError:
        pass
    for run in runs.values():
        run(2)
    rates, _ = harness.interleaved(runs, repeats, min_round_s)
    flops = 2.0 * m * k * n * count
    row = {"case": case, "m": m, "k": k, "n": n}
    for name, r in rates.items():
        row[f"{name}_gflops"] = statistics.median(r) * flops / 1e9
    if "torch" in rates:
        row["xla_to_torch"] = row["xla_gflops"] / row["torch_gflops"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices=sorted(SHAPES), default=list(SHAPES))
    parser.add_argument("--count", type=int, default=16, help="products per timed call")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--min-round-s", type=float, default=0.3)
    parser.add_argument("--out", default=common.RESULTS, help="results folder")
    args = parser.parse_args()
    rows = []
    for case in args.cases:
        for m, k, n in SHAPES[case]:
            rows.append(measure(case, m, k, n, args.count, args.repeats, args.min_round_s))
            print("  ".join(common.cell(rows[-1].get(c)) for c in COLUMNS), flush=True)
    print("wrote", common.write("gemm", rows, COLUMNS, args.out))


if __name__ == "__main__":
    main()
