"""Custom tasks: your own loss (``CustomLoss``) or your own step (``CustomStep``) on the
Trainer's loop, strategies and checkpoints."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxdl
from jaxdl.train.custom import CustomLoss, CustomStep, call_model
from jaxdl.train.steps import apply_gradients, masked_mean


def digits(n=100):
    d = jaxdl.data.load("digits", seed=0)
    return d.train.x[:n], d.train.y[:n]


def assert_trees_close(a, b, atol):
    for p, q in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(p), np.asarray(q), atol=atol, rtol=0)


MODEL = jaxdl.models.MLP(features=(32, 10), dropout_rate=0.2)


def trainer_of(loss, **options):
    return jaxdl.Trainer(MODEL, loss=loss, optimizer=jaxdl.Optimizer("adam", 1e-2), **options)


@pytest.fixture(scope="module")
def built_in():
    """The reference: the built-in cross-entropy, 2 epochs of 100 examples in batches of 32
    (the last one padded), dropout on."""
    x, y = digits()
    trainer = trainer_of("cross_entropy", metrics=())
    history = trainer.fit((x, y), epochs=2, batch_size=32, verbose=False)
    return trainer, history


def cross_entropy(params, batch, rng, model):
    logits = call_model(model, params, batch["x"], rng)
    return optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"])


def test_a_custom_cross_entropy_trains_as_the_built_in_loss(built_in):
    """Per-example values are averaged over the real rows and the dropout key is the
    built-in step's."""
    x, y = digits()
    custom = trainer_of(CustomLoss(cross_entropy))
    history = custom.fit((x, y), epochs=2, batch_size=32, verbose=False)
    reference, expected = built_in
    assert_trees_close(custom.state.params, reference.state.params, atol=1e-6)
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=1e-6)
    # evaluation runs the function with rng=None: the model in inference mode
    np.testing.assert_allclose(
        custom.evaluate((x, y))["loss"], reference.evaluate((x, y))["loss"], rtol=1e-6
    )
    assert custom.config()["task"] == "custom_loss" and custom.config()["loss"] == "cross_entropy"


def test_an_extra_l2_term_is_one_hand_computed_sgd_step():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 2)).astype(np.float32)
    y = np.array([0, 2, 1, 2])
    lam, lr = 0.1, 0.5

    def penalised(params, batch, rng, model):
        logits = call_model(model, params, batch["x"], rng)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"])
        l2 = lam * sum(jnp.sum(w**2) for w in jax.tree.leaves(params) if w.ndim == 2)
        return masked_mean(ce, batch["mask"]) + l2, {"l2": l2}

    trainer = jaxdl.Trainer(
        jaxdl.models.MLP(features=(3,)),
        loss=CustomLoss(penalised, terms=("l2",)),
        optimizer=jaxdl.Optimizer("sgd", lr),
        metrics=["accuracy"],
    )
    trainer.init(x[:1])
    kernel, bias = (np.asarray(p, np.float64) for p in _kernel_bias(trainer.state.params))
    history = trainer.fit((x, y), epochs=1, batch_size=4, verbose=False)

    # by hand: softmax cross-entropy's gradient is (p - onehot) / B, the penalty's 2 lam W
    logits = x @ kernel + bias
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    delta = (p - np.eye(3)[y]) / len(x)
    new_kernel = kernel - lr * (x.T @ delta + 2 * lam * kernel)
    new_bias = bias - lr * delta.sum(0)
    got_kernel, got_bias = _kernel_bias(trainer.state.params)
    np.testing.assert_allclose(got_kernel, new_kernel, atol=1e-6)
    np.testing.assert_allclose(got_bias, new_bias, atol=1e-6)
    ce = -np.mean(np.log(p[np.arange(4), y]))
    l2 = lam * np.sum(kernel**2)
    assert history["l2"] == [pytest.approx(l2, rel=1e-6)]
    assert history["loss"] == [pytest.approx(ce + l2, rel=1e-6)]
    assert history["accuracy"] == [np.mean(logits.argmax(1) == y)]  # before the update
    assert list(history)[:3] == ["loss", "l2", "accuracy"]


def _kernel_bias(params):
    leaves = jax.tree.leaves(params)
    return (
        next(np.asarray(p) for p in leaves if p.ndim == 2),
        next(np.asarray(p) for p in leaves if p.ndim == 1),
    )


def ce_step(state, batch, rng):
    """A whole step by hand: cross-entropy of the real rows, one optimizer update."""

    def objective(params):
        logits = call_model(MODEL, params, batch["x"], rng)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"])
        return masked_mean(ce, batch["mask"]), ce

    (loss, ce), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
    return apply_gradients(state, grads, loss), {"loss": ce, "grad_norm": optax.tree.norm(grads)}


def test_a_custom_step_trains_as_the_built_in_step(built_in):
    x, y = digits()
    custom = trainer_of(CustomStep(ce_step, terms=("loss", "grad_norm")), steps_per_call=1)
    history = custom.fit((x, y), epochs=2, batch_size=32, verbose=False)
    reference, expected = built_in
    assert_trees_close(custom.state.params, reference.state.params, atol=1e-6)
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=1e-6)
    assert list(history)[:2] == ["loss", "grad_norm"]
    assert all(g > 0 for g in history["grad_norm"])
    assert int(custom.state.step) == 8
    # evaluation: the metrics the step reports for the state (its update discarded), here
    # with dropout on, so close to the inference-mode loss but not equal to it
    scores, inference = custom.evaluate((x, y)), reference.evaluate((x, y))
    assert scores["loss"] != inference["loss"]
    assert scores["loss"] == pytest.approx(inference["loss"], rel=0.3)


def test_what_does_not_fit_is_refused_by_name():
    with pytest.raises(TypeError, match="fn: expected a function fn"):
        CustomLoss("cross_entropy")
    with pytest.raises(ValueError, match="terms: 'loss' is reported already"):
        CustomLoss(lambda *a: 0.0, terms=("loss",))
    with pytest.raises(ValueError, match="terms: expected 'loss' among the names"):
        CustomStep(ce_step, terms=("grad_norm",))
    model = jaxdl.models.MLP(features=(4, 10))
    with pytest.raises(ValueError, match="CustomStep runs with strategy='single' or 'sharded'"):
        jaxdl.Trainer(model, loss=CustomStep(ce_step), strategy="pmap")
    with pytest.raises(ValueError, match="labelled=False, so metrics must be empty"):
        jaxdl.Trainer(model, loss=CustomLoss(lambda *a: 0.0, labelled=False), metrics=["accuracy"])
    # what the function returns is checked when the step is traced, before any compile
    x, y = digits(8)
    trainer = jaxdl.Trainer(model)
    state = trainer.init(x[:1])
    batch = {"x": x, "y": y, "mask": np.ones(8, np.float32)}

    def trace(task):
        train_step, _ = task.make_steps((), 10, None, model)
        jax.eval_shape(train_step, state, batch)

    wrong = CustomLoss(lambda p, b, r, m: (jnp.zeros(()), {"other": 1.0}), terms=("l2",))
    with pytest.raises(ValueError, match=r"fn: expected \(loss, aux\) with aux holding the terms"):
        trace(wrong)
    with pytest.raises(
        ValueError, match=r"must be a scalar or one value per example, shape \(8,\)"
    ):
        trace(CustomLoss(lambda p, b, r, m: jnp.zeros((3,))))
    with pytest.raises(ValueError, match=r"expected metrics holding \['loss'\] \(terms=\)"):
        trace(CustomStep(lambda state, b, r: (state, {"cost": 0.0})))
    with pytest.raises(TypeError, match="must have the structure of the state it was given"):
        trace(CustomStep(lambda state, b, r: (state.replace(params={}), {"loss": 0.0})))
    norm = jaxdl.models.MLP(features=(4, 10), batch_norm=True)
    trainer = jaxdl.Trainer(norm, loss=CustomLoss(lambda *a: 0.0))
    with pytest.raises(ValueError, match="keeps batch statistics; write the step with"):
        trainer.init(x[:1])


SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    sys.path.insert(0, sys.argv[2])
    from test_custom_step import CustomLoss, CustomStep, ce_step, cross_entropy, digits, trainer_of

    x, y = digits()

    def run(task, strategy, epochs=2, checkpoint=None, resume=False):
        trainer = trainer_of(task, metrics=["accuracy"], strategy=strategy, checkpoint=checkpoint)
        history = trainer.fit((x, y), epochs=epochs, batch_size=32, verbose=False, resume=resume)
        params = [np.asarray(p).tolist() for p in jax.tree.leaves(trainer.state.params)]
        return {"params": params, "history": history}

    step = CustomStep(ce_step, terms=("loss", "grad_norm"))
    out = {"devices": jax.device_count()}
    out["stopped"] = run(step, "sharded", epochs=1, checkpoint=sys.argv[1])  # after one epoch
    out["resumed"] = run(step, "sharded", epochs=2, checkpoint=sys.argv[1], resume=True)
    out["loss_pmap"] = run(CustomLoss(cross_entropy), "pmap")
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def device_runs(tmp_path_factory):
    """The runs of SCRIPT on 4 simulated CPU devices (the count is fixed when JAX starts,
    hence a process of its own, as tests/train/test_parallel.py does)."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    folder = tmp_path_factory.mktemp("custom_step") / "run"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(folder), os.path.dirname(__file__)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if out["devices"] < 2:
        pytest.skip("no several CPU devices in this process")
    return out


def assert_as_built_in(run: dict, built_in, tol=1e-5):
    """The parameters and losses of the one-device run of the built-in loss."""
    reference, history = built_in
    for p, q in zip(run["params"], jax.tree.leaves(reference.state.params), strict=True):
        np.testing.assert_allclose(p, np.asarray(q), atol=tol)
    np.testing.assert_allclose(run["history"]["loss"], history["loss"], rtol=tol)


def test_a_custom_step_runs_sharded_and_resumes_from_its_checkpoint(device_runs, built_in):
    """Stopped after one epoch and resumed by a new trainer, under "sharded" on 4 devices
    (the last batch's 4 rows all on the first): the numbers of the uninterrupted one-device
    run, the metrics merged over the devices."""
    stopped, resumed = device_runs["stopped"]["history"], device_runs["resumed"]
    assert list(resumed["history"])[:3] == ["loss", "grad_norm", "accuracy"]
    np.testing.assert_allclose(stopped["loss"], built_in[1]["loss"][:1], rtol=1e-5)
    assert_as_built_in(resumed, built_in)
    pmap = device_runs["loss_pmap"]["history"]  # the same inference-mode accuracy, pmapped
    np.testing.assert_allclose(resumed["history"]["accuracy"], pmap["accuracy"], rtol=1e-5)
    assert stopped["accuracy"] == resumed["history"]["accuracy"][:1]


def test_a_custom_loss_gives_the_one_device_numbers_under_pmap(device_runs, built_in):
    """Each device computes the function on its slice of the batch."""
    assert_as_built_in(device_runs["loss_pmap"], built_in)
