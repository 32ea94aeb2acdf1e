"""Autoencoders, VAEs and GANs: closed forms against Monte Carlo, the ELBO against an exact
likelihood, unbiased reparameterised gradients, and the GAN step's separation of networks."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxdl
from jaxdl.models import GAN, VAE, Autoencoder, Discriminator, Generator
from jaxdl.models.autoencoder import gaussian_kl, independent_pixel_nll, reparameterize
from jaxdl.train import gan_optimizer, objectives


def digits(binary: bool):
    from sklearn.datasets import load_digits

    x = load_digits().data / 16.0
    x = (x >= 0.5) if binary else x
    x = x.astype(np.float32)[np.random.default_rng(0).permutation(len(x))]
    return x[:1437], x[1437:]


# ---------------------------------------------------------------------- VAE arithmetic


def test_closed_form_kl_matches_a_monte_carlo_estimate():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(4, 3)).astype(np.float32)
    logvar = rng.normal(scale=0.5, size=(4, 3)).astype(np.float32)
    keys = jax.random.split(jax.random.key(0), 40_000)
    z = jax.vmap(lambda k: reparameterize(k, mean, logvar))(keys)  # (S, 4, 3)
    log_q = -0.5 * (((z - mean) ** 2) / np.exp(logvar) + logvar + np.log(2 * np.pi)).sum(-1)
    log_p = -0.5 * (z**2 + np.log(2 * np.pi)).sum(-1)
    samples = np.asarray(log_q - log_p, np.float64)
    estimate, error = samples.mean(0), samples.std(0) / np.sqrt(len(samples))
    closed = np.asarray(gaussian_kl(mean, logvar))
    assert np.all(np.abs(closed - estimate) < 4 * error), (closed, estimate, error)


def test_reparameterised_gradients_are_unbiased():
    # E[z^2] for z ~ N(m, exp(v)) is m^2 + exp(v): gradients 2m and exp(v)
    m, v = 0.7, -0.4
    f = lambda m, v, key: reparameterize(key, m, v) ** 2
    grads = jax.vmap(jax.grad(f, argnums=(0, 1)), in_axes=(None, None, 0))(
        jnp.float32(m), jnp.float32(v), jax.random.split(jax.random.key(1), 100_000)
    )
    for g, exact in zip(grads, (2 * m, np.exp(v))):
        g = np.asarray(g, np.float64)
        assert abs(g.mean() - exact) < 4 * g.std() / np.sqrt(len(g))


@pytest.mark.parametrize("seed", range(3))
def test_elbo_of_a_linear_gaussian_vae_is_below_the_exact_log_likelihood(seed):
    # decoder x = W z + b + s * noise with z ~ N(0, I): p(x) = N(b, W W^T + s^2 I) exactly
    d, latent = 5, 2
    vae = VAE((d,), latent_dim=latent, hidden=(), likelihood="gaussian")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3, d)).astype(np.float32)
    variables = vae.init({"params": jax.random.key(seed), "latent": jax.random.key(9)}, x)
    params = jax.tree.map(lambda p: p + 0.3 * rng.normal(size=p.shape), variables["params"])
    params["log_scale"] = jnp.float32(-0.2)
    p = jax.tree.map(np.asarray, params)
    w, b = p["decoder"]["output"]["kernel"].T.astype(np.float64), p["decoder"]["output"]["bias"]
    s = np.exp(np.float64(p["log_scale"]))
    cov = w @ w.T + s**2 * np.eye(d)
    diff = x - b
    exact = -0.5 * (
        np.einsum("bi,ij,bj->b", diff, np.linalg.inv(cov), diff)
        + np.linalg.slogdet(cov)[1]
        + d * np.log(2 * np.pi)
    )
    # the ELBO in closed form for this model, from the encoder's (mean, logvar)
    mean, logvar = vae.apply({"params": params}, x, method=vae.encode)
    mean, var = np.asarray(mean, np.float64), np.exp(np.asarray(logvar, np.float64))
    residual = ((x - mean @ w.T - b) ** 2).sum(1) + (var * (w**2).sum(0)).sum(1)
    expected_log_lik = -0.5 * residual / s**2 - d * np.log(s) - 0.5 * d * np.log(2 * np.pi)
    elbo = expected_log_lik - 0.5 * (var + mean**2 - 1 - np.log(var)).sum(1)
    assert np.all(elbo < exact)
    # and the library's one-sample negative ELBO estimates exactly that
    keys = jax.random.split(jax.random.key(seed), 20_000)
    losses = jax.vmap(lambda k: vae.apply({"params": params}, x, key=k, method=vae.losses)["loss"])
    samples = -np.asarray(losses(keys), np.float64)  # (S, 3) ELBO samples
    error = samples.std(0) / np.sqrt(len(samples))
    assert np.all(np.abs(samples.mean(0) - elbo) < 4 * error)


def test_vae_methods_shapes_and_ranges():
    vae = VAE((8, 8, 1), latent_dim=4, hidden=(16,), kind="conv")
    x = np.random.default_rng(0).random((3, 8, 8, 1)).astype(np.float32)
    variables = vae.init({"params": jax.random.key(0), "latent": jax.random.key(1)}, x)
    out = vae.apply(variables, x, rngs={"latent": jax.random.key(2)})
    chex.assert_shape([out.logits, out.mean, out.logvar, out.z], [(3, 8, 8, 1), *[(3, 4)] * 3])
    samples = vae.apply(variables, jax.random.key(3), 5, method=vae.sample)
    recon = vae.apply(variables, x, method=vae.reconstruct)
    assert samples.shape == (5, 8, 8, 1) and recon.shape == x.shape
    assert 0 <= float(samples.min()) and float(samples.max()) <= 1
    # without a key, inference uses the posterior mean: deterministic
    a, b = vae.apply(variables, x), vae.apply(variables, x)
    np.testing.assert_array_equal(a.z, a.mean)
    np.testing.assert_array_equal(a.logits, b.logits)
    with pytest.raises(ValueError, match=r"H and W divisible by 4, got input_shape \(6, 6, 1\)"):
        VAE((6, 6, 1), kind="conv").init(jax.random.key(0), np.zeros((1, 6, 6, 1)))
    with pytest.raises(ValueError, match=r"x: expected shape \(B, 8, 8, 1\), got \(3, 64\)"):
        vae.apply(variables, x.reshape(3, 64), method=vae.reconstruct)


# ---------------------------------------------------------------------- learning


def test_vae_on_binarised_digits_beats_the_independent_pixel_baseline():
    train, test = digits(binary=True)
    baseline = independent_pixel_nll(train, test)
    trainer = jaxdl.Trainer(
        VAE((64,), latent_dim=8),
        loss="elbo",
        optimizer=jaxdl.Optimizer("adam", 1e-3, schedule="cosine"),
        seed=0,
    )
    history = trainer.fit(train, epochs=100, batch_size=64, validation_data=test, verbose=False)
    assert list(history)[0] == "loss" and {"reconstruction", "kl", "val_kl"} < set(history)
    test_nll, train_nll = trainer.evaluate(test)["loss"], trainer.evaluate(train)["loss"]
    assert test_nll <= 0.75 * baseline  # nats per image
    assert test_nll <= 1.10 * train_nll


def test_linear_autoencoder_reaches_the_pca_reconstruction_error():
    train, _ = digits(binary=False)
    centred = train - train.mean(0)
    k = 8
    _, singular, _ = np.linalg.svd(centred, full_matrices=False)
    pca_mse = float((singular[k:] ** 2).sum() / centred.size)  # the best any rank-k map does
    trainer = jaxdl.Trainer(
        Autoencoder((64,), latent_dim=k, hidden=()),
        loss="mse",
        metrics=(),
        learning_rate=3e-3,
        seed=0,
    )
    trainer.fit((centred, centred), epochs=150, batch_size=64, verbose=False)
    mse = trainer.evaluate((centred, centred))["loss"]
    assert pca_mse * 0.999 <= mse <= pca_mse * 1.05
    codes = trainer.model.apply({"params": trainer.state.params}, centred, method="encode")
    assert codes.shape == (len(train), k)


# ---------------------------------------------------------------------- GAN step


def gan_state(tx, seed=0):
    gan = GAN(Generator((8, 8, 1), (8, 4)), Discriminator((4, 8)), latent_dim=6)
    x = np.random.default_rng(seed).random((16, 8, 8, 1)).astype(np.float32)
    return jaxdl.create_train_state(gan, tx, x[:1], seed), {"x": x, "mask": np.ones(16)}


def gan_step(state, batch):
    train_step, _ = objectives.make_gan_steps(latent_dim=6)
    return jax.jit(train_step)(state, batch)


@pytest.mark.slow  # 14 s; the frozen-network twin runs in the default session
def test_gan_step_keeps_each_network_out_of_the_others_update():
    def after(g_lr, d_lr):
        state, batch = gan_state(gan_optimizer(optax.adam(g_lr), optax.adam(d_lr)))
        return state, gan_step(state, batch)[0]

    before, a = after(1e-3, 1e-3)
    _, b = after(1e-3, 0.5)  # only the discriminator's learning rate differs
    _, c = after(0.5, 1e-3)  # only the generator's
    same = lambda p, q: jax.tree.map(np.testing.assert_array_equal, p, q)
    same(a.params["generator"], b.params["generator"])
    same(a.params["discriminator"], c.params["discriminator"])
    moved = lambda p, q: any(
        not np.array_equal(u, v) for u, v in zip(*map(jax.tree.leaves, (p, q)))
    )
    assert moved(before.params["generator"], a.params["generator"])
    assert moved(before.params["discriminator"], a.params["discriminator"])
    assert moved(before.batch_stats, a.batch_stats)  # the generator's batch norm ran in training


def test_gan_step_with_a_frozen_network_leaves_it_bit_identical():
    for frozen in ("generator", "discriminator"):
        parts = {"generator": optax.adam(1e-3), "discriminator": optax.adam(1e-3)}
        parts[frozen] = optax.set_to_zero()
        state, batch = gan_state(gan_optimizer(**parts))
        new, metrics = gan_step(state, batch)
        jax.tree.map(np.testing.assert_array_equal, state.params[frozen], new.params[frozen])
        assert np.isfinite(metrics["loss"].compute())


@pytest.mark.slow  # the default run fits a GAN through the Trainer in test_checkpoint's export test
def test_gan_trains_through_the_trainer_and_samples():
    train, _ = digits(binary=False)
    images = train.reshape(-1, 8, 8, 1)
    gan = GAN(Generator((8, 8, 1), (16, 8)), Discriminator((8, 16)), latent_dim=8)
    trainer = jaxdl.Trainer(gan, loss="gan", learning_rate=2e-4, seed=0)
    history = trainer.fit(images[:256], epochs=2, batch_size=64, verbose=False)
    assert list(history)[0] == "loss"
    assert set(history) == {"loss", "d_loss", "g_loss", "d_real", "d_fake", "lr"}
    assert 0 < history["d_real"][-1] < 1 and np.isfinite(history["loss"]).all()
    samples = gan.apply(trainer.state.variables(), jax.random.key(0), 7, method="sample")
    assert samples.shape == (7, 8, 8, 1) and 0 <= float(samples.min()) <= float(samples.max()) <= 1
    assert trainer.predict(images[:5]).shape == (5,)  # the discriminator's logits
    with pytest.raises(ValueError, match="the 'gan' task reports its own terms"):
        jaxdl.Trainer(gan, loss="gan", metrics=("accuracy",))


def test_independent_pixel_baseline_by_hand():
    train = np.array([[1, 0], [1, 1], [0, 0], [1, 0]], np.float32)  # means 0.75, 0.25
    test = np.array([[1, 1]], np.float32)
    assert independent_pixel_nll(train, test) == pytest.approx(-np.log(0.75) - np.log(0.25))


@pytest.mark.slow
def test_gan_example_reaches_a_classifier_score_of_7(tmp_path):
    """The full example (about 3 minutes on 2 cores): samples a digit classifier scores >= 7."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[2] / "examples" / "gan.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True)
    numbers = json.loads((tmp_path / "gan_digits" / "metrics.json").read_text())
    assert numbers["classifier_score_samples"] >= 7.0
    assert numbers["classifier_score_real_test"] >= 9.0  # the judge itself is sound


def test_vae_example_runs_on_tfds_mnist_under_mock_data(tmp_path, monkeypatch, capsys):
    import importlib.util
    import json
    import sys
    from pathlib import Path

    import tensorflow_datasets as tfds

    script = Path(__file__).parents[2] / "examples" / "vae.py"
    spec = importlib.util.spec_from_file_location("vae_example", script)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    argv = ["vae.py", "--dataset", "mnist", "--quick", "--out", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    with tfds.testing.mock_data(num_examples=200):
        example.main()
    numbers = json.loads((tmp_path / "vae_mnist" / "metrics.json").read_text())
    assert np.isfinite(numbers["test_negative_elbo_nats"])
    assert "test negative ELBO" in capsys.readouterr().out
    for name in ("reconstructions", "samples", "interpolation", "loss_curve"):
        assert (tmp_path / "vae_mnist" / f"{name}.png").stat().st_size > 0
