"""Optimizers, schedules, penalties and clipping against their update rules by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxdl import optim

PARAMS = {"w": jnp.array([[1.0, -2.0], [0.5, -0.25]]), "b": jnp.array([0.3, -0.1])}
GRADS = {"w": jnp.array([[0.1, 0.2], [-0.3, 0.4]]), "b": jnp.array([1.0, -1.0])}


def run(tx, steps=2, grads=GRADS):
    state = tx.init(PARAMS)
    params = PARAMS
    history = []
    for _ in range(steps):
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        history.append(params)
    return history


def close(a, b, **kw):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7, **kw), a, b)


def test_sgd_momentum_nesterov_by_hand():
    lr, mu = 0.1, 0.9
    g = GRADS
    p1, p2 = run(optim.make_optimizer("sgd", lr))
    close(p1, jax.tree.map(lambda p, g: p - lr * g, PARAMS, g))
    close(p2, jax.tree.map(lambda p, g: p - 2 * lr * g, PARAMS, g))
    # heavy ball: v1 = g, v2 = mu g + g
    p1, p2 = run(optim.make_optimizer("momentum", lr))
    close(p2, jax.tree.map(lambda p, g: p - lr * g - lr * (1 + mu) * g, PARAMS, g))
    # Nesterov: step = g + mu v_t, with v1 = g, v2 = (1 + mu) g
    p1, p2 = run(optim.make_optimizer("nesterov", lr))
    close(p1, jax.tree.map(lambda p, g: p - lr * (1 + mu) * g, PARAMS, g))
    expected2 = jax.tree.map(
        lambda p, g: p - lr * (1 + mu) * g - lr * (g + mu * (1 + mu) * g), PARAMS, g
    )
    close(p2, expected2)


def test_adam_first_steps_by_hand():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    p1, p2 = run(optim.make_optimizer("adam", lr))
    g = GRADS
    # step 1: m_hat = g, v_hat = g^2 -> update = -lr * g / (|g| + eps)
    close(p1, jax.tree.map(lambda p, g: p - lr * g / (np.abs(g) + eps), PARAMS, g))
    # constant gradient: m_hat and v_hat stay g and g^2, so the step repeats
    close(p2, jax.tree.map(lambda p, g: p - 2 * lr * g / (np.abs(g) + eps), PARAMS, g))
    del b1, b2


def test_adagrad_and_rmsprop_by_hand():
    lr = 0.1
    (p1,) = run(optim.make_optimizer("adagrad", lr), steps=1)
    # optax adagrad: accumulator starts at 0.1, g / sqrt(acc + g^2 + eps)
    close(p1, jax.tree.map(lambda p, g: p - lr * g / np.sqrt(0.1 + g**2 + 1e-7), PARAMS, GRADS))
    (p1,) = run(optim.make_optimizer("rmsprop", lr), steps=1)
    # nu = 0.1 g^2 (decay 0.9), step = g / (sqrt(nu) + eps)
    close(p1, jax.tree.map(lambda p, g: p - lr * g / (np.sqrt(0.1 * g**2) + 1e-8), PARAMS, GRADS))


def test_adamw_decays_weights():
    lr, wd = 0.01, 0.1
    (p1,) = run(optim.make_optimizer("adamw", lr, weight_decay=wd), steps=1)
    close(p1, jax.tree.map(lambda p, g: p - lr * (g / (np.abs(g) + 1e-8) + wd * p), PARAMS, GRADS))


def test_penalty_gradients_equal_autodiff_of_penalties():
    l1, l2 = 0.01, 0.05
    tx = optim.add_penalty_gradients(l1, l2)
    updates, _ = tx.update(GRADS, tx.init(PARAMS), PARAMS)
    penalty = lambda p: l1 * optim.l1_penalty(p) + l2 * optim.l2_penalty(p)
    expected = jax.tree.map(jnp.add, GRADS, jax.grad(penalty)(PARAMS))
    close(updates, expected)
    # biases carry no penalty; by hand for the kernel entry w[0,0] = 1: 0.1 + 0.01 + 2*0.05*1
    np.testing.assert_allclose(updates["b"], GRADS["b"])
    np.testing.assert_allclose(updates["w"][0, 0], 0.1 + 0.01 + 0.1, rtol=1e-6)
    assert float(optim.l1_penalty(PARAMS)) == pytest.approx(3.75)
    assert float(optim.l2_penalty(PARAMS)) == pytest.approx(1 + 4 + 0.25 + 0.0625)


def test_clip_by_global_norm():
    tx = optim.make_optimizer("sgd", 1.0, clip_norm=0.5)
    (p1,) = run(tx, steps=1)
    norm = np.sqrt(sum(float(jnp.sum(g**2)) for g in jax.tree.leaves(GRADS)))
    close(p1, jax.tree.map(lambda p, g: p - g * 0.5 / norm, PARAMS, GRADS))


def test_schedules_match_formulas():
    lr, total = 0.1, 100
    s = optim.make_schedule("exponential", lr, total, decay_rate=0.5, decay_steps=10)
    assert float(s(20)) == pytest.approx(lr * 0.25)
    s = optim.make_schedule("step", lr, total, boundaries=(0.5, 0.75), step_factor=0.1)
    assert [float(s(t)) for t in (0, 49, 50, 74, 75, 99)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    )
    s = optim.make_schedule("cosine", lr, total)
    for t in (0, 25, 50, 100):
        assert float(s(t)) == pytest.approx(lr * 0.5 * (1 + np.cos(np.pi * t / total)), abs=1e-7)
    s = optim.make_schedule("warmup_cosine", lr, total, warmup_steps=10)
    assert float(s(0)) == 0.0
    assert float(s(5)) == pytest.approx(0.05)
    assert float(s(10)) == pytest.approx(lr)
    assert float(s(55)) == pytest.approx(lr * 0.5 * (1 + np.cos(np.pi * 45 / 90)))
    assert float(optim.make_schedule("constant", lr)(1000)) == pytest.approx(lr)


def test_plateau_lowers_the_rate_after_patience_epochs():
    tx = optim.make_optimizer(
        "sgd", 1.0, schedule="plateau", steps_per_epoch=2, plateau_patience=2, plateau_factor=0.5
    )
    params = {"w": jnp.zeros(())}
    state = tx.init(params)
    sizes = []
    for _ in range(10):  # 5 epochs of 2 steps with a loss that never improves
        updates, state = tx.update({"w": jnp.ones(())}, state, params, value=jnp.asarray(1.0))
        sizes.append(-float(updates["w"]))
    # best after epoch 1; epochs 2 and 3 do not improve, so the last step of epoch 3 halves
    assert sizes[:5] == pytest.approx([1.0] * 5)
    assert sizes[5:9] == pytest.approx([0.5] * 4)
    assert sizes[9] == pytest.approx(0.25)  # two more epochs without improvement


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="unknown optimizer 'adamm'.*adam, adamw"):
        optim.make_optimizer("adamm")
    with pytest.raises(ValueError, match="unknown schedule.*warmup_cosine"):
        optim.make_schedule("linear", 0.1, 10)


def test_optax_transformation_passes_through():
    tx = optax.lamb(1e-3)
    assert optim.get(tx) is tx
