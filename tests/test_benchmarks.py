"""The benchmark harness measures what it says: FLOP counts against hand-worked ones, compile
time apart from steady state, peaks from the table, and a regression check that flags a
slowdown beyond noise and nothing else."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
sys.path.insert(0, BENCHMARKS)

import compare  # noqa: E402
import gemm  # noqa: E402
import harness  # noqa: E402
import parts  # noqa: E402
import peaks  # noqa: E402
import run  # noqa: E402


def mlp_loss(w, x):
    for _ in range(3):
        x = jnp.tanh(x @ w)
    return x.sum()


def conv(images, kernel, groups=1):
    return jax.lax.conv_general_dilated(
        images, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=groups,
    )  # fmt: skip


def test_matmul_flops_of_a_gradient_by_hand_and_by_xla():
    w, x = jnp.ones((256, 256)), jnp.ones((64, 256))
    # forward: 3 matmuls; backward: 3 for dW and 2 for dx (the input's dx is not needed)
    by_hand = 8 * 2 * 64 * 256 * 256
    flops, loops = harness.jaxpr_flops(jax.grad(mlp_loss), w, x)
    assert flops == by_hand and not loops
    xla = harness.xla_analysis(jax.grad(mlp_loss), w, x)["xla_flops"]
    assert by_hand <= xla <= 1.01 * by_hand  # XLA adds the elementwise work


def test_convolution_flops_by_hand():
    images, kernel = jnp.ones((2, 16, 16, 4)), jnp.ones((3, 3, 4, 8))
    assert harness.jaxpr_flops(conv, images, kernel)[0] == 2 * (2 * 16 * 16 * 8) * (3 * 3 * 4)
    grouped = jnp.ones((3, 3, 1, 8))  # 4 groups: each output sees 1 input channel
    flops = harness.jaxpr_flops(lambda a, k: conv(a, k, 4), images, grouped)[0]
    assert flops == 2 * (2 * 16 * 16 * 8) * (3 * 3 * 1)


def test_a_scan_counts_its_body_times_its_length_where_xla_counts_it_once():
    w, x = jnp.ones((128, 128)), jnp.ones((32, 128))

    def scanned(w, x):
        return jax.lax.scan(lambda c, _: (jnp.tanh(c @ w), None), x, None, length=10)[0]

    body = 2 * 32 * 128 * 128
    assert harness.jaxpr_flops(scanned, w, x) == (10 * body, True)
    assert harness.xla_analysis(scanned, w, x)["xla_flops"] < 2 * body

    step = jax.jit(lambda w, x: (w, scanned(w, x)))
    result, _ = harness.time_step(step, (w, x), repeats=2, min_round_s=0.01)
    assert result["flops_source"] == "analytic (jaxpr)"
    assert result["flops_per_step"] == 10 * body


def test_time_step_separates_compilation_from_steady_state():
    w, x = jnp.full((256, 256), 1e-3), jnp.ones((64, 256))
    # a constant of this run's own: a program no persistent compilation cache holds yet
    salt = float(np.random.default_rng().integers(1, 2**20))

    @jax.jit
    def step(w, calls, x):
        return w - 1e-3 * jax.grad(mlp_loss)(w, x) + jnp.asarray(salt, w.dtype) * 0.0, calls + 1

    carry = (w, jnp.zeros((), jnp.int32))
    result, (_, calls) = harness.time_step(step, carry, (x,), repeats=3, min_round_s=0.05)
    # each phase was recorded (a phase that did not happen records 0, as below)
    assert result["compile_s"] > 0 and result["trace_s"] > 0 and result["lower_s"] > 0
    assert result["steps_per_s_min"] <= result["steps_per_s"] <= result["steps_per_s_max"]
    assert result["flops_source"] == "xla cost analysis"
    assert result["achieved_flops"] == pytest.approx(
        result["flops_per_step"] * result["steps_per_s"]
    )
    assert result["argument_bytes"] == (256 * 256 + 1 + 64 * 256) * 4
    # the carry went through every call: the first, 3 warm-up, rounds of 1, 2, 4 .. S steps
    # while finding the round length S, then 3 rounds of S
    s = result["steps_per_round"]
    assert int(calls) == 1 + 3 + (2 * s - 1) + 3 * s
    # the same function again: already compiled, so no compile time is recorded
    again, _ = harness.time_step(step, carry, (x,), repeats=2, min_round_s=0.01)
    assert again["compile_s"] == 0.0 and again["trace_s"] == 0.0


def test_published_peaks():
    h100 = "NVIDIA H100 80GB HBM3"
    assert peaks.published_peak(h100, "bfloat16") == pytest.approx(989.4e12)
    # JAX's default precision runs float32 matmuls as TF32 on Hopper; "highest" does not
    assert peaks.published_peak(h100, "float32") == pytest.approx(494.7e12)
    assert peaks.published_peak(h100, "float32", "highest") == pytest.approx(66.9e12)
    assert peaks.published_peak("NVIDIA H100 PCIe", "bfloat16") == pytest.approx(756e12)
    assert peaks.published_peak("TPU v5 lite", "bfloat16") == pytest.approx(197e12)
    assert peaks.published_peak("TPU v5p", "bfloat16") == pytest.approx(459e12)
    assert peaks.published_peak("NVIDIA A10G", "bfloat16") is None  # not in the table


def rows(case, rate, spread, compile_s=1.0):
    return {
        "suite": "zoo", "case": case, "strategy": "single", "steps_per_s": rate,
        "steps_per_s_min": rate - spread, "steps_per_s_max": rate + spread,
        "compile_s": compile_s,
    }  # fmt: skip


def write_jsonl(path, items):
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in items)
    return str(path)


def test_compare_flags_a_slowdown_beyond_noise_only(tmp_path, capsys):
    old = write_jsonl(tmp_path / "old.jsonl", [
        rows("a", 100, 2), rows("b", 100, 20), rows("c", 100, 2), rows("d", 100, 2, 1.0),
    ])  # fmt: skip
    new = write_jsonl(tmp_path / "new.jsonl", [
        rows("a", 80, 2),   # 20% slower, ranges apart: flagged
        rows("b", 85, 20),  # 15% slower, but inside the noise of the repeats
        rows("c", 130, 2),  # faster
        rows("d", 100, 2, 1.4),  # compile 40% longer: within the 50% of a single measurement
    ])  # fmt: skip
    assert compare.main([old, new]) == 1
    out = capsys.readouterr().out
    flagged = [line.split()[0] for line in out.splitlines() if "SLOWER" in line]
    assert flagged == ["zoo/a/single"]
    assert "1 figure(s) slower" in out
    worse = write_jsonl(tmp_path / "worse.jsonl", [rows("d", 100, 2, 1.6)])
    assert compare.main([old, worse]) == 1  # compile time 60% longer
    assert compare.main([old, old]) == 0


def test_run_writes_rows_with_the_machine_and_compares_clean(tmp_path):
    out = str(tmp_path / "results")
    args = ["--suite", "zoo", "--models", "mlp", "--sizes", "small", "--repeats", "2",
            "--min-round-s", "0.02", "--out", out]  # fmt: skip
    assert run.main(args) == 0
    [row] = [json.loads(line) for line in open(os.path.join(out, "zoo.jsonl"))]
    assert row["case"] == "mlp/small" and row["strategy"] == "single"
    for key in ("cpu", "cores", "jax", "jaxlib", "flax", "optax", "date", "command"):
        assert row[key]
    assert row["items_per_s"] == pytest.approx(64 * row["steps_per_s"])  # batch 64
    assert row["peak_source"] == "measured cpu probe" and 0 < row["fraction_of_peak"] < 2
    table = open(os.path.join(out, "zoo.md")).read()
    assert "| mlp/small | single |" in table and "- jax: " in table
    assert compare.main([out, out]) == 0


def test_parts_time_each_part_of_the_step():
    # times are measured, never compared, in tests: under load their order is noise
    ms = parts.measure("mlp", "jax", repeats=2, min_round_s=0.02)
    assert set(ms) == {"forward", "gradient", "step"}
    assert all(0 < value < float("inf") for value in ms.values())


def test_gemm_times_the_sum_of_the_products_it_names():
    x, w = gemm.operands(8, 16, 4, count=3)
    expected = sum(x[t].astype("float64") @ w for t in range(3))
    assert jnp.allclose(gemm.summed_products(jnp.asarray(x), jnp.asarray(w)), expected, atol=1e-4)
    row = gemm.measure("mlp", 8, 16, 4, count=3, repeats=1, min_round_s=0.01)
    assert (row["m"], row["k"], row["n"]) == (8, 16, 4)
    assert row["xla_gflops"] > 0
    if "torch_gflops" in row:  # the ratio is the two rates, XLA's default over PyTorch's
        assert row["xla_to_torch"] == pytest.approx(row["xla_gflops"] / row["torch_gflops"])


@pytest.mark.slow
def test_the_zoo_runs_every_strategy_on_simulated_devices(tmp_path):
    script = os.path.join(BENCHMARKS, "run.py")
    command = [sys.executable, script, "--suite", "zoo", "--models", "mlp", "--sizes", "small",
               "--host-devices", "4", "--repeats", "2", "--min-round-s", "0.02",
               "--out", str(tmp_path)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    found = [json.loads(line) for line in open(tmp_path / "zoo.jsonl")]
    assert [r["strategy"] for r in found] == ["single", "pmap", "sharded", "fsdp"]
    assert [r["devices"] for r in found] == [1, 4, 4, 4]
    # the same global step on every strategy: the same FLOPs
    assert len({r["flops_per_step"] for r in found}) == 1
