"""``fit``'s Keras-style arguments: ``fit(x, y)``, ``sample_weight``, several inputs (a dict of
arrays), ``validation_split`` / ``validation_freq``, and the run-length controls
``max_steps``, ``steps_per_epoch`` and ``fast_dev_run``."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxdl


def blobs(n=60, features=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n).astype(np.int32)
    x = rng.normal(size=(n, features)).astype(np.float32) + y[:, None]
    return x, y


def linear(seed=0, **kw):
    return jaxdl.Trainer(jaxdl.models.MLP(features=(3,)), optimizer="sgd", seed=seed, **kw)


def params_of(trainer):
    return [np.asarray(p) for p in jax.tree.leaves(jax.device_get(trainer.state.params))]


def assert_same_params(a, b, tol=0.0):
    for p, q in zip(params_of(a), params_of(b), strict=True):
        np.testing.assert_allclose(p, q, rtol=tol, atol=tol)


def test_fit_x_y_is_fit_of_the_pair():
    x, y = blobs()
    a, b = linear(), linear()
    a.fit(x, y, epochs=2, batch_size=16, verbose=False)
    b.fit((x, y), epochs=2, batch_size=16, verbose=False)
    assert_same_params(a, b)


def log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def test_evaluate_with_sample_weights_matches_numpy():
    x, y = blobs(n=50)
    w = np.random.default_rng(1).uniform(0, 3, len(x)).astype(np.float32)
    trainer = linear()
    trainer.fit(x, y, epochs=1, batch_size=16, verbose=False)
    logits = trainer.predict(x).astype(np.float64)
    losses = -log_softmax(logits)[np.arange(len(y)), y]
    correct = (logits.argmax(axis=1) == y).astype(np.float64)
    got = trainer.evaluate(x, y, sample_weight=w, batch_size=16)  # 50 rows: a padded batch
    assert got["loss"] == pytest.approx(np.sum(w * losses) / len(x), rel=1e-5)
    assert got["accuracy"] == pytest.approx(np.sum(w * correct) / np.sum(w), rel=1e-5)
    plain = trainer.evaluate(x, y)
    assert plain["loss"] == pytest.approx(losses.mean(), rel=1e-5)


@pytest.mark.parametrize("steps_per_call", ["epoch", 1])
def test_sample_weights_multiply_each_examples_loss(steps_per_call):
    x, y = blobs(n=48)
    # one full-batch SGD step: doubling every weight is doubling the learning rate
    doubled = linear(steps_per_call=steps_per_call, learning_rate=0.1)
    doubled.fit(x, y, sample_weight=np.full(len(x), 2.0), batch_size=48, verbose=False)
    faster = linear(steps_per_call=steps_per_call, learning_rate=0.2)
    faster.fit(x, y, batch_size=48, verbose=False)
    assert_same_params(doubled, faster, tol=1e-6)
    # an example of weight 0 is not learned from: its label does not matter
    w = (np.arange(len(x)) % 4 != 0).astype(np.float32)
    relabelled = y.copy()
    relabelled[w == 0] = (y[w == 0] + 1) % 3
    a = linear(steps_per_call=steps_per_call)
    a.fit(x, y, sample_weight=w, epochs=2, batch_size=16, verbose=False)
    b = linear(steps_per_call=steps_per_call)
    b.fit(x, relabelled, sample_weight=w, epochs=2, batch_size=16, verbose=False)
    assert_same_params(a, b, tol=1e-6)
    c = linear(steps_per_call=steps_per_call)
    c.fit(x, relabelled, epochs=2, batch_size=16, verbose=False)
    assert not np.allclose(params_of(a)[1], params_of(c)[1])  # the weights did something


def test_sample_weights_are_refused_by_name():
    x, y = blobs()
    with pytest.raises(ValueError, match=r"sample_weight: expected one non-negative number .*60"):
        linear().fit(x, y, sample_weight=np.ones(3), verbose=False)
    with pytest.raises(ValueError, match="sample_weight: expected finite non-negative"):
        linear().fit(x, y, sample_weight=-np.ones(len(x)), verbose=False)


class TwoInputs(nn.Module):
    """An image-like and a tabular input, joined before one dense layer."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        joined = jnp.concatenate([x["image"].reshape(len(x["image"]), -1), x["table"]], axis=1)
        return nn.Dense(3, name="out")(joined)


class OneInput(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(3, name="out")(x)


@pytest.mark.parametrize("steps_per_call", ["epoch", 1])
def test_a_dict_input_model_trains_as_the_same_model_on_joined_inputs(steps_per_call, tmp_path):
    x, y = blobs(n=70, features=6)
    inputs = {"image": x[:, :4].reshape(-1, 2, 2), "table": x[:, 4:]}
    a = jaxdl.Trainer(TwoInputs(), seed=3, steps_per_call=steps_per_call)
    b = jaxdl.Trainer(OneInput(), seed=3, steps_per_call=steps_per_call)
    a.fit(inputs, y, epochs=3, batch_size=16, validation_split=0.2, verbose=False)
    history = b.fit(x, y, epochs=3, batch_size=16, validation_split=0.2, verbose=False)
    assert_same_params(a, b, tol=1e-6)
    np.testing.assert_allclose(a.predict(inputs), b.predict(x), rtol=1e-5, atol=1e-6)
    assert a.evaluate(inputs, y)["loss"] == pytest.approx(b.evaluate(x, y)["loss"], rel=1e-5)
    assert a.run.history["val_loss"] == pytest.approx(history["val_loss"], rel=1e-5)
    with pytest.raises(ValueError, match=r"table has feature axes \(3,\), the model was built"):
        a.predict({"image": inputs["image"], "table": x[:, :3]})


def test_a_dict_input_run_resumes_from_its_checkpoint(tmp_path):
    x, y = blobs(n=40, features=6)
    inputs = {"image": x[:, :4].reshape(-1, 2, 2), "table": x[:, 4:]}
    straight = jaxdl.Trainer(TwoInputs(), seed=0)
    straight.fit(inputs, y, epochs=4, batch_size=8, verbose=False)
    first = jaxdl.Trainer(TwoInputs(), seed=0, checkpoint=jaxdl.Checkpoint(tmp_path))
    first.fit(inputs, y, epochs=2, batch_size=8, verbose=False)
    again = jaxdl.Trainer(TwoInputs(), seed=0, checkpoint=jaxdl.Checkpoint(tmp_path))
    again.fit(inputs, y, epochs=4, batch_size=8, verbose=False, resume=True)
    assert_same_params(straight, again)


def test_validation_split_is_stratified_and_held_out():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3, dtype=np.int32), [60, 30, 10])
    x = (rng.normal(size=(100, 4)) + y[:, None]).astype(np.float32)
    trainer = linear()
    history = trainer.fit(x, y, epochs=1, batch_size=10, validation_split=0.2, verbose=False)
    assert trainer.state.step == 8  # 80 training rows: 8 batches of 10
    # the held-out rows: the ones whose loss the history reports; find them by class counts
    train, val = jaxdl.data.sampling.stratified_split(y, (0.8, 0.2), seed=0)
    assert np.bincount(y[val]).tolist() == [12, 6, 2]
    assert history["val_loss"][0] == pytest.approx(trainer.evaluate(x[val], y[val])["loss"])
    with pytest.raises(ValueError, match="validation_split: give validation_data or"):
        linear().fit(x, y, validation_split=0.2, validation_data=(x, y), verbose=False)
    with pytest.raises(ValueError, match=r"validation_split: expected a fraction in \[0, 1\)"):
        linear().fit(x, y, validation_split=1.5, verbose=False)


def test_validation_freq_validates_every_kth_epoch():
    x, y = blobs()
    history = linear().fit(x, y, epochs=4, validation_data=(x, y), validation_freq=2, verbose=False)
    assert len(history["loss"]) == 4 and len(history["val_loss"]) == 2


@pytest.mark.parametrize("steps_per_call", ["epoch", 1])
def test_max_steps_stops_inside_an_epoch(steps_per_call):
    x, y = blobs(n=48)  # 3 batches of 16 per epoch
    trainer = linear(steps_per_call=steps_per_call)
    history = trainer.fit(x, y, epochs=10, batch_size=16, max_steps=7, verbose=False)
    assert int(trainer.state.step) == 7
    assert len(history["loss"]) == 2  # the complete epochs
    again = trainer.fit(x, y, epochs=1, batch_size=16, max_steps=7, verbose=False)
    assert int(trainer.state.step) == 7 and again == {}  # nothing left to do


@pytest.mark.parametrize("steps_per_call", ["epoch", 1])
def test_steps_per_epoch_cuts_each_epoch(steps_per_call):
    x, y = blobs(n=64)
    trainer = linear(steps_per_call=steps_per_call)
    history = trainer.fit(x, y, epochs=3, batch_size=8, steps_per_epoch=2, verbose=False)
    assert int(trainer.state.step) == 6 and len(history["loss"]) == 3
    with pytest.raises(ValueError, match="steps_per_epoch: expected at most the 8 batches"):
        linear().fit(x, y, batch_size=8, steps_per_epoch=9, verbose=False)


def test_fast_dev_run_runs_one_batch_and_writes_no_checkpoint(tmp_path):
    x, y = blobs(n=64)
    trainer = linear(checkpoint=jaxdl.Checkpoint(tmp_path / "runs"))
    history = trainer.fit(
        x, y, epochs=50, batch_size=8, validation_data=(x, y), fast_dev_run=True, verbose=False
    )
    assert int(trainer.state.step) == 1
    assert len(history["loss"]) == 1 and len(history["val_loss"]) == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_auto_runs_a_convolutional_step_per_batch_on_the_cpu_and_says_so(caplog):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(32, 6, 6, 1)).astype(np.float32)
    labels = rng.integers(0, 2, 32).astype(np.int32)
    conv = jaxdl.Trainer(jaxdl.models.CNN(channels=(4,), dense=(), num_classes=2))
    with caplog.at_level("INFO", logger="jaxdl"):
        conv.fit(images, labels, batch_size=16, verbose=False)
    assert conv.mode_chosen == 1 and "XLA:CPU runs convolutions slower" in caplog.text
    dense = linear()
    dense.fit(*blobs(), verbose=False)
    assert dense.mode_chosen == "epoch"
    assert linear(steps_per_call=1).mode_chosen is None  # chosen by the user, not by auto


def test_monitors_of_validation_skip_the_epochs_validation_freq_leaves_out(tmp_path):
    x, y = blobs()
    stop = jaxdl.EarlyStopping(monitor="val_loss", patience=1)
    trainer = linear(checkpoint=jaxdl.Checkpoint(tmp_path, keep_best="val_loss"))
    history = trainer.fit(
        x, y, epochs=4, validation_data=(x, y), validation_freq=2, callbacks=[stop], verbose=False
    )
    assert len(history["val_loss"]) == 2 and stop.best == min(history["val_loss"])
    with pytest.raises(ValueError, match="EarlyStopping monitors 'val_auc', which this run"):
        linear().fit(x, y, validation_data=(x, y), callbacks=[jaxdl.EarlyStopping("val_auc")])
