"""RNNClassifier's readouts against NumPy computations from the RNN's per-step outputs, their
indifference to padding, and RNN on (B, T) scalar sequences."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxdl
from jaxdl.models import RNN, RNNClassifier
from jaxdl.models.rnn import READOUTS
from jaxdl.train.export import export_model, load_model

H, C = 4, 3
LENGTHS = np.array([5, 2, 0, 3])  # an empty sequence among them


def sequences(batch=4, steps=5, features=2, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, steps, features)).astype(np.float32)


def with_junk(x, lengths, extra):
    """``x`` with large values at every step past each length, and ``extra`` junk steps more."""
    junk = np.concatenate([x, np.zeros((x.shape[0], extra, x.shape[2]), x.dtype)], axis=1)
    for b, length in enumerate(lengths):
        junk[b, length:] = 50.0 * np.random.default_rng(b).normal(size=junk[b, length:].shape)
    return junk


def classifier(readout, bidirectional, cell="gru", num_layers=1):
    return RNNClassifier(
        cell, H, num_layers, num_classes=C, bidirectional=bidirectional, readout=readout
    )


def random_params(model, x, seed=0):
    """Parameters of ``model``'s shapes, drawn in NumPy, each top-level entry from its own
    seed, so classifiers that differ in their readout share their "rnn" parameters.
    (``init`` would compile the initialisers, an orthogonal one among them, for every model.)"""
    shapes = jax.eval_shape(model.init, jax.random.key(0), x)["params"]

    def draw(name, tree):
        rng = np.random.default_rng([seed, sum(map(ord, name))])
        return jax.tree.map(lambda s: (0.5 * rng.normal(size=s.shape)).astype(np.float32), tree)

    return {name: draw(name, tree) for name, tree in shapes.items()}


@functools.cache
def per_step_outputs(bidirectional, cell="gru", num_layers=1):
    """The RNN's own per-step outputs (B, T, D) on ``sequences()``, from the "rnn" parameters
    every classifier of that RNN shares."""
    rnn, x = RNN(cell, H, num_layers, bidirectional), sequences()
    params = random_params(classifier("last", bidirectional, cell, num_layers), x)["rnn"]
    return np.asarray(jax.jit(rnn.apply)({"params": params}, x, LENGTHS))


@functools.cache
def run(readout, bidirectional, cell="gru", num_layers=1):
    """A classifier's parameters, and in one call its outputs on ``sequences()`` padded with
    zeros to 8 steps (rows 0-3) and on the same sequences with junk at every step past
    ``LENGTHS`` (rows 4-7); "flatten", built for init's T, keeps T = 5 steps."""
    model, x = classifier(readout, bidirectional, cell, num_layers), sequences()
    extra = 0 if readout == "flatten" else 3
    zeros = np.concatenate([x, np.zeros((len(x), extra, x.shape[2]), x.dtype)], axis=1)
    both = np.concatenate([zeros, with_junk(x, LENGTHS, extra)])
    params = random_params(model, x)
    y = jax.jit(model.apply)({"params": params}, both, np.concatenate([LENGTHS, LENGTHS]))
    return params, np.asarray(y)[: len(x)], np.asarray(y)[len(x) :]


def numpy_readout(readout, h, lengths, params, hidden):
    """What the output layer reads, computed in NumPy from the per-step outputs h (B, T, D)."""
    batch, steps, _ = h.shape
    valid = np.arange(steps)[None, :] < lengths[:, None]
    if readout == "last":  # forward: after the last real step; backward: after the first step
        # (an empty sequence never leaves its initial state, zeros)
        forward = np.where(lengths[:, None] > 0, h[np.arange(batch), lengths - 1, :hidden], 0.0)
        return np.concatenate([forward, h[:, 0, hidden:]], axis=1)
    rows = []
    for b in range(batch):
        real = h[b, : lengths[b]]
        if len(real) == 0 and readout != "flatten":
            rows.append(np.zeros(h.shape[2]))
        elif readout == "mean":
            rows.append(real.mean(axis=0))
        elif readout == "max":
            rows.append(real.max(axis=0))
        elif readout == "flatten":
            rows.append(np.where(valid[b][:, None], h[b], 0.0).reshape(-1))
        else:  # attention: softmax of h_t . q over the real steps
            score = real @ np.asarray(params["attention"]["kernel"], np.float64)[:, 0]
            weight = np.exp(score - score.max())
            rows.append((weight / weight.sum()) @ real)
    return np.stack(rows)


def dense(params, v):
    return v @ np.asarray(params["kernel"], np.float64) + np.asarray(params["bias"], np.float64)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("readout", READOUTS)
def test_readout_equals_numpy_from_the_per_step_outputs(readout, bidirectional):
    params, y, _ = run(readout, bidirectional)
    h = per_step_outputs(bidirectional).astype(np.float64)  # 5 steps: none appended
    expected = dense(params["output"], numpy_readout(readout, h, LENGTHS, params, H))
    np.testing.assert_allclose(y, expected, atol=1e-5, rtol=1e-5)


CASES = [(readout, bi, "gru", 1) for readout in READOUTS for bi in (False, True)] + [
    ("last", True, "lstm", 2),
    ("attention", True, "simple", 1),
]


@pytest.mark.parametrize(("readout", "bidirectional", "cell", "num_layers"), CASES)
def test_steps_past_the_lengths_never_change_the_result(readout, bidirectional, cell, num_layers):
    _, y, y_junk = run(readout, bidirectional, cell, num_layers)
    np.testing.assert_allclose(y_junk, y, atol=1e-6, rtol=0)


def test_the_junk_is_junk():
    x = sequences()
    junk = with_junk(x, LENGTHS, 3)
    assert junk.shape == (4, 8, 2) and np.abs(junk[0, 5:]).max() > 10
    assert np.array_equal(junk[1, :2], x[1, :2]) and np.abs(junk[1, 2:5] - x[1, 2:5]).max() > 10


def test_without_lengths_every_step_counts():
    model, x = classifier("mean", True), sequences()
    params, *_ = run("mean", True)
    full = np.full(len(x), x.shape[1])
    without, with_full = jax.jit(
        lambda p: (model.apply({"params": p}, x), model.apply({"params": p}, x, full))
    )(params)
    np.testing.assert_allclose(without, with_full, atol=1e-6, rtol=0)


@pytest.mark.parametrize("readout", READOUTS)
def test_an_empty_sequence_reads_as_zeros(readout):
    params, y, _ = run(readout, True)
    assert LENGTHS[2] == 0 and not per_step_outputs(True)[2].any()
    np.testing.assert_array_equal(y[2], params["output"]["bias"])


@pytest.mark.parametrize("readout", ["max", "attention"])
def test_masked_steps_leave_the_gradients_finite(readout):
    # both put -inf at the masked steps; an empty sequence masks all of its steps
    model, x = classifier(readout, False, "simple"), with_junk(sequences(), LENGTHS, 0)
    params = random_params(model, x)
    grads = jax.jit(jax.grad(lambda p: model.apply({"params": p}, x, LENGTHS).sum()))(params)
    assert all(np.isfinite(g).all() and g.any() for g in jax.tree.leaves(grads))


def test_last_readout_is_the_default_and_keeps_the_parameter_tree():
    x = sequences()
    default = RNNClassifier("lstm", H, num_classes=C, bidirectional=True)
    assert default == RNNClassifier("lstm", H, num_classes=C, bidirectional=True, readout="last")
    params = jax.eval_shape(default.init, jax.random.key(0), x)["params"]
    rnn = jax.eval_shape(RNN("lstm", H, bidirectional=True).init, jax.random.key(0), x)
    assert jax.tree.map(jnp.shape, params) == {
        "rnn": jax.tree.map(jnp.shape, rnn["params"]),
        "output": {"kernel": (2 * H, C), "bias": (C,)},
    }


def test_each_readout_has_the_parameters_its_docstring_names():
    x = sequences()
    for readout in READOUTS:
        model = classifier(readout, True)
        params = jax.eval_shape(model.init, jax.random.key(0), x)["params"]
        width = (5 if readout == "flatten" else 1) * 2 * H
        assert params["output"]["kernel"].shape == (width, C)
        extra = {"attention": {"kernel": (2 * H, 1)}} if readout == "attention" else {}
        assert {k: v for k, v in jax.tree.map(jnp.shape, params).items() if k != "rnn"} == {
            "output": {"kernel": (width, C), "bias": (C,)},
            **extra,
        }


def test_flatten_refuses_another_number_of_steps():
    model = classifier("flatten", False)
    params, *_ = run("flatten", False)
    with pytest.raises(ValueError, match=r"readout='flatten'.*initialised for 5 time steps, got 7"):
        jax.eval_shape(model.apply, {"params": params}, sequences(steps=7))


def test_bad_readout_and_lengths_are_refused():
    with pytest.raises(ValueError, match=r"RNNClassifier.readout: expected one of .*'pool'"):
        RNNClassifier("gru", H, readout="pool")
    model = classifier("mean", False)
    params, *_ = run("mean", False)
    with pytest.raises(ValueError, match=r"lengths: expected shape \(4,\).*got shape \(3,\)"):
        jax.eval_shape(model.apply, {"params": params}, sequences(), np.array([1, 2, 3]))


def test_rnn_reads_a_b_t_input_as_b_t_1():
    x = sequences(features=1)
    rnn = RNN("gru", H, num_layers=2, bidirectional=True)
    variables = {"params": random_params(rnn, x[..., 0])}
    assert variables["params"]["layer0"]["input"]["kernel"].shape == (1, 3 * H)
    # and RNNClassifier, which reads (B, T) the same way, gives what its RNN gives
    model = RNNClassifier("gru", H, num_classes=C, bidirectional=True, readout="mean")
    params = random_params(model, x)

    def both(v, p):
        return (
            rnn.apply(v, x[..., 0], LENGTHS),
            rnn.apply(v, x, LENGTHS),
            model.apply({"params": p}, x[..., 0]),
            model.apply({"params": p}, x),
        )

    flat, full, flat_classified, full_classified = jax.jit(both)(variables, params)
    np.testing.assert_array_equal(flat, full)
    np.testing.assert_array_equal(flat_classified, full_classified)
    with pytest.raises(ValueError, match=r"RNN: x: expected shape \(B, T, F\) or \(B, T\)"):
        jax.eval_shape(rnn.apply, variables, x[..., None])


def spikes(n, steps=12, seed=0):
    """(n, steps) noise; class 1 sequences hold one spike of +3 at a random step."""
    rng = np.random.default_rng(seed)
    x = 0.3 * rng.normal(size=(n, steps)).astype(np.float32)
    y = rng.integers(0, 2, n).astype(np.int32)
    x[np.arange(n), rng.integers(0, steps, n)] += 3.0 * y
    return x, y


def test_a_mean_readout_bidirectional_gru_learns_to_find_a_spike():
    train, test = spikes(256, seed=0), spikes(256, seed=1)
    model = RNNClassifier("gru", 8, num_classes=2, bidirectional=True, readout="mean")
    trainer = jaxdl.Trainer(model, learning_rate=1e-2, seed=0)
    trainer.fit(train, epochs=6, batch_size=32, verbose=False)
    assert trainer.evaluate(test)["accuracy"] >= 0.95


def test_an_attention_readout_classifier_exports_and_loads(tmp_path):
    model = RNNClassifier("gru", H, num_classes=C, bidirectional=True, readout="attention")
    params, *_ = run("attention", True)
    export_model(tmp_path / "model", model, {"params": params})
    loaded, variables = load_model(tmp_path / "model")
    assert loaded == model and loaded.readout == "attention"
    assert jax.tree.structure(variables["params"]) == jax.tree.structure(params)
    for got, want in zip(jax.tree.leaves(variables["params"]), jax.tree.leaves(params)):
        np.testing.assert_array_equal(got, want)
