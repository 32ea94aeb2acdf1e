"""Strategies: every one gives the single-device numbers, on 8 simulated CPU devices.

The device count is fixed when JAX starts, so the runs happen in a process of their own
(tests/scripts/strategies.py) and these tests read its JSON.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxdl.train import parallel

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "strategies.py")
STRATEGIES = ("pmap", "sharded", "fsdp")


def run_strategies(parts: str) -> dict:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    done = subprocess.run(
        [sys.executable, SCRIPT, parts], env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert out["devices"] == 8
    return out


@pytest.fixture(scope="module")
def quick_runs():
    return run_strategies("mlp,cnn_batch_norm,errors")


def assert_same_as_single(runs: dict, exempt: tuple[str, ...] = ()):
    single = np.asarray(runs["single"]["losses"])
    assert len(single) == 20 and np.all(np.isfinite(single))
    assert single[-1] < single[0]  # it trained
    for name in STRATEGIES:
        losses = np.asarray(runs[name]["losses"])
        np.testing.assert_allclose(losses, single, rtol=1e-5, err_msg=name)
        for path, diff in runs[name]["param_diff"].items():
            if path not in exempt:
                assert diff < 1e-5, (name, path, diff)


@pytest.mark.parametrize("model", ["mlp", "cnn_batch_norm"])
def test_every_strategy_gives_the_single_device_losses(quick_runs, model):
    assert_same_as_single(quick_runs["steps"][model])


def test_a_batch_that_does_not_divide_over_the_devices_is_refused(quick_runs):
    for name in ("pmap", "sharded"):
        message = quick_runs["errors"][name]
        assert "batch_size=30 does not divide over the 8 devices" in message
        assert "multiple of 8" in message


@pytest.mark.slow
def test_transformer_with_dropout_and_trainer_fits_agree_across_strategies():
    out = run_strategies("transformer_dropout,fit")
    # the attention's key bias has a gradient of exactly zero (softmax ignores a shift of
    # every key), so Adam turns rounding noise there into steps of any size: not compared
    key_bias = "['block0']['attention']['qkv']['bias']"
    assert_same_as_single(out["steps"]["transformer_dropout"], exempt=(key_bias,))
    fits = out["fit"]
    base = fits["single/epoch"]
    for name, run in fits.items():
        for metric, values in run["history"].items():
            np.testing.assert_allclose(values, base["history"][metric], rtol=1e-5, err_msg=name)
        for metric, value in run["evaluate"].items():
            np.testing.assert_allclose(value, base["evaluate"][metric], rtol=1e-5, err_msg=name)
        np.testing.assert_allclose(run["predictions"], base["predictions"], atol=1e-5)
        for p, q in zip(run["params"], base["params"]):
            np.testing.assert_allclose(p, q, atol=1e-5, err_msg=name)


def test_strategy_names():
    assert isinstance(parallel.get_strategy("auto"), parallel.Single)  # one device here
    assert parallel.get_strategy("fsdp").fsdp
    with pytest.raises(ValueError, match="strategy: expected one of 'auto', 'single'"):
        parallel.get_strategy("data_parallel")


def test_fsdp_shards_the_largest_dimension_that_divides():
    strategy = parallel.Sharded(fsdp=True)
    strategy.num_devices = 8  # the rule alone, without 8 devices
    assert strategy._spec((64, 256)) == parallel.P(None, "data")
    assert strategy._spec((256, 60)) == parallel.P("data", None)
    assert strategy._spec((30, 50)) == parallel.P()  # nothing divides
    assert strategy._spec((16,)) == parallel.P()  # too small to be worth it
