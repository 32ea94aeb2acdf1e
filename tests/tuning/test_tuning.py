"""Hyperparameter search, k-fold splits, and vmapped sweeps against one-by-one Trainer runs."""

import csv
import math

import jax
import numpy as np
import pytest

import jaxdl
from jaxdl import tuning
from jaxdl.data import stratified_kfold


@pytest.fixture(scope="module")
def digits():
    return jaxdl.data.load("digits", seed=0)


@pytest.mark.slow  # over 10 s on 2 cores; nox -s slow
def test_sweep_of_eight_equals_eight_trainer_runs(digits):
    configs = [
        {"learning_rate": lr, "weight_decay": wd, "seed": seed}
        for seed, (lr, wd) in enumerate([(1e-3, 1e-4), (3e-3, 1e-3), (1e-2, 0.0), (3e-4, 1e-2)] * 2)
    ]
    model = jaxdl.models.MLP((32, 10), dropout_rate=0.2)  # dropout: every member's own keys
    sweep = tuning.Sweep(model, configs, optimizer="adamw")
    history = sweep.fit(digits.train, epochs=2, batch_size=64, validation_data=digits.validation)
    assert {k: v.shape for k, v in history.items()} == {
        "loss": (2, 8),
        "accuracy": (2, 8),
        "lr": (2, 8),
        "val_loss": (2, 8),
        "val_accuracy": (2, 8),
    }
    outputs = sweep.predict(digits.test.x)
    scores = sweep.evaluate(digits.test)
    for k, config in enumerate(configs):
        trainer = jaxdl.Trainer(
            model,
            optimizer=jaxdl.Optimizer(
                "adamw", config["learning_rate"], options={"weight_decay": config["weight_decay"]}
            ),
            seed=config["seed"],
        )
        expected = trainer.fit(
            digits.train, epochs=2, batch_size=64, validation_data=digits.validation, verbose=False
        )
        for name, values in expected.items():
            np.testing.assert_allclose(history[name][:, k], values, rtol=1e-4, atol=1e-6)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
            jax.device_get(sweep.member(k).params),
            jax.device_get(trainer.state.params),
        )
        np.testing.assert_allclose(outputs[k], trainer.predict(digits.test.x), atol=1e-4)
        assert math.isclose(scores["accuracy"][k], trainer.evaluate(digits.test)["accuracy"])


def test_sweep_configs_are_checked():
    model = jaxdl.models.MLP((4, 2))
    with pytest.raises(ValueError, match=r"configs\[1\] has keys"):
        tuning.Sweep(model, [{"learning_rate": 1e-3}, {"learning_rate": 1e-3, "seed": 1}])
    with pytest.raises(TypeError, match="varies numbers only"):
        tuning.Sweep(model, [{"learning_rate": 1e-3, "optimizer": "sgd"}])
    with pytest.raises(ValueError, match="learning_rate is needed"):
        tuning.Sweep(model, [{"seed": 1}])
    sweep = tuning.Sweep(model, [{"learning_rate": 1e-3}])
    x = np.ones((4, 3), np.float32)
    sweep.fit((x, np.array([0, 1, 0, 1])), epochs=1, batch_size=2)
    with pytest.raises(ValueError, match=r"data.y: expected integer labels \('N',\)"):
        sweep.evaluate((x, np.zeros((4, 5), np.int32)))  # refused before any compile
    sweep = tuning.Sweep(model, [{"learning_rate": 1e-3, "nonsense": 1.0}], optimizer="adam")
    with pytest.raises(TypeError, match="optimizer 'adam'.*nonsense"):
        sweep.init(np.zeros((1, 3), np.float32))


def test_ensemble_is_the_mean_of_the_members_probabilities():
    logits = np.random.default_rng(0).normal(size=(3, 5, 4))
    expected = np.mean(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True), axis=0)
    np.testing.assert_allclose(tuning.ensemble_predict(logits), expected, rtol=1e-5)
    with pytest.raises(ValueError, match=r"expected \(members, N, classes\)"):
        tuning.ensemble_predict(logits[0])


def test_stratified_kfold_partitions_and_keeps_proportions():
    labels = np.repeat(np.arange(4), [50, 23, 7, 3])
    folds = stratified_kfold(labels, 5, seed=1)
    validation = np.concatenate([v for _, v in folds])
    np.testing.assert_array_equal(np.sort(validation), np.arange(len(labels)))
    for train, val in folds:
        assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(labels)
        for c, total in enumerate([50, 23, 7, 3]):
            assert abs(np.sum(labels[val] == c) - total / 5) < 1
    sizes = [len(v) for _, v in folds]
    assert max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError, match="k: expected an int >= 2"):
        stratified_kfold(labels, 1)


def test_grid_and_random_configurations():
    configs = tuning.grid({"learning_rate": [1e-3, 1e-2], "layers": [1, 2, 3]})
    assert len(configs) == 6 and configs[1] == {"learning_rate": 1e-3, "layers": 2}
    with pytest.raises(TypeError, match="must be a list of values"):
        tuning.grid({"learning_rate": tuning.log_uniform(1e-4, 1e-1)})
    space = {
        "learning_rate": tuning.log_uniform(1e-4, 1e-1),
        "hidden_units": tuning.int_uniform(8, 12),
        "optimizer": ["adam", "sgd"],
        "epochs": 3,
    }
    drawn = tuning.sample(space, 2000, seed=0)
    assert drawn == tuning.sample(space, 2000, seed=0)
    rates = np.array([c["learning_rate"] for c in drawn])
    assert rates.min() >= 1e-4 and rates.max() <= 1e-1
    # log-uniform: the median is the geometric mean of the ends, 10^-2.5
    assert abs(np.log10(np.median(rates)) + 2.5) < 0.1
    units = np.array([c["hidden_units"] for c in drawn])
    assert set(units) == {8, 9, 10, 11, 12}
    assert np.all(np.abs(np.bincount(units)[8:] / 2000 - 0.2) < 0.04)
    assert {c["epochs"] for c in drawn} == {3}


def test_grid_search_scores_sorts_and_writes(digits, tmp_path):
    space = {"learning_rate": [1e-3, 3e-2], "hidden_units": [8], "epochs": [3]}
    results = tuning.grid_search(space, digits, batch_size=64)
    scores = [row["score"] for row in results.rows]
    assert scores == sorted(scores, reverse=True) and len(results) == 2
    # each score is an independent Trainer run of that configuration
    for row in results.rows:
        trainer = tuning.mlp_trainer(row, 10, seed=0)
        trainer.fit(digits.train, epochs=3, batch_size=64, verbose=False)
        assert math.isclose(row["score"], trainer.evaluate(digits.validation)["accuracy"])
    assert results.best == {k: results.rows[0][k] for k in space}
    path = results.to_csv(tmp_path / "search.csv")
    with open(path) as f:
        written = list(csv.DictReader(f))
    assert [float(r["score"]) for r in written] == pytest.approx(scores)
    assert written[0]["rank"] == "1" and "learning_rate" in written[0]
    assert "rank" in results.table().splitlines()[0]


def test_random_search_with_kfold_reports_every_fold(digits):
    space = {"learning_rate": tuning.log_uniform(1e-3, 1e-2), "hidden_units": [8], "epochs": 1}
    results = tuning.random_search(space, digits.train, trials=2, folds=3, batch_size=64)
    for row in results.rows:
        assert len(row["fold_scores"]) == 3
        assert math.isclose(row["score"], np.mean(row["fold_scores"]))
    with pytest.raises(ValueError, match="either validation_data"):
        tuning.random_search(space, digits.train, trials=1)
