"""The Trainer and the pure steps under it."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxdl
from jaxdl.data import epoch_indices
from jaxdl.train import steps


def small_digits():
    return jaxdl.data.load("digits", seed=0)


def leaves_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_mlp_solves_xor_and_a_linear_layer_cannot():
    xor = jaxdl.data.load("xor", seed=0)
    mlp = jaxdl.Trainer(
        jaxdl.models.MLP(features=(16, 16, 2), activation="tanh"), learning_rate=1e-2, seed=0
    )
    mlp.fit(xor.train, epochs=60, batch_size=32, verbose=False)
    assert mlp.evaluate(xor.test)["accuracy"] == 1.0
    linear = jaxdl.Trainer(jaxdl.models.MLP(features=(2,)), learning_rate=1e-2, seed=0)
    linear.fit(xor.train, epochs=60, batch_size=32, verbose=False)
    # a line splits the four quadrants into at best 3 + 1, so at most ~75%
    assert linear.evaluate(xor.test)["accuracy"] < 0.8


def test_classic_four_point_xor():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    y = np.array([0, 1, 1, 0])
    trainer = jaxdl.Trainer(
        jaxdl.models.MLP(features=(8, 2), activation="tanh"), learning_rate=0.05, seed=1
    )
    trainer.fit((x, y), epochs=300, batch_size=4, verbose=False)
    np.testing.assert_array_equal(trainer.predict(x).argmax(1), y)


def test_same_seed_bit_identical_and_different_seeds_differ():
    d = small_digits()

    def run(seed):
        t = jaxdl.Trainer(jaxdl.models.MLP(features=(32, 10), dropout_rate=0.2), seed=seed)
        t.fit(d.train, epochs=2, batch_size=50, verbose=False)
        return t.state.params

    a, b, c = run(3), run(3), run(4)
    assert leaves_equal(a, b)
    assert not leaves_equal(a, c)


@pytest.mark.parametrize("steps_per_call", ["epoch", 1])
def test_one_trace_for_the_whole_run(monkeypatch, steps_per_call):
    chex.clear_trace_counter()  # the counter is keyed by function and shared across tests
    made = {}
    real_train, real_eval = steps.make_train_step, steps.make_eval_step

    def counted(factory, key):
        def make(*args, **kwargs):
            made[key] = chex.assert_max_traces(factory(*args, **kwargs), n=1)
            return made[key]

        return make

    # n=1: the compile is the only trace; the metric states' structure comes from their
    # empty() values, not from tracing the step
    monkeypatch.setattr(steps, "make_train_step", counted(real_train, "train"))
    monkeypatch.setattr(steps, "make_eval_step", counted(real_eval, "eval"))
    d = small_digits()
    assert len(d.train) % 64 != 0 and len(d.validation) % 64 != 0  # a padded last batch
    t = jaxdl.Trainer(jaxdl.models.MLP(features=(16, 10)), steps_per_call=steps_per_call)
    t.fit(d.train, epochs=3, batch_size=64, validation_data=d.validation, verbose=False)
    t.fit(d.train, epochs=1, batch_size=64, validation_data=d.validation, verbose=False)
    t.evaluate(d.test, batch_size=64)
    assert set(made) == {"train", "eval"}
    # the guard can fail: a new batch shape must compile again and trips it
    with pytest.raises(AssertionError, match="traced > 1 times"):
        t.fit(d.train, epochs=1, batch_size=32, verbose=False)


def test_epoch_scan_and_step_per_call_agree():
    d = small_digits()
    results = []
    for mode in ("epoch", 1):
        t = jaxdl.Trainer(
            jaxdl.models.MLP(features=(32, 10), dropout_rate=0.1), seed=0, steps_per_call=mode
        )
        h = t.fit(d.train, epochs=2, batch_size=64, verbose=False)
        results.append((t.state.params, h))
    (pa, ha), (pb, hb) = results
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), pa, pb)
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-5)


def test_trainer_matches_a_hand_written_optax_loop():
    d = small_digits()
    model = jaxdl.models.MLP(features=(32, 10))
    t = jaxdl.Trainer(model, optimizer="sgd", learning_rate=0.1, seed=0)
    t.fit(d.train, epochs=1, batch_size=100, shuffle=False, verbose=False)

    params = jaxdl.create_train_state(model, optax.sgd(0.1), d.train.x[:1], seed=0).params
    opt = optax.sgd(0.1)
    opt_state = opt.init(params)
    for start in range(0, len(d.train), 100):
        xb, yb = d.train.x[start : start + 100], d.train.y[start : start + 100]
        loss = lambda p, xb, yb: optax.softmax_cross_entropy_with_integer_labels(
            model.apply({"params": p}, xb), yb
        ).mean()
        grads = jax.grad(loss)(params, xb, yb)
        updates, opt_state = opt.update(grads, opt_state)
        params = optax.apply_updates(params, updates)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), t.state.params, params
    )


def test_compiled_train_step_is_the_step_fit_runs():
    d = small_digits()
    x, y = d.train.x[:64], d.train.y[:64]
    fitted = jaxdl.Trainer(jaxdl.models.MLP(features=(32, 10)), seed=0, steps_per_call=1)
    fitted.fit((x, y), epochs=1, batch_size=64, shuffle=False, verbose=False)

    t = jaxdl.Trainer(jaxdl.models.MLP(features=(32, 10)), seed=0)
    t.init(x)
    batch = {"x": x, "y": y, "mask": np.ones(64, np.float32)}
    step, carry, body = t.compiled_train_step(batch)
    state, acc, first_bad = step(*carry, batch)
    assert int(state.step) == 1 and int(first_bad) == -1
    assert float(acc["loss"].count) == 64
    jax.tree.map(np.testing.assert_array_equal, state.params, fitted.state.params)
    # the uncompiled body computes the same step
    fresh = jaxdl.Trainer(jaxdl.models.MLP(features=(32, 10)), seed=0)
    fresh.init(x)
    _, carry, _ = fresh.compiled_train_step(batch)
    again, _, _ = jax.jit(body)(*carry, batch)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
        again.params, state.params,
    )  # fmt: skip


def test_masked_rows_do_not_change_the_step(rng):
    model = jaxdl.models.MLP(features=(8, 3))
    x = rng.normal(size=(10, 4)).astype(np.float32)
    y = rng.integers(0, 3, 10)
    state = jaxdl.create_train_state(model, optax.adam(1e-2), x[:1])
    step = jax.jit(jaxdl.make_train_step("cross_entropy", ("accuracy",), 3))
    real, _ = step(state, {"x": x[:6], "y": y[:6]})
    padded_x = np.concatenate([x[:6], 100 * x[6:]])
    mask = np.r_[np.ones(6), np.zeros(4)].astype(np.float32)
    masked, metrics = step(state, {"x": padded_x, "y": y, "mask": mask})
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
        real.params,
        masked.params,
    )
    assert float(metrics["accuracy"].count) == 6


def test_evaluate_counts_every_example_once():
    d = small_digits()
    t = jaxdl.Trainer(jaxdl.models.MLP(features=(16, 10)), metrics=("accuracy", "f1"))
    t.fit(d.train, epochs=2, batch_size=64, verbose=False)
    logits = t.predict(d.test.x, batch_size=13)
    assert logits.shape == (len(d.test), 10)
    log_p = (
        logits
        - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True))
        - logits.max(1, keepdims=True)
    )
    expected_loss = -log_p[np.arange(len(d.test)), d.test.y].mean()
    scores = t.evaluate(d.test, batch_size=7)  # 360 = 51 * 7 + 3: a padded last batch
    assert list(scores) == ["loss", "accuracy", "f1"]
    assert scores["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert scores["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == d.test.y))
    assert scores["f1"] == pytest.approx(jaxdl.metrics.f1_score(d.test.y, logits, "macro"))


def test_history_and_validation_keys_and_tuple_input():
    d = small_digits()
    t = jaxdl.Trainer(
        jaxdl.models.MLP(features=(16, 10)), optimizer=optax.sgd(0.1), metrics=("accuracy",)
    )
    h = t.fit(
        (d.train.x, d.train.y),
        epochs=3,
        batch_size=64,
        validation_data=(d.validation.x, d.validation.y),
        verbose=False,
    )
    assert list(h) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert all(len(v) == 3 for v in h.values())
    assert h["loss"][-1] < h["loss"][0]


def test_batch_norm_statistics_update_in_training_only():
    d = small_digits()
    t = jaxdl.Trainer(jaxdl.models.MLP(features=(16, 10), batch_norm=True))
    t.fit(d.train, epochs=1, batch_size=64, verbose=False)
    mean = t.state.batch_stats["norm_0"]["mean"]
    assert float(jnp.abs(mean).sum()) > 0
    before = jax.device_get(t.state.batch_stats)
    t.evaluate(d.validation)
    assert leaves_equal(before, t.state.batch_stats)


def test_regression_with_mse():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]) + 0.3)[:, None].astype(np.float32)
    t = jaxdl.Trainer(
        jaxdl.models.MLP(features=(1,)), loss="mse", metrics=("mae",), learning_rate=0.05
    )
    t.fit((x, y), epochs=40, batch_size=64, verbose=False)
    assert t.evaluate((x, y))["loss"] < 1e-3


def test_early_stopping_restores_the_best_epoch():
    d = small_digits()
    stopper = jaxdl.EarlyStopping("val_loss", patience=2, restore_best=True)
    t = jaxdl.Trainer(jaxdl.models.MLP(features=(64, 10)), learning_rate=3e-2, seed=0)
    h = t.fit(
        d.train,
        epochs=60,
        batch_size=32,
        validation_data=d.validation,
        callbacks=[stopper],
        verbose=False,
    )
    assert len(h["loss"]) < 60
    assert stopper.stopped_epoch == len(h["loss"]) - 1
    assert stopper.best_epoch == int(np.argmin(h["val_loss"]))
    assert len(h["loss"]) - 1 - stopper.best_epoch == 2
    assert t.evaluate(d.validation, batch_size=32)["loss"] == pytest.approx(
        min(h["val_loss"]), rel=1e-5
    )


def test_early_stopping_on_a_missing_metric_names_the_existing_ones():
    d = small_digits()
    t = jaxdl.Trainer(jaxdl.models.MLP(features=(8, 10)))
    with pytest.raises(ValueError, match="'val_accuracy'.*available: accuracy, loss"):
        t.fit(
            d.train,
            epochs=1,
            batch_size=64,
            callbacks=[jaxdl.EarlyStopping("val_accuracy")],
            verbose=False,
        )


@pytest.mark.parametrize("steps_per_call", ["epoch", 1])
def test_non_finite_loss_stops_and_names_the_step(steps_per_call):
    d = small_digits()
    # updates turn NaN at the optimizer's 6th update (count 5), so the loss of step 6 is NaN
    poison = optax.scale_by_schedule(lambda count: jnp.where(count == 5, jnp.nan, 1.0))
    tx = optax.chain(optax.sgd(0.01), poison)
    t = jaxdl.Trainer(
        jaxdl.models.MLP(features=(8, 10)), optimizer=tx, steps_per_call=steps_per_call
    )
    with pytest.raises(jaxdl.NonFiniteLossError, match="at step 6 "):
        t.fit(d.train, epochs=3, batch_size=64, verbose=False)
    assert t.epoch == 1


def test_csv_logger_writes_the_history(tmp_path):
    import csv

    d = small_digits()
    path = tmp_path / "history.csv"
    t = jaxdl.Trainer(jaxdl.models.MLP(features=(8, 10)))
    h = t.fit(
        d.train,
        epochs=3,
        batch_size=64,
        validation_data=d.validation,
        callbacks=[jaxdl.CSVLogger(path)],
        verbose=False,
    )
    rows = list(csv.DictReader(open(path)))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    np.testing.assert_allclose([float(r["val_loss"]) for r in rows], h["val_loss"])


def test_model_without_train_argument():
    class Plain(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(10)(x)

    d = small_digits()
    t = jaxdl.Trainer(Plain())
    t.fit(d.train, epochs=1, batch_size=64, verbose=False)
    assert 0 <= t.evaluate(d.test)["accuracy"] <= 1


def test_binary_classifier_with_a_single_logit():
    d = jaxdl.data.load("moons", seed=0)
    t = jaxdl.Trainer(
        jaxdl.models.MLP(features=(32, 32, 1)),
        loss="binary_cross_entropy",
        metrics=("accuracy", "recall"),
        learning_rate=1e-2,
    )
    t.fit(d.train, epochs=30, batch_size=32, verbose=False)
    scores = t.evaluate(d.test)
    probabilities = 1 / (1 + np.exp(-t.predict(d.test.x)[:, 0]))
    assert scores["accuracy"] == pytest.approx(jaxdl.metrics.accuracy(d.test.y, probabilities))
    assert scores["recall"] == pytest.approx(
        jaxdl.metrics.recall(d.test.y, probabilities, average="macro")
    )
    assert scores["accuracy"] > 0.95
    assert jaxdl.metrics.roc_auc(d.test.y, probabilities) > 0.98


@pytest.mark.parametrize("steps_per_call", ["epoch", 1])
def test_skip_nonfinite_skips_exactly_the_bad_batches_and_counts_them(steps_per_call):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5], np.float32)
    y[[5, 70]] = 3e38  # finite targets whose squared error overflows: inf loss and gradients
    trainer = jaxdl.Trainer(
        jaxdl.models.MLP(features=(1,)),
        loss="mse",
        metrics=(),
        optimizer=jaxdl.Optimizer("sgd", 0.05, skip_nonfinite=True),
        steps_per_call=steps_per_call,
    )
    history = trainer.fit((x, y), epochs=3, batch_size=16, verbose=False)
    # which batches hold a bad row follows from the epoch's order alone
    expected = []
    for epoch in range(3):
        indices, _ = epoch_indices(96, 16, shuffle=True, seed=0, epoch=epoch)
        expected.append(float(sum(bool(np.isin([5, 70], row).any()) for row in indices)))
    assert history["skipped_updates"] == expected
    assert np.isfinite(history["loss"]).all()  # the skipped batches are left out of the mean
    assert all(np.isfinite(p).all() for p in jax.tree.leaves(trainer.state.params))
    with pytest.raises(jaxdl.NonFiniteLossError):  # and without the option the run stops
        jaxdl.Trainer(jaxdl.models.MLP(features=(1,)), loss="mse", metrics=()).fit(
            (x, y), epochs=1, batch_size=16, verbose=False
        )


def test_labels_of_another_shape_than_the_outputs_are_refused_before_any_compile():
    """Found by the hypothesis test of evaluate: integer labels (N, 10) for a classifier of
    3 classes reached the loss and failed inside XLA."""
    x = np.ones((4, 5), np.float32)
    trainer = jaxdl.Trainer(jaxdl.models.MLP((3,)))
    trainer.fit((x, np.array([0, 1, 2, 0])), epochs=1, batch_size=2, verbose=False)
    with pytest.raises(ValueError, match=r"expected integer labels \('N',\) or one-hot rows"):
        trainer.evaluate((x, np.zeros((4, 10), np.int32)))
    with pytest.raises(ValueError, match=r"got \(4, 10\) of float32"):
        trainer.evaluate((x, np.zeros((4, 10), np.float32)))
    assert trainer.evaluate((x, np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]))["accuracy"] >= 0


def test_after_a_non_finite_loss_the_broken_state_is_refused_not_used():
    """predict and evaluate must not quietly return NaN from the state a NaN loss left."""
    x = np.ones((32, 3), np.float32)
    y = np.full(32, 1e30, np.float32)  # squared errors overflow: inf loss, NaN updates
    trainer = jaxdl.Trainer(jaxdl.models.MLP((1,)), loss="mse", metrics=(), learning_rate=1.0)
    with pytest.raises(jaxdl.NonFiniteLossError, match="at step 0"):
        trainer.fit((x, y), epochs=1, batch_size=8, verbose=False)
    for use in (lambda: trainer.predict(x), lambda: trainer.evaluate((x, y)),
                lambda: trainer.fit((x, y), verbose=False)):  # fmt: skip
        with pytest.raises(RuntimeError, match="may hold NaN .*at step 0.*init\\(\\)"):
            use()
    trainer.init(x[:1])  # starting again gives a usable state
    assert np.isfinite(trainer.predict(x)).all()
