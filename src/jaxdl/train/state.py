"""The training state: everything a step reads and writes, as one pytree."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct
from flax.training import train_state

from jaxdl.train.precision import DynamicLossScale, check_policy


class TrainState(train_state.TrainState):
    """Parameters, batch statistics, optimizer state, step counter and RNG key.

        Inherits ``step``, ``params``, ``opt_state`` and the static ``apply_fn`` and ``tx`` from
        ``flax.training.train_state.TrainState``. ``batch_stats`` holds the running averages of
        batch normalisation (an empty dict when the model has none); ``rng`` is the base key from
        which step ``t`` draws its dropout key as ``fold_in(rng, t)``, so a run is a function of
        the seed alone. ``mode_argument`` names the argument of the model's ``__call__`` that
    switches training on ("train", "training", or "deterministic", inverted), or None.
        ``frozen`` holds path patterns (``jaxdl.optim.matches``) of batch statistics that
        training must leave as they are: those of a frozen backbone. ``compute_dtype`` is the
        precision policy's compute dtype (``jaxdl.train.precision``) and ``loss_scale`` its
        ``DynamicLossScale`` (float16 only, else None).
    """

    batch_stats: Any = struct.field(default_factory=dict)
    rng: jax.Array = None
    loss_scale: Any = None
    mode_argument: str | None = struct.field(pytree_node=False, default="train")
    frozen: tuple[str, ...] = struct.field(pytree_node=False, default=())
    compute_dtype: str = struct.field(pytree_node=False, default="float32")

    def variables(self, params=None) -> dict:
        """The Flax variables dict for ``apply``: params and, if any, batch statistics."""
        out = {"params": self.params if params is None else params}
        if self.batch_stats:
            out["batch_stats"] = self.batch_stats
        return out


# the names Flax modules give their mode argument; "deterministic" means not training
MODE_ARGUMENTS = ("train", "training", "deterministic")


def mode_argument(model: nn.Module) -> str | None:
    """Which of ``MODE_ARGUMENTS`` the model's ``__call__`` takes (None: none of them).

    A model that takes more than one is ambiguous and refused (TypeError)."""
    try:
        parameters = inspect.signature(type(model).__call__).parameters
    except (TypeError, ValueError):
        return None
    found = [name for name in MODE_ARGUMENTS if name in parameters]
    if len(found) > 1:
        raise TypeError(
            f"{type(model).__name__}.__call__ takes {' and '.join(found)}; jaxdl drives one "
            f"mode argument ({', '.join(MODE_ARGUMENTS)}), so take only one"
        )
    return found[0] if found else None


def mode_kwargs(argument: str | None, train: bool) -> dict:
    """The keyword that puts a model in training (``train=True``) or inference mode."""
    if argument is None:
        return {}
    return {argument: (not train) if argument == "deterministic" else train}


def init_variables(model: nn.Module, sample_x, rngs, **kwargs) -> dict:
    """``model.init(rngs, sample_x, **kwargs)``, compiled.

    Initialisation runs with JAX's non-partitionable threefry: the numbers are still a
    function of the key alone, but XLA compiles random draws of 4-D shapes (convolution
    kernels) about seven times faster on CPU that way, which is seconds per network.
    """
    with jax.threefry_partitionable(False):
        return jax.jit(functools.partial(model.init, **kwargs))(rngs, sample_x)


def create_train_state(
    model: nn.Module,
    tx: optax.GradientTransformation,
    sample_x,
    seed: int = 0,
    precision: str = "float32",
) -> TrainState:
    """Initialise ``model`` on ``sample_x`` (1, *input_shape) and wrap it with ``tx``.

    The seed splits into the parameter key and the base key of every later step.
    ``precision`` is a policy of ``jaxdl.train.precision``: "float32", "bfloat16" or
    "float16" (with a dynamic loss scale); parameters stay float32 in every policy.
    """
    check_policy(precision)
    params_key, dropout_key, step_key = jax.random.split(jax.random.key(seed), 3)
    argument = mode_argument(model)
    kwargs = mode_kwargs(argument, train=False)
    rngs = {
        "params": params_key,
        "dropout": dropout_key,
        "latent": jax.random.fold_in(dropout_key, 1),  # for models that sample (VAE)
    }
    variables = init_variables(model, sample_x, rngs, **kwargs)
    params = variables["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        apply_fn=model.apply,
        params=params,
        tx=tx,
        opt_state=tx.init(params),
        batch_stats=variables.get("batch_stats", {}),
        rng=step_key,
        loss_scale=DynamicLossScale.create() if precision == "float16" else None,
        mode_argument=argument,
        compute_dtype=precision,
    )
