"""Strategies: every one gives the single-device numbers, on 8 simulated CPU devices.

The device count is fixed when JAX starts, so the runs happen in a process of their own
(tests/scripts/strategies.py) and these tests read its JSON.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from jaxdl import parallel as jaxdl_parallel
from jaxdl.train import parallel

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(__file__)), "scripts", "strategies.py")
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
    return run_strategies("mlp,cnn_batch_norm,zoo,errors")


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


def assert_zoo_matches_one_device(runs: dict, strategies: tuple[str, ...]):
    from jaxdl.models import ZOO

    expected = {s.name for s in ZOO if s.inputs != "graph"} - {"resnet18", "resnet50"}
    assert set(runs) == expected  # a model is covered the moment it is listed
    for model, differences in runs.items():
        assert set(strategies) >= set(differences) >= {"sharded"}, model
        for strategy, difference in differences.items():
            assert difference < 1e-5, (model, strategy, difference)


def test_every_model_of_the_zoo_gives_its_one_device_outputs_sharded(quick_runs):
    assert_zoo_matches_one_device(quick_runs["zoo"], ("sharded",))


@pytest.mark.slow  # every ZOO model compiled under pmap too: about a minute
def test_every_model_of_the_zoo_gives_its_one_device_outputs_under_pmap():
    assert_zoo_matches_one_device(run_strategies("zoo,pmap")["zoo"], ("sharded", "pmap"))


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_together_as_one(tmp_path):
    """Two real processes (jax.distributed, CPU collectives) train one model over their
    two devices; both end with the same parameters, those of a one-process run. Fed by a
    streaming Pipeline, each process reads only its own half of the examples, and the
    global batches assembled from the halves train as the arrays in that order do."""
    scripts = os.path.join(os.path.dirname(os.path.dirname(__file__)), "scripts")
    port = str(free_port())
    env = {**os.environ, "PYTHONPATH": scripts + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("XLA_FLAGS", None)
    outs = [tmp_path / f"process{i}.json" for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, os.path.join(scripts, "two_processes.py"), str(i), port, str(out)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i, out in enumerate(outs)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    runs = [json.loads(out.read_text()) for out in outs]
    assert [r["process_index"] for r in runs] == [0, 1]
    for run in runs:
        assert (run["process_count"], run["devices"], run["local_devices"]) == (2, 2, 1)
        assert run["strategy"] == "sharded"  # the default with more than one device
    assert runs[0]["params"] == runs[1]["params"]  # bit for bit
    assert runs[0]["history"] == runs[1]["history"]

    sys.path.insert(0, scripts)
    try:
        from tests_data import digits_subset
    finally:
        sys.path.remove(scripts)
    import jax

    from jaxdl import Trainer
    from jaxdl.models import MLP

    x, y = digits_subset()
    alone = Trainer(MLP(features=(32, 10)), seed=3, optimizer="adam", learning_rate=3e-3)
    history = alone.fit((x, y), epochs=3, batch_size=32, verbose=False)
    np.testing.assert_allclose(runs[0]["history"]["loss"], history["loss"], rtol=1e-5)
    for shared, own in zip(runs[0]["params"], jax.tree.leaves(alone.state.params)):
        np.testing.assert_allclose(shared, np.asarray(own).ravel(), rtol=1e-4, atol=1e-6)

    # the stream in the source's order (Grain's shuffle is not the arrays' order)
    in_order = Trainer(MLP(features=(32, 10)), seed=3, optimizer="adam", learning_rate=3e-3)
    history = in_order.fit((x, y), epochs=3, batch_size=32, shuffle=False, verbose=False)
    assert runs[0]["stream_params"] == runs[1]["stream_params"]
    for epoch in range(3):  # each process read its own half of every epoch's examples
        read = [set(run["read"][epoch]) for run in runs]
        assert not read[0] & read[1] and read[0] | read[1] == set(range(len(x)))
        assert len(read[0]) == len(read[1]) == len(x) // 2
    np.testing.assert_allclose(runs[0]["stream_history"]["loss"], history["loss"], rtol=1e-5)
    for streamed, own in zip(runs[0]["stream_params"], jax.tree.leaves(in_order.state.params)):
        np.testing.assert_allclose(streamed, np.asarray(own).ravel(), rtol=1e-4, atol=1e-6)


def test_initialize_without_a_coordinator_is_one_process(monkeypatch):
    for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "TPU_NAME", "SLURM_NTASKS"):
        monkeypatch.delenv(name, raising=False)
    info = jaxdl_parallel.initialize()
    assert (info.process_index, info.process_count) == (0, 1)
    assert info.local_devices == info.devices


def test_initialize_reads_a_bad_environment_clearly(monkeypatch):
    monkeypatch.setenv("JAX_NUM_PROCESSES", "two")
    with pytest.raises(ValueError, match="JAX_NUM_PROCESSES: expected an integer, got 'two'"):
        jaxdl_parallel.initialize()
