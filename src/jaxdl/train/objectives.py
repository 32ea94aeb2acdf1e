"""Objectives that do not fit "predict the target": the ELBO of a VAE and the GAN game.

Each is a pair of pure steps with the same signatures as ``jaxdl.train.steps`` — ``train_step
(state, batch) -> (state, metric_states)`` and ``eval_step(state, batch) -> metric_states`` —
so the ``Trainer`` runs them with the same loop (one compile, padding masks, progress bar,
callbacks, history). Their data is unlabelled: the batch's ``"x"`` is all they read.
Pass the name as ``Trainer(model, loss="elbo")`` or ``loss="gan"``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from jaxdl import metrics as metrics_lib
from jaxdl.train.state import TrainState
from jaxdl.train.steps import apply_gradients, batch_mask, masked_mean

# the key every evaluation draws from, so that a validation score is a function of the state
_EVAL_STREAM = 0x7FFFFFFF


# ---------------------------------------------------------------------- ELBO


def _model_losses(state: TrainState, params, x, key, train: bool):
    """The model's own ``losses(x)`` method: a dict of per-example values with "loss"."""
    latent, dropout = jax.random.split(key)
    return state.apply_fn(
        {"params": params},
        x,
        train,
        rngs={"latent": latent, "dropout": dropout},
        method="losses",
    )


def make_elbo_steps() -> tuple[Callable, Callable]:
    """Steps that minimise a VAE's negative ELBO (its ``losses`` method, with its beta).

    Every term the model returns (``loss``, ``reconstruction``, ``kl``) is reported as a
    mergeable mean. The latent sample of step t draws from ``fold_in(state.rng, t)``.
    """

    def train_step(state: TrainState, batch):
        mask = batch_mask(batch)
        key = jax.random.fold_in(state.rng, state.step)

        def objective(params):
            terms = _model_losses(state, params, batch["x"], key, train=True)
            return masked_mean(terms["loss"], mask), terms

        (loss, terms), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        states = {k: metrics_lib.Mean.from_values(v, mask) for k, v in terms.items()}
        return apply_gradients(state, grads, loss), states

    def eval_step(state: TrainState, batch):
        key = jax.random.fold_in(state.rng, _EVAL_STREAM)
        terms = _model_losses(state, state.params, batch["x"], key, train=False)
        return {k: metrics_lib.Mean.from_values(v, batch_mask(batch)) for k, v in terms.items()}

    return train_step, eval_step


# ---------------------------------------------------------------------- GAN


def gan_optimizer(generator: optax.GradientTransformation, discriminator=None):
    """One optax transformation that updates ``params["generator"]`` with ``generator`` and
    ``params["discriminator"]`` with ``discriminator`` (default: the same kind), each with its
    own state."""
    return optax.multi_transform(
        {"generator": generator, "discriminator": discriminator or generator},
        lambda params: {k: k for k in params},
    )


def _gan_variables(state, params, batch_stats=None):
    stats = state.batch_stats if batch_stats is None else batch_stats
    return {"params": params, "batch_stats": stats} if stats else {"params": params}


def _gan_losses(state: TrainState, params, x, mask, key, train: bool, latent_dim: int):
    """Both networks' gradients from the same parameters, their batch statistics, the
    metric states and the total loss."""
    z = jax.random.normal(key, (x.shape[0], latent_dim), x.dtype)

    def generator_loss(g_params):
        full = {**params, "generator": g_params}
        if train and state.batch_stats:
            fake, updates = state.apply_fn(
                _gan_variables(state, full),
                z,
                train,
                method="generate",
                mutable=["batch_stats"],
            )
            stats = updates["batch_stats"]
        else:
            fake = state.apply_fn(_gan_variables(state, full), z, train, method="generate")
            stats = state.batch_stats
        fake_logits = state.apply_fn(
            _gan_variables(state, full), fake, train, method="discriminate"
        )
        return masked_mean(jax.nn.softplus(-fake_logits), mask), (fake, stats)

    def discriminator_loss(d_params, fake):
        full = {**params, "discriminator": d_params}
        real_logits = state.apply_fn(_gan_variables(state, full), x, train, method="discriminate")
        fake_logits = state.apply_fn(
            _gan_variables(state, full), fake, train, method="discriminate"
        )
        values = jax.nn.softplus(-real_logits) + jax.nn.softplus(fake_logits)
        return masked_mean(values, mask), (real_logits, fake_logits)

    (g_loss, (fake, stats)), g_grads = jax.value_and_grad(generator_loss, has_aux=True)(
        params["generator"]
    )
    fake = jax.lax.stop_gradient(fake)
    (d_loss, (real_logits, fake_logits)), d_grads = jax.value_and_grad(
        discriminator_loss, has_aux=True
    )(params["discriminator"], fake)
    n = jnp.maximum(jnp.sum(mask), 1.0)
    states = {
        "loss": metrics_lib.Mean((g_loss + d_loss) * n, n),
        "d_loss": metrics_lib.Mean(d_loss * n, n),
        "g_loss": metrics_lib.Mean(g_loss * n, n),
        "d_real": metrics_lib.Mean.from_values(jax.nn.sigmoid(real_logits), mask),
        "d_fake": metrics_lib.Mean.from_values(jax.nn.sigmoid(fake_logits), mask),
    }
    grads = {"generator": g_grads, "discriminator": d_grads}
    return grads, stats, states, g_loss + d_loss


def make_gan_steps(latent_dim: int) -> tuple[Callable, Callable]:
    """One step of the non-saturating GAN game (Goodfellow et al., 2014) for a ``GAN`` model.

    From the same parameters, the discriminator's gradient comes from its loss
    ``softplus(-D(x)) + softplus(D(G(z)))`` and the generator's from
    ``softplus(-D(G(z)))``; then ``state.tx`` (e.g. :func:`gan_optimizer`) updates both, so
    neither network's update can move the other's parameters. Reported: ``loss`` (the sum of
    both), ``d_loss``, ``g_loss``, ``d_real`` and ``d_fake`` (the discriminator's mean
    probability that real and generated images are real).
    """

    def train_step(state: TrainState, batch):
        if set(state.params) != {"generator", "discriminator"}:
            raise ValueError(
                "the 'gan' task trains a model whose parameters are exactly "
                f"{{'generator', 'discriminator'}} (jaxdl.models.GAN), got {sorted(state.params)}"
            )
        key = jax.random.fold_in(state.rng, state.step)
        grads, stats, states, total = _gan_losses(
            state, state.params, batch["x"], batch_mask(batch), key, True, latent_dim
        )
        return apply_gradients(state, grads, total, batch_stats=stats), states

    def eval_step(state: TrainState, batch):
        key = jax.random.fold_in(state.rng, _EVAL_STREAM)
        return _gan_losses(
            state, state.params, batch["x"], batch_mask(batch), key, False, latent_dim
        )[2]

    return train_step, eval_step


OBJECTIVES = ("elbo", "gan")
