"""The device's peak FLOP/s, against which achieved FLOP/s is read as a fraction.

- GPU and TPU: a table of published dense (no sparsity) peaks per chip and dtype, from the
  vendors' data sheets. JAX runs float32 matmuls at default precision as TF32 on NVIDIA
  Ampere and later, and as one bfloat16 pass on TPU, so those are the float32 peaks there
  (``jax_default_matmul_precision="highest"`` switches to the plain float32 figure on GPU).
  TPU v2 and v3 show each chip as two devices, so their per-device figure is half a chip's.
- CPU: no table can know a shared virtual machine's clock and vector units, so the peak is
  measured: the best of a large float32 matmul and a loop of fused multiply-adds, each
  timed a few times after compilation. Achieved FLOP/s of a model can come close to this,
  not exceed it by much; a fraction far above 1 means the probe was disturbed.
"""

from __future__ import annotations

import functools
import re
import time

import jax
import jax.numpy as jnp
import numpy as np

T = 1e12


def _gpu(half: float, tf32: float | None, fp32: float) -> dict:
    """Tensor-core bfloat16/float16, TF32 and plain float32 peaks, in TFLOP/s."""
    peaks = {"bfloat16": half * T, "float16": half * T, "float32": fp32 * T}
    return peaks | ({"tf32": tf32 * T} if tf32 else {})


# (pattern on device_kind, {dtype: FLOP/s per device}); first match wins.
PUBLISHED = [
    (r"H100.*PCIe", _gpu(756, 378, 51.2)),
    (r"H100|H200|GH200", _gpu(989.4, 494.7, 66.9)),
    (r"A100", _gpu(312, 156, 19.5)),
    (r"A10\b", _gpu(125, 62.5, 31.2)),
    (r"L4\b", _gpu(121, 60, 30.3)),
    (r"V100", {"float16": 125 * T, "float32": 15.7 * T}),
    (r"T4\b", {"float16": 65 * T, "float32": 8.1 * T}),
    (r"TPU v6", {"bfloat16": 918 * T}),
    (r"TPU v5 ?lite|TPU v5e", {"bfloat16": 197 * T}),
    (r"TPU v5", {"bfloat16": 459 * T}),
    (r"TPU v4", {"bfloat16": 275 * T}),
    (r"TPU v3", {"bfloat16": 61.5 * T}),
    (r"TPU v2", {"bfloat16": 22.5 * T}),
]


def published_peak(device_kind: str, dtype: str, precision: str | None = None) -> float | None:
    """The table's FLOP/s for ``dtype`` on one device of ``device_kind``, or None."""
    for pattern, peaks in PUBLISHED:
        if re.search(pattern, device_kind):
            if dtype == "float32" and precision != "highest":
                return peaks.get("tf32") or peaks.get("bfloat16") or peaks.get("float32")
            return peaks.get(dtype)
    return None


def _rate(fn, args, flops: float, min_s: float) -> float:
    """Best FLOP/s over 5 timed rounds of ``fn(*args)``, each round at least ``min_s``."""
    jax.block_until_ready(fn(*args))
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            out = fn(*args)
        jax.block_until_ready(out)
        if time.perf_counter() - start >= min_s:
            break
        calls *= 2
    best = 0.0
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            out = fn(*args)
        jax.block_until_ready(out)
        best = max(best, flops * calls / (time.perf_counter() - start))
    return best


@functools.cache
def cpu_probe(size: int = 1024, min_s: float = 0.05) -> dict:
    """Measured float32 FLOP/s of this CPU (as JAX runs it): a (size, size) matmul and a
    multiply-add loop over a vector that stays in cache. Cached per process."""
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.normal(size=(size, size)), jnp.float32)
    b = jnp.asarray(rng.normal(size=(size, size)), jnp.float32)
    matmul = _rate(jax.jit(jnp.matmul), (a, b), 2.0 * size**3, min_s)
    length, rounds = 1 << 15, 512
    x = jnp.asarray(rng.random(length), jnp.float32)
    fma = jax.jit(lambda v: jax.lax.fori_loop(0, rounds, lambda i, v: v * 0.999 + 0.001, v))
    fma_rate = _rate(fma, (x,), 2.0 * length * rounds, min_s)
    return {"matmul_flops": matmul, "fma_flops": fma_rate, "peak_flops": max(matmul, fma_rate)}


def peak_flops(dtype: str = "float32", device: jax.Device | None = None) -> dict:
    """{"peak_flops": per device, "peak_source": where it came from}; peak None when the
    chip is not in the table."""
    device = device or jax.devices()[0]
    if device.platform == "cpu":
        probe = cpu_probe()
        return {"peak_flops": probe["peak_flops"], "peak_source": "measured cpu probe"}
    precision = jax.config.jax_default_matmul_precision
    peak = published_peak(device.device_kind, dtype, precision)
    source = f"published {dtype} peak of {device.device_kind}" if peak else "unknown chip"
    return {"peak_flops": peak, "peak_source": source}
