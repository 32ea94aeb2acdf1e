"""``jaxdl.Optimizer``: one description, checked when made, shared by Trainer and Sweep."""

import jax
import numpy as np
import optax
import pytest

import jaxdl
from jaxdl import Optimizer


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"name": "adamm"}, ValueError, "optimizer"),
        ({"learning_rate": -1.0}, ValueError, "learning_rate: expected a finite number > 0"),
        ({"learning_rate": float("nan")}, ValueError, "learning_rate"),
        ({"learning_rate": None}, TypeError, "learning_rate"),
        ({"schedule": "cosin"}, ValueError, "schedule"),
        ({"l2": -0.1}, ValueError, "l2: expected a finite number >= 0"),
        ({"l1": float("inf")}, TypeError, "l1"),
        ({"clip_norm": 0.0}, ValueError, "clip_norm: expected a number > 0"),
        ({"accumulate_steps": 0}, ValueError, "accumulate_steps: expected an int >= 1, got 0"),
        ({"accumulate_steps": 2.0}, TypeError, "accumulate_steps"),
        ({"options": {"nonsense": 1}}, TypeError, "options for optimizer 'adam'"),
        ({"options": [1]}, TypeError, "options: expected a dict"),
        ({"freeze": (1,)}, TypeError, "freeze: expected path patterns"),
    ],
)
def test_a_description_that_can_only_be_a_mistake_is_refused_when_made(kwargs, error, message):
    with pytest.raises(error, match=message):
        Optimizer(**kwargs)


def test_the_description_builds_the_chain_make_optimizer_builds():
    params = {"w": np.ones((3, 2), np.float32), "b": np.ones(2, np.float32)}
    grads = jax.tree.map(lambda p: p * 0.5, params)
    opt = Optimizer("sgd", 0.1, l2=0.01, clip_norm=0.5, options={"momentum": 0.9})
    ours = opt.build(total_steps=10, steps_per_epoch=5)
    reference = jaxdl.optim.make_optimizer("sgd", 0.1, l2=0.01, clip_norm=0.5, momentum=0.9)
    a, _ = ours.update(grads, ours.init(params), params)
    b, _ = reference.update(grads, reference.init(params), params)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)
    # and by hand: g + 2 * l2 * w on the kernel (not the bias), clipped to norm 0.5, times -lr
    g = {"w": 0.5 + 2 * 0.01 * 1.0 + np.zeros((3, 2)), "b": 0.5 + np.zeros(2)}
    norm = np.sqrt(sum(np.sum(v**2) for v in g.values()))
    np.testing.assert_allclose(a["w"], -0.1 * g["w"] * 0.5 / norm, rtol=1e-6)


def test_trainer_takes_a_name_a_description_or_a_transformation():
    assert Optimizer.of("sgd", 0.5) == Optimizer("sgd", 0.5)
    assert Optimizer.of("adam").learning_rate == 1e-3
    assert Optimizer.of(optax.sgd(0.1)).ready
    with pytest.raises(ValueError, match="give it inside Optimizer"):
        jaxdl.Trainer(jaxdl.models.MLP((2,)), optimizer=Optimizer("sgd"), learning_rate=0.1)
    with pytest.raises(ValueError, match="need an optimizer by name"):
        Optimizer(optax.sgd(0.1), l2=0.1)
    config = Optimizer("adamw", 3e-4, schedule="cosine", options={"weight_decay": 0.1}).config()
    assert config["name"] == "adamw" and config["options"] == {"weight_decay": 0.1}


def test_a_description_valid_for_the_trainer_is_valid_for_a_sweep():
    """The vocabulary is one: "momentum" means adam's b1 in both, and a sweep member with
    momentum 0.8 ends where the Trainer with Optimizer(options={"momentum": 0.8}) does."""
    data = jaxdl.data.load("digits", seed=0)
    model = jaxdl.models.MLP((16, 10))
    opt = Optimizer("adam", 1e-3, schedule="cosine", clip_norm=1.0)
    sweep = jaxdl.tuning.Sweep(model, [{"learning_rate": 2e-3, "momentum": 0.8}], optimizer=opt)
    sweep.fit(data.train, epochs=1, batch_size=64)
    trainer = jaxdl.Trainer(
        model, optimizer=opt.replace(learning_rate=2e-3, options={"momentum": 0.8})
    )
    trainer.fit(data.train, epochs=1, batch_size=64, verbose=False)
    for a, b in zip(jax.tree.leaves(sweep.member(0).params), jax.tree.leaves(trainer.state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
