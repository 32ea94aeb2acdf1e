"""Weight averaging: ``jaxdl.Optimizer(ema=...)`` and ``evaluate``/``predict(weights="ema")``."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxdl
from jaxdl import optim
from jaxdl.optimizer import EmaParamsState, ema_params, ema_tracker

DECAY = 0.8


def regression(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.1 * rng.normal(size=n)).astype(np.float32)
    return x, y[:, None]


def trainer_of(ema=DECAY, checkpoint=None, **options):
    optimizer = jaxdl.Optimizer("sgd", 0.05, options={"momentum": 0.9}, ema=ema, **options)
    model = jaxdl.models.MLP(features=(8, 1), activation="tanh")
    return jaxdl.Trainer(
        model, loss="mse", optimizer=optimizer, metrics=(), steps_per_call=1, checkpoint=checkpoint
    )


class Record(jaxdl.Callback):
    """The parameters and the kept average after every step, copied to the host."""

    def __init__(self):
        self.params, self.averages = [], []

    def on_train_batch_end(self, trainer, batch, steps):
        state = jax.device_get(trainer.state)
        self.params.append(state.params)
        self.averages.append(ema_params(state.opt_state, state.params))


def numpy_ema(history, decay):
    """optax.ema's debiased recurrence in float64: m_t = d m + (1 - d) p_t, m_0 = 0,
    divided by 1 - d**t."""
    m = jax.tree.map(lambda p: np.zeros(np.shape(p), np.float64), history[0])
    out = []
    for t, params in enumerate(history, start=1):
        step = lambda a, p: decay * a + (1 - decay) * np.asarray(p, np.float64)
        m = jax.tree.map(step, m, params)
        out.append(jax.tree.map(lambda a, t=t: a / (1 - decay**t), m))
    return out


def assert_trees_close(a, b, atol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x, np.float64), y, atol=atol, rtol=0)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """3 epochs of 4 steps with ema=DECAY, checkpointed, each step's parameters recorded."""
    x, y = regression()
    folder = tmp_path_factory.mktemp("ema")
    trainer, record = trainer_of(checkpoint=folder), Record()
    trainer.fit((x, y), epochs=3, batch_size=16, callbacks=[record], verbose=False)
    return trainer, record, folder


def test_the_average_is_the_numpy_recurrence_over_each_steps_params(run):
    x, y = regression()
    trainer, record, _ = run
    assert len(record.params) == 12
    expected = numpy_ema(record.params, DECAY)
    for kept, want in zip(record.averages, expected, strict=True):
        assert_trees_close(kept, want, atol=1e-6)
    # it is an average, not the parameters: they moved and the average lags behind
    last = jax.tree.leaves(record.params[-1])[0]
    assert not np.allclose(jax.tree.leaves(record.averages[-1])[0], last, atol=1e-4)

    # evaluate and predict with weights="ema" are those of a model holding the NumPy average
    other = trainer_of()
    other.init(x[:1])
    average = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), expected[-1])
    other.state = other.state.replace(params=average)
    np.testing.assert_allclose(
        trainer.evaluate((x, y), weights="ema")["loss"], other.evaluate((x, y))["loss"], rtol=1e-6
    )
    np.testing.assert_allclose(
        trainer.predict(x, weights="ema"), other.predict(x), rtol=1e-6, atol=1e-6
    )
    assert trainer.evaluate((x, y))["loss"] != trainer.evaluate((x, y), weights="ema")["loss"]


def test_the_average_is_saved_and_restored_with_the_checkpoint(run):
    x, _ = regression()
    trainer, _, folder = run
    restored = trainer_of(checkpoint=folder)
    restored.init(x[:1])
    restored.load_checkpoint()
    np.testing.assert_array_equal(
        restored.predict(x, weights="ema"), trainer.predict(x, weights="ema")
    )


def test_the_average_changes_no_update_and_without_it_the_chain_is_as_before(run):
    x, y = regression()
    with_ema, without = run[0], trainer_of(ema=None)
    without.fit((x, y), epochs=3, batch_size=16, verbose=False)
    for a, b in zip(jax.tree.leaves(with_ema.state.params), jax.tree.leaves(without.state.params)):
        np.testing.assert_array_equal(a, b)  # bit-identical: the average is only watched
    # with ema=None the transformation is the one jaxdl.optim builds, state for state
    tx = jaxdl.Optimizer("sgd", 0.05, options={"momentum": 0.9}).build(8, 4)
    plain = optim.make_optimizer("sgd", 0.05, momentum=0.9, total_steps=8, steps_per_epoch=4)
    params = without.state.params
    assert jax.tree.structure(tx.init(params)) == jax.tree.structure(plain.init(params))
    assert ema_params(without.state.opt_state, params) is None
    g = jax.tree.map(jnp.ones_like, params)
    updates, _ = tx.update(g, tx.init(params), params)
    expected, _ = plain.update(g, plain.init(params), params)
    for a, b in zip(jax.tree.leaves(updates), jax.tree.leaves(expected)):
        np.testing.assert_array_equal(a, b)


def test_only_updates_that_happen_are_averaged():
    """Under gradient accumulation the average moves once per update, not per batch."""
    x, y = regression()
    trainer, record = trainer_of(accumulate_steps=2), Record()
    trainer.fit((x, y), epochs=1, batch_size=16, callbacks=[record], verbose=False)
    states = [
        leaf
        for leaf in jax.tree.leaves(
            trainer.state.opt_state, is_leaf=lambda s: isinstance(s, EmaParamsState)
        )
        if isinstance(leaf, EmaParamsState)
    ]
    assert int(states[0].count) == 2  # 4 batches, 2 updates
    updated = record.params[1::2]  # the parameters after each real update
    assert_trees_close(record.averages[-1], numpy_ema(updated, DECAY)[-1], atol=1e-6)


def test_before_any_update_the_average_is_the_current_parameters():
    x, _ = regression()
    trainer = trainer_of()
    trainer.init(x[:1])
    np.testing.assert_array_equal(trainer.predict(x, weights="ema"), trainer.predict(x))


def test_tracker_alone_matches_a_hand_computation():
    tx = optax.chain(optax.sgd(0.5), ema_tracker(0.5))
    params = {"w": jnp.array([2.0])}
    state = tx.init(params)
    seen = []
    for _ in range(3):  # the gradient of w**2 / 2 is w: each step halves w
        updates, state = tx.update({"w": params["w"]}, state, params)
        params = optax.apply_updates(params, updates)
        seen.append(float(params["w"][0]))
    assert seen == [1.0, 0.5, 0.25]
    m = 0.0
    for p in seen:
        m = 0.5 * m + 0.5 * p
    assert m / (1 - 0.5**3) == pytest.approx(3 / 7)  # the starting 2.0 never counts
    np.testing.assert_allclose(state[1].params["w"], [3 / 7], rtol=1e-6)


def test_bad_settings_are_refused_by_name():
    with pytest.raises(ValueError, match=r"ema: expected a decay in \(0, 1\)"):
        jaxdl.Optimizer("adam", ema=1.0)
    with pytest.raises(TypeError, match="ema: expected a decay"):
        jaxdl.Optimizer("adam", ema="0.99")
    x, y = regression()
    trainer = trainer_of(ema=None)
    trainer.init(x[:1])
    with pytest.raises(ValueError, match="weights='ema': the optimizer keeps no average"):
        trainer.evaluate((x, y), weights="ema")
    with pytest.raises(ValueError, match="weights='ema'"):
        trainer.predict(x, weights="ema")
    with pytest.raises(ValueError, match="weights: expected 'current' or 'ema', got 'best'"):
        trainer.predict(x, weights="best")
