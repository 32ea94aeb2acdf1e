"""The learning-rate range test: on a quadratic whose stable range is known, and the trainer
left exactly as it was."""

import math

import jax
import numpy as np
import pytest
from matplotlib.figure import Figure

import jaxdl
from jaxdl.train.lr_finder import LRFinderResult, find_learning_rate

N, FEATURES = 64, 3
MIN_LR, MAX_LR, STEPS = 1e-4, 100.0, 100


def isotropic_regression():
    """Features whose columns and the constant column are orthonormal (times sqrt(N)): the
    mean squared error of a linear model then has the Hessian 2 I (parameters and bias),
    so gradient descent is stable exactly for rates below 2 / 2 = 1."""
    rng = np.random.default_rng(0)
    basis = np.concatenate([np.ones((N, 1)), rng.normal(size=(N, FEATURES))], axis=1)
    q, _ = np.linalg.qr(basis)
    x = (q[:, 1:] * np.sqrt(N) * np.sign(q[0, 0])).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.3 * rng.normal(size=N)
    return x, y.astype(np.float32)[:, None]


def linear_trainer(**options):
    model = jaxdl.models.MLP(features=(1,))
    return jaxdl.Trainer(model, loss="mse", optimizer=jaxdl.Optimizer("sgd", 0.1), **options)


def test_on_a_quadratic_the_losses_are_gradient_descent_and_the_suggestion_is_stable():
    x, y = isotropic_regression()
    a = np.concatenate([x, np.ones((N, 1))], axis=1).astype(np.float64)
    hessian = 2 * a.T @ a / N
    bound = 2 / np.linalg.eigvalsh(hessian).max()  # gradient descent diverges above it
    assert bound == pytest.approx(1.0)

    trainer = linear_trainer()
    result = trainer.find_learning_rate(
        (x, y), min_lr=MIN_LR, max_lr=MAX_LR, num_steps=STEPS, batch_size=N
    )
    assert isinstance(result, LRFinderResult) and result.method == "steepest"

    # the rates grow exponentially from min_lr by a fixed ratio per step
    q = (MAX_LR / MIN_LR) ** (1 / (STEPS - 1))
    steps = len(result.learning_rates)
    np.testing.assert_allclose(result.learning_rates, MIN_LR * q ** np.arange(steps), rtol=1e-12)

    # a naive reference: full-batch gradient descent on the quadratic in float64, the loss
    # of each step taken before its update (the initial parameters are the trainer's own)
    trainer.init(x[:1])
    initial = jax.tree.leaves(trainer.state.params)
    bias = next(np.asarray(p, np.float64) for p in initial if np.ndim(p) == 1)
    kernel = next(np.asarray(p, np.float64) for p in initial if np.ndim(p) == 2)
    theta = np.concatenate([kernel[:, 0], bias])
    expected = []
    for lr in result.learning_rates:
        residual = a @ theta - y[:, 0]
        expected.append(np.mean(residual**2))
        theta = theta - lr * (2 / N) * a.T @ residual
    raw = result.raw_losses
    finite = np.isfinite(raw)
    np.testing.assert_allclose(raw[finite][:-5], np.asarray(expected)[finite][:-5], rtol=1e-4)

    # below the bound the loss never rises; past it, it blows up and the test stops early
    rates = result.learning_rates
    below = np.flatnonzero(rates[:-1] < bound)
    tolerance = 1e-6 * raw[0]
    assert np.all(raw[below + 1] <= raw[below] + tolerance)
    assert result.stopped_early and bound < rates[-1] < MAX_LR
    assert not np.isfinite(raw[-1]) or raw[-1] > 4 * np.nanmin(raw)

    # the suggestion lies on the steep fall, well inside the stable range: for a loss
    # floor + E0 * prod(1 - 2 lr_s)**2 the fall against log(lr) is steepest near
    # lr = (q - 1) / 4 (there 4 * sum(lr_s) ~ 4 lr / (q - 1) = 1), a fixed fraction of the
    # bound set by the ratio per step
    theory = (q - 1) / 4 * bound
    assert result.suggestion < bound / 10
    assert theory / 2 < result.suggestion < theory * 2

    minimum = find_learning_rate(
        trainer,
        (x, y),
        min_lr=MIN_LR,
        max_lr=MAX_LR,
        num_steps=STEPS,
        batch_size=N,
        suggest="minimum",
    )
    low = np.nanargmin(minimum.losses)
    assert minimum.suggestion == pytest.approx(minimum.learning_rates[low] / 10)


def leaves(tree):
    """Every array of ``tree`` on the host, a PRNG key as its raw bits."""
    is_key = lambda a: (
        isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)
    )
    bits = jax.tree.map(lambda a: jax.random.key_data(a) if is_key(a) else a, tree)
    return jax.tree.leaves(jax.device_get(bits))


def key_data(state):
    return np.asarray(jax.random.key_data(state.rng))


def test_the_trainer_is_left_exactly_as_it_was():
    d = jaxdl.data.load("digits", seed=0)
    data = (d.train.x[:256], d.train.y[:256])

    def make():
        model = jaxdl.models.MLP(features=(32, 10), dropout_rate=0.2)
        return jaxdl.Trainer(model, optimizer=jaxdl.Optimizer("adam", 1e-3), seed=3)

    tested, twin = make(), make()
    result = tested.find_learning_rate(data, num_steps=30, batch_size=32)
    assert len(result.learning_rates) >= 10
    # a fresh trainer stays fresh: fit then makes the parameters it would have made
    assert tested.state is None and tested.input_shape is None and tested.epoch == 0
    assert tested._compiled is None
    for t in (tested, twin):
        t.fit(data, epochs=1, batch_size=32, verbose=False)
    for a, b in zip(leaves(tested.state), leaves(twin.state), strict=True):
        np.testing.assert_array_equal(a, b)

    # a trained one: parameters, optimizer state, RNG, step, epoch and history as before
    before = leaves(tested.state)
    rng, history = key_data(tested.state), {k: list(v) for k, v in tested.run.history.items()}
    compiled, strategy, task = tested._compiled, tested.strategy, tested.task
    tested.find_learning_rate(data, num_steps=20, batch_size=32, min_lr=1e-5, max_lr=1.0)
    for a, b in zip(leaves(tested.state), before, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(key_data(tested.state), rng)
    assert int(tested.state.step) == 8
    assert tested.epoch == 1 and tested.run.history == history
    assert tested._compiled is compiled and tested.strategy is strategy and tested.task is task
    for t in (tested, twin):  # and training goes on as if nothing had happened
        t.fit(data, epochs=1, batch_size=32, verbose=False)
    for a, b in zip(leaves(tested.state), leaves(twin.state), strict=True):
        np.testing.assert_array_equal(a, b)
    assert tested.run.history == twin.run.history


def test_plot_to_a_file_or_onto_axes(tmp_path):
    x, y = isotropic_regression()
    result = linear_trainer().find_learning_rate(
        (x, y), min_lr=1e-3, max_lr=10.0, num_steps=30, batch_size=N
    )
    path = result.plot(tmp_path / "range.png")
    assert path.endswith("range.png") and (tmp_path / "range.png").stat().st_size > 1000
    ax = Figure().subplots()
    assert result.plot(ax) is ax
    assert ax.get_xscale() == "log"
    assert any(math.isclose(line.get_xdata()[0], result.suggestion) for line in ax.lines)


def test_bad_options_are_refused_before_anything_runs():
    x, y = isotropic_regression()
    trainer = linear_trainer()
    with pytest.raises(ValueError, match="max_lr: expected more than min_lr=0.1, got 0.01"):
        trainer.find_learning_rate((x, y), min_lr=0.1, max_lr=0.01)
    with pytest.raises(ValueError, match="num_steps: expected an int >= 10, got 3"):
        trainer.find_learning_rate((x, y), num_steps=3)
    with pytest.raises(ValueError, match=r"smooth: expected a factor in \[0, 1\), got 1"):
        trainer.find_learning_rate((x, y), smooth=1)
    with pytest.raises(ValueError, match="stop_factor: expected a number > 1 or None"):
        trainer.find_learning_rate((x, y), stop_factor=0.5)
    with pytest.raises(ValueError, match="suggest: expected one of"):
        trainer.find_learning_rate((x, y), suggest="valley")
    import optax

    ready = jaxdl.Trainer(jaxdl.models.MLP(features=(1,)), loss="mse", optimizer=optax.sgd(0.1))
    with pytest.raises(ValueError, match="needs an optimizer by name"):
        ready.find_learning_rate((x, y))
    grouped = jaxdl.Trainer(
        jaxdl.models.MLP(features=(1,)),
        loss="mse",
        optimizer=jaxdl.Optimizer("sgd", 0.1, param_groups={"*bias": 0.01}),
    )
    with pytest.raises(ValueError, match=r"parameter groups '\*bias' have rates of their own"):
        grouped.find_learning_rate((x, y))
    assert trainer.state is None and grouped.state is None
