"""A loss per output of a model of several outputs, weighted by ``loss_weights``: the task's
steps against NumPy's per-output losses, with a padded batch built by hand."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxdl
from jaxdl import metrics as metrics_lib
from jaxdl.train import tasks

WEIGHTS = {"digit": 1.0, "size": 0.5}


class TwoHeads(nn.Module):
    """A shared layer and two heads: class logits (B, 3) and a value (B, 1)."""

    tuple_outputs: bool = False

    @nn.compact
    def __call__(self, x):
        h = nn.tanh(nn.Dense(8)(x))
        digit, size = nn.Dense(3, name="digit")(h), nn.Dense(1, name="size")(h)
        return (digit, size) if self.tuple_outputs else {"digit": digit, "size": size}


def numpy_losses(outputs, y, real):
    """Per-output mean losses over the real rows, by hand."""
    logits = np.asarray(outputs["digit"], np.float64)[real]
    log_p = logits - logits.max(1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
    cross_entropy = -log_p[np.arange(len(logits)), y["digit"][real]].mean()
    mse = ((np.asarray(outputs["size"])[real, 0] - y["size"][real]) ** 2).mean()
    accuracy = (logits.argmax(1) == y["digit"][real]).mean()
    return cross_entropy, mse, accuracy


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 4)).astype(np.float32)
    y = {
        "digit": rng.integers(0, 3, 10).astype(np.int32),
        "size": rng.normal(size=10).astype(np.float32),
    }
    mask = np.r_[np.ones(7), np.zeros(3)].astype(np.float32)  # 3 padded rows
    x[7:] *= 50.0  # padding that would move every number if it counted
    return {"x": x, "y": y, "mask": mask}


def make_task():
    return tasks.Supervised({"digit": "cross_entropy", "size": "mse"}, loss_weights=WEIGHTS)


def test_the_loss_is_the_weighted_sum_of_the_numpy_per_output_losses(batch):
    task = make_task()
    metrics = task.check_metrics(task.default_metrics)  # accuracy for the classifier head
    assert task.metric_names(metrics) == ("loss", "digit_loss", "size_loss", "digit_accuracy")
    model = TwoHeads()
    state = jaxdl.create_train_state(model, optax.sgd(1.0), batch["x"][:1])
    train_step, eval_step = task.make_steps(metrics, 3, None, model)

    outputs = jax.jit(model.apply)({"params": state.params}, batch["x"])
    ce, mse, accuracy = numpy_losses(outputs, batch["y"], batch["mask"] > 0)
    result = metrics_lib.compute(jax.jit(eval_step)(state, batch))
    assert result["digit_loss"] == pytest.approx(ce, rel=1e-5)
    assert result["size_loss"] == pytest.approx(mse, rel=1e-5)
    assert result["loss"] == pytest.approx(1.0 * ce + 0.5 * mse, rel=1e-5)
    assert result["digit_accuracy"] == pytest.approx(accuracy)

    # training descends the same weighted objective (sgd, rate 1: params - gradient)
    def objective(params):
        out = model.apply({"params": params}, batch["x"][:7])
        ce = optax.softmax_cross_entropy_with_integer_labels(out["digit"], batch["y"]["digit"][:7])
        mse = (out["size"][:, 0] - batch["y"]["size"][:7]) ** 2
        return jnp.mean(ce) + 0.5 * jnp.mean(mse)

    gradient = jax.jit(jax.grad(objective))(state.params)
    expected = jax.tree.map(lambda p, g: p - g, state.params, gradient)
    new_state, train_metrics = jax.jit(train_step)(state, batch)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
        new_state.params,
        expected,
    )
    assert metrics_lib.compute(train_metrics)["loss"] == pytest.approx(result["loss"], rel=1e-5)


def test_tuple_outputs_and_metrics_per_output(batch):
    task = tasks.Supervised(("cross_entropy", "mse"), loss_weights=(2.0, 0.0))
    metrics = task.check_metrics({0: ["accuracy"], 1: ["mae"]})
    names = ("loss", "output_0_loss", "output_1_loss", "output_0_accuracy", "output_1_mae")
    assert task.metric_names(metrics) == names
    model = TwoHeads(tuple_outputs=True)
    state = jaxdl.create_train_state(model, optax.sgd(0.1), batch["x"][:1])
    _, eval_step = task.make_steps(metrics, 3, None, model)
    y = (batch["y"]["digit"], batch["y"]["size"])
    result = metrics_lib.compute(jax.jit(eval_step)(state, {**batch, "y": y}))
    digit, size = model.apply({"params": state.params}, batch["x"])
    real = batch["mask"] > 0
    ce, mse, _ = numpy_losses({"digit": digit, "size": size}, batch["y"], real)
    assert result["loss"] == pytest.approx(2.0 * ce, rel=1e-5)  # the size head weighs 0
    assert result["output_1_loss"] == pytest.approx(mse, rel=1e-5)
    mae = np.abs(np.asarray(size)[real, 0] - batch["y"]["size"][real]).mean()
    assert result["output_1_mae"] == pytest.approx(mae, rel=1e-5)


def test_predict_converts_each_output_by_its_own_loss():
    outputs = {"digit": np.array([[1.0, 3.0, 0.0]], np.float32), "size": np.array([[0.7]])}
    classes = make_task().output_transform("classes")(outputs)
    assert classes["digit"].tolist() == [1]
    assert classes["size"] is outputs["size"]  # a regression output comes as it is
    probabilities = make_task().output_transform("probabilities")(outputs)
    z = np.exp(outputs["digit"] - 3.0)
    np.testing.assert_allclose(probabilities["digit"], z / z.sum(), rtol=1e-6)


def test_what_does_not_fit_is_refused_by_name():
    loss = {"digit": "cross_entropy", "size": "mse"}
    with pytest.raises(ValueError, match="loss_weights: 'colour' is not an output"):
        tasks.Supervised(loss, loss_weights={"colour": 1.0})
    with pytest.raises(ValueError, match="loss_weights: expected finite weights >= 0"):
        tasks.Supervised(loss, loss_weights={"size": -1.0})
    with pytest.raises(ValueError, match="loss_weights: weighs the losses of several outputs"):
        tasks.Supervised("mse", loss_weights={"size": 1.0})
    with pytest.raises(ValueError, match="class_weight: weighs the classes of one output"):
        tasks.Supervised(loss, class_weight="balanced")
    with pytest.raises(ValueError, match="unknown loss 'cross_entrop'"):
        tasks.Supervised({"digit": "cross_entrop"})
    with pytest.raises(TypeError, match="give metrics per output, e.g. metrics=\\{'digit'"):
        jaxdl.Trainer(TwoHeads(), loss=tasks.Supervised(loss), metrics=["accuracy"])
    with pytest.raises(ValueError, match="metrics: 'colour' is not an output"):
        jaxdl.Trainer(TwoHeads(), loss=tasks.Supervised(loss), metrics={"colour": ["mae"]})
    x = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match=r"one loss per output for \['digit', 'shape'\], but"):
        jaxdl.Trainer(TwoHeads(), loss={"digit": "cross_entropy", "shape": "mse"}).init(x)
    trainer = jaxdl.Trainer(TwoHeads(), loss=loss)
    trainer.init(x)
    with pytest.raises(ValueError, match=r"expected targets for the outputs \['digit', 'size'\]"):
        trainer.task.check_targets({"digit": np.zeros(4, np.int32)}, 4, trainer, "data.y")
    with pytest.raises(ValueError, match=r"data.y\['digit'\]: labels must lie in \[0, 3\)"):
        trainer.task.check_targets(
            {"digit": np.full(4, 3), "size": np.zeros(4)}, 4, trainer, "data.y"
        )


def test_fit_and_evaluate_a_two_output_model_end_to_end():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 4)).astype(np.float32)
    y = {
        "digit": (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0),
        "size": (x[:, 2] * 2).astype(np.float32),
    }
    trainer = jaxdl.Trainer(TwoHeads(), loss=make_task(), metrics={"digit": ["accuracy"]})
    history = trainer.fit((x, y), epochs=2, batch_size=7, verbose=False)
    assert list(history)[:4] == ["loss", "digit_loss", "size_loss", "digit_accuracy"]
    result = trainer.evaluate((x, y), batch_size=7)  # 30 = 4 * 7 + 2: padding must not count
    ce, mse, accuracy = numpy_losses(trainer.predict(x), y, np.ones(30, bool))
    assert result["loss"] == pytest.approx(ce + 0.5 * mse, rel=1e-5)
    assert result["digit_accuracy"] == pytest.approx(accuracy)
    assert trainer.predict_classes(x)["digit"].shape == (30,)
