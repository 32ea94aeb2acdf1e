"""Autoencoders and variational autoencoders, with MLP or convolutional encoder and decoder.

Inputs are (B, *input_shape): vectors (B, F) or images (B, H, W, C) with H and W divisible by
4 for the convolutional kind. A VAE draws its latent sample from the ``"latent"`` RNG stream
(``rngs={"latent": key}``) or from a key passed in, so every sample is a function of a key.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl import _checks

KINDS = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian")


def _check_shape(x: jax.Array, input_shape: Sequence[int]) -> None:
    if tuple(x.shape[1:]) != tuple(input_shape):
        raise ValueError(
            f"x: expected shape (B, {', '.join(map(str, input_shape))}), got {tuple(x.shape)}"
        )


class Encoder(nn.Module):
    """(B, *input_shape) -> (B, outputs): dense layers, or two stride-2 convolutions (32, 64
    channels) followed by dense layers for images."""

    outputs: int
    hidden: Sequence[int] = (256, 128)
    kind: str = "mlp"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.kind == "conv":
            chex.assert_rank(x, 4)
            for channels in (32, 64):
                x = nn.relu(nn.Conv(channels, (3, 3), strides=2, padding="SAME")(x))
        x = x.reshape(x.shape[0], math.prod(x.shape[1:]))
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.outputs, name="output")(x)


class Decoder(nn.Module):
    """(B, latent) -> (B, *output_shape), unbounded (logits or means): dense layers, or dense
    layers onto a (H/4, W/4, 64) map and two stride-2 transposed convolutions."""

    output_shape: Sequence[int]
    hidden: Sequence[int] = (128, 256)
    kind: str = "mlp"

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        for width in self.hidden:
            z = nn.relu(nn.Dense(width)(z))
        if self.kind == "conv":
            h, w, c = self.output_shape
            z = nn.relu(nn.Dense(h // 4 * w // 4 * 64)(z)).reshape(-1, h // 4, w // 4, 64)
            z = nn.relu(nn.ConvTranspose(32, (3, 3), strides=(2, 2), padding="SAME")(z))
            return nn.ConvTranspose(c, (3, 3), strides=(2, 2), padding="SAME", name="output")(z)
        size = math.prod(self.output_shape)
        return nn.Dense(size, name="output")(z).reshape(-1, *self.output_shape)


def _check_sizes(model) -> None:
    name = type(model).__name__
    shape = _checks.check_widths(model.input_shape, f"{name}.input_shape", allow_empty=False)
    _checks.check_int(model.latent_dim, f"{name}.latent_dim")
    _checks.check_widths(model.hidden, f"{name}.hidden")
    _check_options(model.kind, shape)


def _check_options(kind: str, input_shape: Sequence[int]) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "conv" and (len(input_shape) != 3 or input_shape[0] % 4 or input_shape[1] % 4):
        raise ValueError(
            f"kind='conv' needs images (H, W, C) with H and W divisible by 4, got input_shape "
            f"{tuple(input_shape)}"
        )


class Autoencoder(nn.Module):
    """x -> code -> reconstruction. ``__call__`` returns the decoder's output (B, *input_shape)
    (train it with ``mse``, or ``binary_cross_entropy`` on targets in [0, 1]); ``encode``
    gives the codes (B, latent_dim), ``decode`` maps codes back.

    With ``hidden=()`` both maps are linear: trained with ``mse`` this is PCA's subspace.

    Example:
      >>> model = jaxdl.models.Autoencoder(input_shape=(64,), latent_dim=8)
      >>> x = np.zeros((3, 64), np.float32)
      >>> variables = model.init(jax.random.key(0), x)
      >>> model.apply(variables, x).shape, model.apply(variables, x, method="encode").shape
      ((3, 64), (3, 8))
    """

    input_shape: Sequence[int]
    latent_dim: int = 16
    hidden: Sequence[int] = (256, 128)
    kind: str = "mlp"

    def __post_init__(self):
        _check_sizes(self)
        super().__post_init__()

    def setup(self):
        _check_options(self.kind, self.input_shape)
        self.encoder = Encoder(self.latent_dim, self.hidden, self.kind)
        self.decoder = Decoder(self.input_shape, tuple(reversed(self.hidden)), self.kind)

    def encode(self, x: jax.Array) -> jax.Array:
        """Codes (B, latent_dim) of x (B, *input_shape)."""
        _check_shape(x, self.input_shape)
        return self.encoder(x)

    def decode(self, z: jax.Array) -> jax.Array:
        """Reconstructions (B, *input_shape) of codes z (B, latent_dim)."""
        return self.decoder(z)

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        return self.decode(self.encode(x))


class VAEOutput(NamedTuple):
    """What a VAE's forward pass returns (a pytree).

    Attributes:
      logits: (B, *input_shape) decoder output: Bernoulli logits, or Gaussian means.
      mean, logvar: (B, latent_dim) the Gaussian posterior q(z|x).
      z: (B, latent_dim) the reparameterised sample ``mean + exp(logvar / 2) * eps``.
    """

    logits: jax.Array
    mean: jax.Array
    logvar: jax.Array
    z: jax.Array


def reparameterize(key: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """A sample of N(mean, exp(logvar)) as a differentiable function of (mean, logvar)."""
    eps = jax.random.normal(key, mean.shape, mean.dtype)
    return mean + jnp.exp(0.5 * logvar) * eps


def gaussian_kl(mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """KL(N(mean, exp(logvar)) || N(0, I)) in closed form, summed over the last axis: (B,)."""
    return 0.5 * jnp.sum(jnp.exp(logvar) + mean**2 - 1.0 - logvar, axis=-1)


def _sum_per_example(values: jax.Array) -> jax.Array:
    return values.reshape(values.shape[0], -1).sum(axis=1)


def bernoulli_nll(logits: jax.Array, x: jax.Array) -> jax.Array:
    """-log p(x | logits) of independent Bernoulli pixels, in nats per example: (B,).

    Targets in [0, 1] that are not binary are treated as probabilities (the cross-entropy).
    """
    return _sum_per_example(optax.sigmoid_binary_cross_entropy(logits, x))


def gaussian_nll(mean: jax.Array, log_scale: jax.Array, x: jax.Array) -> jax.Array:
    """-log N(x | mean, exp(log_scale)^2) summed over every non-batch axis: (B,)."""
    z = (x - mean) * jnp.exp(-log_scale)
    return _sum_per_example(0.5 * z**2 + log_scale + 0.5 * jnp.log(2 * jnp.pi))


class VAE(nn.Module):
    """Variational autoencoder (Kingma & Welling, 2014) with a Gaussian posterior.

    ``__call__(x)`` returns a :class:`VAEOutput`; ``losses(x)`` the per-example negative
    ELBO ``reconstruction + beta * kl`` in nats, with its two terms; ``sample(key, n)`` and
    ``reconstruct(x)`` return expected pixel values (B, *input_shape): probabilities for the
    Bernoulli decoder, means for the Gaussian one (whose scale is one learned number).

    Attributes:
      input_shape: shape of one example, e.g. (64,) or (8, 8, 1).
      latent_dim: size of z.
      hidden: encoder widths (the decoder mirrors them).
      kind: "mlp" or "conv".
      likelihood: "bernoulli" (targets in [0, 1]) or "gaussian".
      beta: weight of the KL term (beta-VAE); 1 gives the ELBO.

    Example:
      >>> vae = jaxdl.models.VAE(input_shape=(64,), latent_dim=4)
      >>> x = np.zeros((3, 64), np.float32)
      >>> variables = vae.init(jax.random.key(0), x)
      >>> vae.apply(variables, x).z.shape
      (3, 4)
      >>> vae.apply(variables, jax.random.key(1), 5, method="sample").shape
      (5, 64)
    """

    input_shape: Sequence[int]
    latent_dim: int = 8
    hidden: Sequence[int] = (256, 128)
    kind: str = "mlp"
    likelihood: str = "bernoulli"
    beta: float = 1.0

    def __post_init__(self):
        _check_sizes(self)
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(
                f"VAE.likelihood: expected one of {LIKELIHOODS}, got {self.likelihood!r}"
            )
        _checks.check_number(self.beta, "VAE.beta", 0.0)
        super().__post_init__()

    def setup(self):
        _check_options(self.kind, self.input_shape)
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")
        self.encoder = Encoder(2 * self.latent_dim, self.hidden, self.kind)
        self.decoder = Decoder(self.input_shape, tuple(reversed(self.hidden)), self.kind)
        if self.likelihood == "gaussian":
            self.log_scale = self.param("log_scale", nn.initializers.zeros, ())

    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The posterior's (mean, logvar), each (B, latent_dim)."""
        _check_shape(x, self.input_shape)
        mean, logvar = jnp.split(self.encoder(x), 2, axis=-1)
        return mean, logvar

    def decode(self, z: jax.Array) -> jax.Array:
        """Decoder output (B, *input_shape): logits (Bernoulli) or means (Gaussian)."""
        return self.decoder(z)

    def expected(self, logits: jax.Array) -> jax.Array:
        """E[x | z] from the decoder output: sigmoid(logits) or the Gaussian mean."""
        return jax.nn.sigmoid(logits) if self.likelihood == "bernoulli" else logits

    def __call__(self, x: jax.Array, train: bool = False, key: jax.Array | None = None):
        """Encode, sample z with ``key`` or the ``"latent"`` RNG stream, decode. With neither
        (plain inference, e.g. ``Trainer.predict``) z is the posterior mean."""
        mean, logvar = self.encode(x)
        if key is None and self.has_rng("latent"):
            key = self.make_rng("latent")
        z = mean if key is None else reparameterize(key, mean, logvar)
        return VAEOutput(self.decode(z), mean, logvar, z)

    def losses(self, x: jax.Array, train: bool = False, key: jax.Array | None = None) -> dict:
        """Per-example (B,) ``"loss"`` (negative ELBO with beta), ``"reconstruction"``
        (-log p(x|z) at one sample z) and ``"kl"`` (closed form), in nats. Needs ``key`` or
        the ``"latent"`` RNG stream: the ELBO is an expectation over z."""
        if key is None:
            key = self.make_rng("latent")
        out = self(x, train, key)
        if self.likelihood == "bernoulli":
            reconstruction = bernoulli_nll(out.logits, x)
        else:
            reconstruction = gaussian_nll(out.logits, self.log_scale, x)
        kl = gaussian_kl(out.mean, out.logvar)
        return {"loss": reconstruction + self.beta * kl, "reconstruction": reconstruction, "kl": kl}

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """n new examples (n, *input_shape): decoded draws from the prior N(0, I)."""
        z = jax.random.normal(key, (n, self.latent_dim))
        return self.expected(self.decode(z))

    def reconstruct(self, x: jax.Array) -> jax.Array:
        """Reconstructions (B, *input_shape) from the posterior means (no sampling)."""
        return self.expected(self.decode(self.encode(x)[0]))


def independent_pixel_nll(train_x, test_x) -> float:
    """The baseline a VAE must beat: each pixel an independent Bernoulli with its mean over
    the training set (clipped away from 0 and 1). Mean nats per test example."""
    train_x, test_x = np.asarray(train_x, np.float64), np.asarray(test_x, np.float64)
    p = np.clip(train_x.mean(axis=0), 1e-3, 1 - 1e-3)
    nll = -(test_x * np.log(p) + (1 - test_x) * np.log1p(-p))
    return float(nll.reshape(len(test_x), -1).sum(axis=1).mean())
