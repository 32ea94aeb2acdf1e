"""DCGAN-style generative adversarial network (Radford et al., 2016) for small images.

``GAN`` holds a ``Generator`` and a ``Discriminator`` as its two submodules, so its parameters
are ``{"generator": ..., "discriminator": ...}``: the ``"gan"`` objective of the Trainer
updates each with its own optimizer in one compiled step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxdl import _checks
from jaxdl.models.layers import Conv, pool


def depth_to_space(x: jax.Array, block: int = 2) -> jax.Array:
    """(B, H, W, C * block^2) -> (B, H * block, W * block, C): each pixel's channels become a
    block x block patch (the "pixel shuffle" of sub-pixel convolution)."""
    b, h, w, c = x.shape
    c_out = c // (block * block)
    x = x.reshape(b, h, w, block, block, c_out).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h * block, w * block, c_out)


class Generator(nn.Module):
    """z (B, latent) -> images (B, H, W, C) in [0, 1] (sigmoid) or [-1, 1] (tanh).

    A dense layer onto a (H/4, W/4, features[0]) map, then two 2x upsamplings, each a 3x3
    convolution to 4x the channels and a pixel shuffle (sub-pixel convolution: a stride-2
    transposed convolution in another arrangement, which runs as a plain matrix product on
    CPU); batch norm and ReLU between them. H and W must be divisible by 4.
    """

    output_shape: Sequence[int] = (8, 8, 1)
    features: Sequence[int] = (128, 64)
    output: str = "sigmoid"

    def __post_init__(self):
        shape = _checks.check_widths(self.output_shape, "Generator.output_shape")
        if len(shape) != 3 or shape[0] % 4 or shape[1] % 4:
            raise ValueError(
                f"Generator.output_shape: expected (H, W, C) with H and W divisible by 4, got "
                f"{tuple(self.output_shape)}"
            )
        features = _checks.check_widths(self.features, "Generator.features")
        if len(features) != 2:
            raise ValueError(f"Generator.features: expected two widths, got {features!r}")
        if self.output not in ("sigmoid", "tanh"):
            raise ValueError(f"Generator.output: expected 'sigmoid' or 'tanh', got {self.output!r}")
        super().__post_init__()

    @nn.compact
    def __call__(self, z: jax.Array, train: bool = False) -> jax.Array:
        h, w, c = self.output_shape
        if h % 4 or w % 4:
            raise ValueError(f"Generator: H and W must be divisible by 4, got {(h, w, c)}")
        norm = lambda x: nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
        x = nn.Dense(h // 4 * w // 4 * self.features[0])(z)
        x = nn.relu(norm(x)).reshape(-1, h // 4, w // 4, self.features[0])
        x = depth_to_space(Conv(4 * self.features[1], (3, 3))(x))
        x = nn.relu(norm(x))
        x = depth_to_space(Conv(4 * c, (3, 3), name="output")(x))
        return jax.nn.sigmoid(x) if self.output == "sigmoid" else jnp.tanh(x)


def minibatch_stddev(x: jax.Array) -> jax.Array:
    """(B, H, W, C) -> (B, H, W, C + 1): one more channel holding the batch's mean standard
    deviation (Karras et al., 2018), so the discriminator sees how varied a batch is and a
    generator that collapses onto a few images is caught."""
    spread = jnp.sqrt(jnp.var(x, axis=0) + 1e-8).mean()
    return jnp.concatenate([x, jnp.broadcast_to(spread, (*x.shape[:-1], 1))], axis=-1)


class Discriminator(nn.Module):
    """Images (B, H, W, C) -> logits (B,) that the images are real: 3x3 convolutions with
    leaky ReLU, each followed by 2x2 average pooling, a minibatch standard-deviation channel,
    then a dense layer."""

    features: Sequence[int] = (64, 128)
    batch_stddev: bool = True

    def __post_init__(self):
        _checks.check_widths(self.features, "Discriminator.features")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        for width in self.features:
            x = pool(nn.leaky_relu(Conv(width, (3, 3))(x), 0.2), 2, "avg")
        if self.batch_stddev:
            x = minibatch_stddev(x)
        x = x.reshape(x.shape[0], math.prod(x.shape[1:]))
        return nn.Dense(1, name="output")(x)[:, 0]


class GAN(nn.Module):
    """A generator and a discriminator trained against each other.

    ``__call__(x)`` returns the discriminator's logits (B,) for images x (B, H, W, C) (and
    creates both networks' parameters at ``init``); ``generate(z)`` maps latent codes
    (B, latent_dim) to images; ``sample(key, n)`` draws n images from the prior.

    Example:
      >>> gan = jaxdl.models.GAN(
      ...     jaxdl.models.Generator((8, 8, 1)), jaxdl.models.Discriminator(), latent_dim=16
      ... )
      >>> images = np.zeros((2, 8, 8, 1), np.float32)
      >>> variables = gan.init(jax.random.key(0), images)
      >>> gan.apply(variables, images).shape  # one real-or-fake logit per image
      (2,)
      >>> gan.apply(variables, jax.random.key(1), 4, method="sample").shape
      (4, 8, 8, 1)
    """

    generator: Generator
    discriminator: Discriminator
    latent_dim: int = 32

    def __post_init__(self):
        _checks.check_int(self.latent_dim, "GAN.latent_dim")
        super().__post_init__()

    def generate(self, z: jax.Array, train: bool = False) -> jax.Array:
        """Images (B, H, W, C) for latent codes z (B, latent_dim)."""
        return self.generator(z, train)

    def discriminate(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Logits (B,) that the images x are real."""
        return self.discriminator(x, train)

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """n images (n, H, W, C) from z ~ N(0, I), with the generator in inference mode."""
        return self.generate(jax.random.normal(key, (n, self.latent_dim)))

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if self.is_initializing():  # create the generator's parameters too
            self.generate(jnp.zeros((1, self.latent_dim), x.dtype), train)
        return self.discriminate(x, train)
