"""Transfer learning: path patterns, per-group learning rates, freezing and copying weights."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxdl
from jaxdl import optim
from jaxdl.train import read_variables, transfer_variables

PARAMS = {
    "conv_0": {"kernel": jnp.ones((3, 3, 1, 4)), "bias": jnp.zeros(4)},
    "dense_0": {"kernel": jnp.ones((8, 2)), "bias": jnp.zeros(2)},
    "output": {"kernel": jnp.ones((2, 3)), "bias": jnp.zeros(3)},
}


def test_paths_and_labels_follow_the_first_matching_pattern():
    assert optim.parameter_paths(PARAMS) == [
        "conv_0/bias",
        "conv_0/kernel",
        "dense_0/bias",
        "dense_0/kernel",
        "output/bias",
        "output/kernel",
    ]
    labels = optim.label_parameters(PARAMS, {"*/bias": "b", "conv_*": "backbone"}, "head")
    assert labels == {
        "conv_0": {"kernel": "backbone", "bias": "b"},
        "dense_0": {"kernel": "head", "bias": "b"},
        "output": {"kernel": "head", "bias": "b"},
    }
    with pytest.raises(ValueError, match=r"'conv_9\*' matches no parameter; the paths are: conv_0"):
        optim.label_parameters(PARAMS, {"conv_9*": "x"})


def test_param_groups_scale_each_groups_sgd_step_and_freeze_the_rest():
    tx = optim.make_optimizer("sgd", 0.1, param_groups={"conv_*": 0.01, "dense_0/kernel": "frozen"})
    grads = jax.tree.map(lambda p: jnp.full_like(p, 2.0), PARAMS)
    updates, _ = tx.update(grads, tx.init(PARAMS), PARAMS)
    assert np.allclose(updates["conv_0"]["kernel"], -0.01 * 2.0)
    assert np.allclose(updates["dense_0"]["kernel"], 0.0)
    assert np.allclose(updates["dense_0"]["bias"], -0.1 * 2.0)
    assert np.allclose(updates["output"]["kernel"], -0.1 * 2.0)
    with pytest.raises(ValueError, match="expected a positive learning rate or 'frozen'"):
        optim.make_optimizer("sgd", 0.1, param_groups={"conv_*": -1.0})


def test_freeze_wraps_any_optax_transformation():
    tx = optim.freeze(optax.adam(0.1), ["output/*"])
    grads = jax.tree.map(jnp.ones_like, PARAMS)
    updates, _ = tx.update(grads, tx.init(PARAMS), PARAMS)
    assert np.all(updates["output"]["kernel"] == 0) and np.all(updates["output"]["bias"] == 0)
    # Adam's first step is -lr * sign(g) for the others
    assert np.allclose(updates["conv_0"]["kernel"], -0.1, rtol=1e-5)


def digits(low: int):
    data = jaxdl.data.load("digits", seed=0, image=True)
    keep = (data.train.y >= low) & (data.train.y < low + 5)
    return data.train.x[keep], (data.train.y[keep] - low).astype(np.int32)


def test_trainer_freezes_parameters_and_batch_statistics_and_trains_the_rest():
    x, y = digits(0)
    model = jaxdl.models.CNN((4, 8), (16,), 5, batch_norm=True)
    opt = jaxdl.Optimizer(freeze=("conv_0/*", "norm_0/*"))
    trainer = jaxdl.Trainer(model, optimizer=opt, seed=1)
    trainer.init(x[:1])
    before = jax.device_get(trainer.state.variables())
    trainer.fit((x, y), epochs=2, batch_size=64, verbose=False)
    after = jax.device_get(trainer.state.variables())
    np.testing.assert_array_equal(
        after["params"]["conv_0"]["kernel"], before["params"]["conv_0"]["kernel"]
    )
    for stat in ("mean", "var"):
        np.testing.assert_array_equal(
            after["batch_stats"]["norm_0"][stat], before["batch_stats"]["norm_0"][stat]
        )
        assert not np.allclose(
            after["batch_stats"]["norm_1"][stat], before["batch_stats"]["norm_1"][stat]
        )
    assert not np.allclose(
        after["params"]["conv_1"]["kernel"], before["params"]["conv_1"]["kernel"]
    )
    assert trainer.config()["optimizer"]["freeze"] == ["conv_0/*", "norm_0/*"]


def test_a_trainers_param_group_gets_its_own_sgd_rate_against_autodiff():
    x, y = digits(0)
    x, y = x[:32], y[:32]
    model = jaxdl.models.MLP((16, 5))
    trainer = jaxdl.Trainer(
        model, optimizer=jaxdl.Optimizer("sgd", 0.5, param_groups={"dense_0/*": 0.05}), seed=2
    )
    trainer.init(x[:1])
    params = jax.device_get(trainer.state.params)
    trainer.fit((x, y), epochs=1, batch_size=32, shuffle=False, verbose=False)

    def loss(p):
        logits = model.apply({"params": p}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    grads = jax.grad(loss)(params)
    new = jax.device_get(trainer.state.params)
    for layer, rate in (("dense_0", 0.05), ("output", 0.5)):
        np.testing.assert_allclose(
            new[layer]["kernel"], params[layer]["kernel"] - rate * grads[layer]["kernel"], atol=1e-6
        )


def test_pretrained_backbone_is_copied_and_a_new_head_keeps_its_initialisation(tmp_path):
    x, y = digits(0)
    source = jaxdl.Trainer(jaxdl.models.CNN((4, 8), (16,), 5, batch_norm=True), seed=3)
    source.fit((x, y), epochs=1, batch_size=64, verbose=False)
    exported = source.export(tmp_path / "pretrained")
    saved = jax.device_get(source.state.variables())

    new_model = jaxdl.models.CNN((4, 8), (16,), 3, batch_norm=True)  # another head
    fresh = jaxdl.Trainer(new_model, seed=4)
    fresh.init(x[:1])
    for pretrained in (exported, source, saved):
        trainer = jaxdl.Trainer(
            new_model, seed=4, pretrained=jaxdl.Pretrained(pretrained, exclude=("output/*",))
        )
        trainer.init(x[:1])
        got = jax.device_get(trainer.state.variables())
        for layer in ("conv_0", "conv_1", "dense_0"):
            jax.tree.map(
                np.testing.assert_array_equal, got["params"][layer], saved["params"][layer]
            )
        jax.tree.map(np.testing.assert_array_equal, got["batch_stats"], saved["batch_stats"])
        jax.tree.map(
            np.testing.assert_array_equal,
            got["params"]["output"],
            jax.device_get(fresh.state.params["output"]),
        )
    # the copies are the trainer's own: training it leaves the source's arrays alive
    trainer = jaxdl.Trainer(
        new_model, seed=4, pretrained=jaxdl.Pretrained(source, exclude="output/*")
    )
    trainer.fit((x, y % 3), epochs=1, batch_size=64, verbose=False)
    np.testing.assert_array_equal(
        jax.device_get(source.state.params["conv_0"]["kernel"]), saved["params"]["conv_0"]["kernel"]
    )


def test_pretrained_from_a_checkpoint_folder(tmp_path):
    x, y = digits(0)
    model = jaxdl.models.MLP((16, 5))
    source = jaxdl.Trainer(model, checkpoint=tmp_path / "ckpt", seed=5)
    source.fit((x, y), epochs=1, batch_size=64, verbose=False)
    loaded = read_variables(str(tmp_path / "ckpt"))
    jax.tree.map(
        np.testing.assert_array_equal, loaded["params"], jax.device_get(source.state.params)
    )


def test_transfer_errors_name_the_path_and_the_shapes():
    target = {
        "params": {
            "dense_0": {"kernel": jnp.zeros((4, 2))},
            "output": {"kernel": jnp.zeros((2, 3))},
        }
    }
    source = {
        "params": {"dense_0": {"kernel": jnp.ones((4, 2))}, "output": {"kernel": jnp.ones((2, 5))}}
    }
    with pytest.raises(
        ValueError, match=r"output/kernel has shape \(2, 5\), the model's has \(2, 3\)"
    ):
        transfer_variables(target, source)
    with pytest.raises(ValueError, match="'encoder/\\*' copied nothing"):
        transfer_variables(target, source, include=("encoder/*",))
    out, copied = transfer_variables(target, source, exclude="output/*")
    assert copied == ["dense_0/kernel"]
    assert np.all(out["params"]["dense_0"]["kernel"] == 1) and np.all(
        out["params"]["output"]["kernel"] == 0
    )
    with pytest.raises(FileNotFoundError, match="neither an exported model"):
        read_variables("/nonexistent/folder")
    with pytest.raises(ValueError, match="has no parameters yet; fit it first"):
        read_variables(jaxdl.Trainer(jaxdl.models.MLP((2,))))


def test_a_frozen_pretrained_backbone_beats_a_frozen_random_one_on_few_labels():
    """A head trained on 10 examples per class over a frozen backbone: the backbone
    pretrained on digits 0-4 beats the same backbone frozen at its random initialisation."""
    data = jaxdl.data.load("digits", seed=0, image=True)
    low = lambda d: d.y < 5
    x_pre, y_pre = data.train.x[low(data.train)], data.train.y[low(data.train)]
    rng = np.random.default_rng(0)
    few = np.concatenate(
        [rng.choice(np.flatnonzero(y_pre == c), 10, replace=False) for c in range(5)]
    )
    x_test, y_test = data.test.x[low(data.test)], data.test.y[low(data.test)]
    model = jaxdl.models.CNN((16, 32), (64,), 5)
    source = jaxdl.Trainer(model, learning_rate=2e-3, seed=0)
    source.fit((x_pre, y_pre), epochs=10, batch_size=64, verbose=False)
    scores = {}
    for name, options in {
        "random": dict(optimizer=jaxdl.Optimizer("adam", 1e-2, freeze=("conv_*", "dense_*"))),
        "frozen": dict(
            pretrained=jaxdl.Pretrained(source, exclude="output/*"),
            optimizer=jaxdl.Optimizer("adam", 1e-2, freeze=("conv_*", "dense_*")),
        ),
    }.items():
        trainer = jaxdl.Trainer(model, seed=1, **options)
        trainer.fit((x_pre[few], y_pre[few]), epochs=30, batch_size=10, verbose=False)
        scores[name] = trainer.evaluate((x_test, y_test))["accuracy"]
    assert scores["frozen"] >= 0.97, scores
    assert scores["frozen"] >= scores["random"] + 0.08, scores
