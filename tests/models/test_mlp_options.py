"""MLP's residual, normalisation and per-layer dropout options against NumPy computations
from its parameters."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxdl
from jaxdl.models import MLP
from jaxdl.train.export import export_model, load_model


def inputs(batch=5, features=6, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, features)).astype(np.float32)


def random_params(model, x, seed=0):
    """Parameters of ``model``'s shapes, drawn in NumPy (LayerNorm scales around 1)."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(model.init, jax.random.key(0), x)["params"]

    def draw(path, s):
        centre = 1.0 if path[-1].key == "scale" else 0.0
        return (centre + 0.5 * rng.normal(size=s.shape)).astype(np.float32)

    return jax.tree_util.tree_map_with_path(draw, shapes)


def dense(p, v):
    return v @ np.asarray(p["kernel"], np.float64) + np.asarray(p["bias"], np.float64)


def layer_norm(p, v, eps=1e-6):  # nn.LayerNorm's default epsilon
    mean = v.mean(-1, keepdims=True)
    var = ((v - mean) ** 2).mean(-1, keepdims=True)
    return (v - mean) / np.sqrt(var + eps) * np.asarray(p["scale"]) + np.asarray(p["bias"])


def relu(v):
    return np.maximum(v, 0.0)


# widths 6 -> 6 -> 6 -> 4 -> 4 -> 3: the input is 6 wide too, but only hidden layers 1
# (6 after 6) and 3 (4 after 4) have a hidden layer of their width before them
FEATURES = (6, 6, 4, 4, 3)
SKIPS = (False, True, False, True)


@pytest.mark.parametrize("norm", [None, "layer"])
def test_residual_mlp_equals_numpy(norm):
    model, x = MLP(FEATURES, residual=True, norm=norm), inputs()
    params = random_params(model, x)
    v = x.astype(np.float64)
    for i, skip in enumerate(SKIPS):
        y = dense(params[f"dense_{i}"], v)
        if norm == "layer":
            y = layer_norm(params[f"norm_{i}"], y)
        v = v + relu(y) if skip else relu(y)
    expected = dense(params["output"], v)
    got = jax.jit(model.apply)({"params": params}, x)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
    # and without residual=True, no layer adds its input
    plain = jax.jit(MLP(FEATURES, norm=norm).apply)({"params": params}, x)
    assert np.abs(np.asarray(plain) - expected).max() > 1e-2


def test_defaults_keep_the_parameter_tree():
    x = inputs()
    variables = jax.eval_shape(MLP((6, 8, 3)).init, jax.random.key(0), x)
    assert jax.tree.map(jnp.shape, variables) == {
        "params": {
            "dense_0": {"kernel": (6, 6), "bias": (6,)},
            "dense_1": {"kernel": (6, 8), "bias": (8,)},
            "output": {"kernel": (8, 3), "bias": (3,)},
        }
    }
    layer = jax.eval_shape(MLP((6, 8, 3), norm="layer").init, jax.random.key(0), x)
    assert set(layer) == {"params"}
    assert jax.tree.map(jnp.shape, layer["params"]["norm_1"]) == {"scale": (8,), "bias": (8,)}


def test_batch_norm_is_norm_batch():
    x = inputs()
    old, new = MLP((6, 8, 3), batch_norm=True), MLP((6, 8, 3), norm="batch")
    variables = old.init(jax.random.key(0), x)
    assert jax.tree.structure(variables) == jax.tree.structure(
        new.init(jax.random.key(0), x)
    ) and set(variables) == {"params", "batch_stats"}
    for train in (False, True):
        mutable = ["batch_stats"] if train else False
        a = old.apply(variables, x, train=train, mutable=mutable)
        b = new.apply(variables, x, train=train, mutable=mutable)
        for p, q in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_array_equal(p, q)
    MLP((6, 8, 3), batch_norm=True, norm="batch")  # both saying the same is no conflict
    with pytest.raises(ValueError, match=r"batch_norm=True asks for norm='batch'.*'layer'"):
        MLP((6, 3), batch_norm=True, norm="layer")
    with pytest.raises(ValueError, match=r"MLP.norm: expected None or one of .*'group'"):
        MLP((6, 3), norm="group")


def test_per_layer_dropout_rates_of_the_wrong_length_are_refused():
    with pytest.raises(ValueError, match=r"MLP.dropout_rate: .*one rate per hidden layer \(2 "):
        MLP((8, 8, 3), dropout_rate=(0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match=r"MLP.dropout_rate: .*\(0 for features \(3,\)\), got 1"):
        MLP((3,), dropout_rate=[0.1])
    with pytest.raises(ValueError, match=r"MLP.dropout_rate\[1\]: expected a finite number"):
        MLP((8, 8, 3), dropout_rate=(0.1, 1.0))
    with pytest.raises(TypeError, match=r"MLP.dropout_rate: expected a number, got str"):
        MLP((8, 8, 3), dropout_rate="0.1")


def test_per_layer_dropout_drops_only_where_asked():
    model, x = MLP((16, 16, 3), dropout_rate=(0.0, 0.5)), inputs()
    params = random_params(model, x)
    y, state = model.apply(
        {"params": params},
        x,
        train=True,
        rngs={"dropout": jax.random.key(3)},
        capture_intermediates=lambda m, _: isinstance(m, nn.Dropout),
    )
    dropped = state["intermediates"]
    assert set(dropped) == {"Dropout_1"}  # layer 0 has rate 0: no dropout at all
    kept = relu(dense(params["dense_1"], relu(dense(params["dense_0"], x.astype(np.float64)))))
    out = np.asarray(dropped["Dropout_1"]["__call__"][0], np.float64)
    zero = out == 0
    assert 0 < zero[kept > 0].mean() < 1
    np.testing.assert_allclose(out[~zero], 2.0 * kept[~zero], rtol=1e-5)  # 1 / (1 - 0.5)
    np.testing.assert_allclose(y, dense(params["output"], out), atol=1e-5, rtol=1e-5)


def test_one_rate_per_layer_masks_as_one_rate_for_all():
    x = inputs()
    params = random_params(MLP((16, 16, 3)), x)
    options = {"train": True, "rngs": {"dropout": jax.random.key(3)}}
    same = MLP((16, 16, 3), dropout_rate=0.3).apply({"params": params}, x, **options)
    each = MLP((16, 16, 3), dropout_rate=[0.3, 0.3]).apply({"params": params}, x, **options)
    np.testing.assert_array_equal(same, each)
    evaluation = MLP((16, 16, 3), dropout_rate=[0.3, 0.3]).apply({"params": params}, x)
    np.testing.assert_array_equal(evaluation, MLP((16, 16, 3)).apply({"params": params}, x))


def test_a_residual_layer_norm_mlp_with_per_layer_dropout_trains():
    x = np.random.default_rng(0).normal(size=(512, 4)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int32)  # XOR of signs: no linear model fits it
    model = MLP((32, 32, 32, 2), dropout_rate=[0.0, 0.1, 0.1], norm="layer", residual=True)
    trainer = jaxdl.Trainer(model, learning_rate=1e-2, seed=0)
    trainer.fit((x[:384], y[:384]), epochs=10, batch_size=32, verbose=False)
    assert trainer.evaluate((x[384:], y[384:]))["accuracy"] >= 0.9


def test_an_mlp_with_its_options_exports_and_loads(tmp_path):
    model = MLP((8, 8, 3), dropout_rate=[0.1, 0.2], norm="layer", residual=True)
    x = inputs()
    params = random_params(model, x)
    export_model(tmp_path / "model", model, {"params": params})
    loaded, variables = load_model(tmp_path / "model")
    assert loaded.dropout_rate == (0.1, 0.2)  # JSON's list comes back a tuple
    assert (loaded.norm, loaded.residual, loaded.batch_norm) == ("layer", True, False)
    np.testing.assert_array_equal(loaded.apply(variables, x), model.apply({"params": params}, x))


def test_an_export_written_before_norm_and_residual_existed_loads(tmp_path):
    model = MLP((8, 3), batch_norm=True)
    variables = model.init(jax.random.key(0), inputs())
    export_model(tmp_path / "model", model, variables)
    path = tmp_path / "model" / "model.json"
    saved = json.loads(path.read_text())
    for field in ("norm", "residual"):
        del saved["model"]["fields"][field]
    path.write_text(json.dumps(saved))
    loaded, loaded_variables = load_model(tmp_path / "model")
    assert loaded == model and set(loaded_variables) == {"params", "batch_stats"}
