"""Time one compiled step: compile apart from steady state, FLOPs, FLOP/s against the peak,
memory.

``time_step(call, carry, inputs)`` runs ``carry = call(*carry, *inputs)`` over and over:

1. The first call is traced, lowered and compiled. JAX reports the duration of each phase
   through ``jax.monitoring``; those events give ``trace_s``, ``lower_s`` (jaxpr to MLIR)
   and ``compile_s`` (XLA) for any callable: ``jax.jit``, ``jax.pmap`` or a wrapper around
   either. ``first_call_s`` is the whole first call.
2. Warm-up calls, then the number of steps per round is doubled until a round lasts
   ``min_round_s``; ``repeats`` rounds of that many steps give the median, min and max
   steps/s. Each round ends by blocking on the carry, so no step is left in flight.
3. FLOPs per step come from XLA's cost analysis of ``cost_fn`` (the step's computation on
   one device and the global batch) compiled ahead of time. ``jaxpr_flops`` counts the
   matmuls and convolutions of the step's jaxpr too. XLA's analysis counts the body of a
   loop (``lax.scan``: an RNN over time, scanned layers) once, so for a step with a loop
   whose analytic count is the larger, or where XLA gives none, the analytic count is used
   (``flops_source`` says which).
   Achieved FLOP/s is FLOPs × steps/s; its fraction of the peak uses the peak of one device
   (``peaks.py``) times the number of devices the step runs on, and on CPU the measured
   peak of the whole machine, which simulated devices share.
4. Memory: XLA's memory analysis of the compiled step (arguments, outputs, temporaries),
   the device's peak bytes in use where the runtime reports it (GPU, TPU), and the
   process's resident memory on CPU.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import common  # benchmarks/common.py, beside this module
import jax
import jax.extend
import numpy as np
import peaks
from jax import monitoring

_PHASES = {
    "/jax/core/compile/jaxpr_trace_duration": "trace_s",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower_s",
    "/jax/core/compile/backend_compile_duration": "compile_s",
}
_recording: list[dict] = []  # the recorders now listening; appended by ``compile_times``


def _listen(event: str, seconds: float, **_) -> None:
    if event in _PHASES:
        for record in _recording:
            record[_PHASES[event]] += seconds


monitoring.register_event_duration_secs_listener(_listen)


class compile_times:
    """``with compile_times() as t: f(x)`` sums JAX's trace, lower and compile durations of
    everything compiled inside the block into ``t["trace_s"]`` etc."""

    def __enter__(self) -> dict:
        self.record = dict.fromkeys(_PHASES.values(), 0.0)
        _recording.append(self.record)
        return self.record

    def __exit__(self, *exc) -> None:
        _recording.remove(self.record)


def _abstract(tree):
    """Shapes and dtypes only, without shardings: the one-device version of the step."""
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype), tree)


def xla_analysis(fn: Callable, *args) -> dict:
    """XLA's cost and memory analysis of ``jax.jit(fn)`` compiled for ``args``' shapes on one
    device: FLOPs, bytes accessed, and the bytes of arguments, outputs and temporaries."""
    compiled = jax.jit(fn).lower(*_abstract(args)).compile()
    cost = compiled.cost_analysis()
    cost = (cost[0] if cost else {}) if isinstance(cost, list) else (cost or {})
    result = {"xla_flops": float(cost.get("flops", 0.0)) or None}
    result["bytes_accessed"] = float(cost.get("bytes accessed", 0.0)) or None
    memory = compiled.memory_analysis()
    if memory is not None:
        result["argument_bytes"] = int(memory.argument_size_in_bytes)
        result["output_bytes"] = int(memory.output_size_in_bytes)
        result["temp_bytes"] = int(memory.temp_size_in_bytes)
    return result


def _dot_flops(eqn) -> float:
    lhs, rhs = (v.aval.shape for v in eqn.invars[:2])
    (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = eqn.params["dimension_numbers"]
    free = lambda shape, skip: math.prod(s for d, s in enumerate(shape) if d not in skip)
    contract = math.prod(lhs[d] for d in lhs_contract)
    batch = math.prod(lhs[d] for d in lhs_batch)
    lhs_free = free(lhs, (*lhs_contract, *lhs_batch))
    return 2.0 * batch * lhs_free * free(rhs, (*rhs_contract, *rhs_batch)) * contract


def _conv_flops(eqn) -> float:
    out = eqn.outvars[0].aval.shape
    rhs = eqn.invars[1].aval.shape
    spec = eqn.params["dimension_numbers"]
    kernel = rhs[spec.rhs_spec[1]] * math.prod(rhs[d] for d in spec.rhs_spec[2:])
    # each output value: a dot of (input features per group) x (kernel window) terms
    return 2.0 * math.prod(out) * kernel / eqn.params["batch_group_count"]


def _jaxpr_flops(jaxpr) -> tuple[float, bool]:
    """(matmul and convolution FLOPs, whether a loop is inside)."""
    total, loops = 0.0, False
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "dot_general":
            total += _dot_flops(eqn)
        elif name == "conv_general_dilated":
            total += _conv_flops(eqn)
        elif name == "scan":
            flops, _ = _jaxpr_flops(eqn.params["jaxpr"].jaxpr)
            total, loops = total + eqn.params["length"] * flops, True
        elif name == "cond":
            total += max(_jaxpr_flops(b.jaxpr)[0] for b in eqn.params["branches"])
        else:  # jit, remat, custom_jvp/vjp, while (its body counted once): recurse
            loops = loops or name == "while"
            for param in eqn.params.values():
                for sub in param if isinstance(param, tuple | list) else (param,):
                    inner = getattr(sub, "jaxpr", sub)
                    if isinstance(inner, jax.extend.core.Jaxpr):
                        flops, inner_loops = _jaxpr_flops(inner)
                        total, loops = total + flops, loops or inner_loops
    return total, loops


def jaxpr_flops(fn: Callable, *args) -> tuple[float, bool]:
    """An analytic FLOP count of ``fn(*args)``: 2 per multiply-add of every matmul
    (``dot_general``) and convolution in its jaxpr, a scan's body times its length; and
    whether ``fn`` loops. Elementwise work is left out (the model-FLOPs convention), and a
    convolution's zero padding counted in."""
    return _jaxpr_flops(jax.make_jaxpr(fn)(*_abstract(args)).jaxpr)


def device_peak_bytes() -> int | None:
    """Peak bytes in use on the first device so far (GPU/TPU), or None where not reported."""
    stats = jax.devices()[0].memory_stats() if jax.devices()[0].platform != "cpu" else None
    return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None


def time_step(
    call: Callable,
    carry: tuple,
    inputs: tuple = (),
    *,
    cost_fn: Callable | None = None,
    warmup: int = 3,
    repeats: int = 5,
    min_round_s: float = 0.5,
    items_per_step: int | None = None,
    dtype: str = "float32",
    num_devices: int = 1,
) -> tuple[dict, tuple]:
    """Measure ``carry = call(*carry, *inputs)``; see the module docstring. Returns the
    figures and the last carry. ``cost_fn`` (default ``call``) is compiled once more, on one
    device, for XLA's analyses."""
    with compile_times() as phases:
        start = time.perf_counter()
        carry = jax.block_until_ready(call(*carry, *inputs))
        first_call_s = time.perf_counter() - start
    run = Runner(call, carry, inputs)
    run(warmup)
    rates, steps = interleaved({"step": run}, repeats, min_round_s)
    carry = run.carry
    result = {**phases, "first_call_s": first_call_s, "steps_per_round": steps["step"]}
    result.update(common.summarize_rates(rates["step"]))
    if items_per_step:
        result["items_per_s"] = items_per_step * result["steps_per_s"]

    analysis = xla_analysis(cost_fn or call, *carry, *inputs)
    analysis["analytic_flops"], loops = jaxpr_flops(cost_fn or call, *carry, *inputs)
    flops, source = analysis["xla_flops"], "xla cost analysis"
    if not flops or (loops and analysis["analytic_flops"] > flops):  # XLA: a loop body once
        flops, source = analysis["analytic_flops"], "analytic (jaxpr)"
    peak = peaks.peak_flops(dtype)
    on_cpu = jax.devices()[0].platform == "cpu"  # simulated CPU devices share the cores
    achieved = flops * result["steps_per_s"]
    result.update(
        flops_per_step=flops,
        flops_source=source,
        achieved_flops=achieved,
        peak_flops=peak["peak_flops"] and peak["peak_flops"] * (1 if on_cpu else num_devices),
        peak_source=peak["peak_source"],
        **analysis,
        resident_bytes=common.resident_bytes(),
        device_peak_bytes=device_peak_bytes(),
    )
    result["fraction_of_peak"] = achieved / result["peak_flops"] if result["peak_flops"] else None
    return result, carry


def summary_of(result: dict) -> str:
    """One line: steps/s (median, range), compile and FLOP/s figures."""
    text = (
        f"{result['steps_per_s']:9.2f} steps/s [{result['steps_per_s_min']:.2f}, "
        f"{result['steps_per_s_max']:.2f}]  compile {result['compile_s']:.2f} s "
        f"(trace {result['trace_s']:.2f}, lower {result['lower_s']:.2f})"
    )
    if result.get("achieved_flops"):
        text += f"  {result['achieved_flops'] / 1e9:8.1f} GFLOP/s"
    if result.get("fraction_of_peak"):
        text += f" ({100 * result['fraction_of_peak']:.1f}% of peak)"
    return text


class Runner:
    """``run(n)``: ``n`` more steps of ``carry = call(*carry, *inputs)``, blocking at the
    end; ``run.carry`` is the latest carry."""

    def __init__(self, call: Callable, carry: tuple, inputs: tuple = ()):
        self.call, self.carry, self.inputs = call, carry, inputs

    def __call__(self, n: int) -> None:
        carry = self.carry
        for _ in range(n):
            carry = self.call(*carry, *self.inputs)
        self.carry = jax.block_until_ready(carry)


def interleaved(runs: dict[str, Callable[[int], None]], repeats: int, min_round_s: float):
    """Rates of each ``run(n)`` (n steps, epochs...; already warm) over ``repeats`` rounds
    taken in turn, so a slow spell of a shared machine hits every one alike. Each run's
    round length doubles from 1 until a round lasts ``min_round_s``. Returns ({name: [n
    per second, one per round]}, {name: n per round})."""

    def timed(run, n: int) -> float:
        start = time.perf_counter()
        run(n)
        return time.perf_counter() - start

    steps = {}
    for name, run in runs.items():
        steps[name] = 1
        while timed(run, steps[name]) < min_round_s:
            steps[name] *= 2
    rates = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            rates[name].append(steps[name] / timed(run, steps[name]))
    return rates, steps
