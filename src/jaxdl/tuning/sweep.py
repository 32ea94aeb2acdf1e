"""Many models at once: K configurations trained as one compiled program with ``vmap``.

Members share the model, the data and the ``jaxdl.Optimizer`` description; they differ in
numeric hyperparameters (the learning rate and any numeric option of the optimizer:
``weight_decay``, ``momentum``, ...) and in their seed, which fixes their initialisation,
their dropout and the order of their batches. Each member's hyperparameters are arrays in
its own optimizer state (``optax.inject_hyperparams``), the whole state is stacked along a
leading member axis, and the run is the ``Trainer``'s own loop under the ``Members``
strategy, which maps every compiled function over that axis.

Member ``k`` ends exactly where ``Trainer(model, Optimizer(name, lr_k, options={other
hyperparameters of k}), seed=seed_k).fit(...)`` would, up to float rounding.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl import _checks
from jaxdl.train.state import TrainState, create_train_state
from jaxdl.train.trainer import Trainer
from jaxdl.tuning.members import Members


def _check_configs(configs) -> list[dict]:
    configs = [dict(c) for c in configs]
    if not configs:
        raise ValueError("configs: expected at least one configuration, got none")
    keys = set(configs[0])
    for i, config in enumerate(configs):
        if set(config) != keys:
            raise ValueError(
                f"configs[{i}] has keys {sorted(config)}, configs[0] has {sorted(keys)}: every "
                "member needs the same hyperparameters"
            )
        if "learning_rate" not in config:
            raise ValueError(f"configs[{i}]: a learning_rate is needed, got {sorted(config)}")
        for name, value in config.items():
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise TypeError(
                    f"configs[{i}][{name!r}]: a vmapped sweep varies numbers only, got "
                    f"{value!r}; train other choices (layers, optimizers) as separate sweeps"
                )
        _checks.check_seed(config.get("seed", 0))
    return configs


def _hyperparameters(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != "seed"}


class Sweep(Trainer):
    """Train K copies of ``model`` with different hyperparameters as one program.

    Args:
      model: a Flax module, as for ``Trainer``.
      configs: K dicts with the same keys: ``learning_rate``, an optional ``seed`` (int) and
        any numeric option of the optimizer (``weight_decay``, ``momentum``, ...), e.g.
        ``[{"learning_rate": 1e-3, "seed": 0}, {"learning_rate": 3e-3, "seed": 1}]``.
      loss: as for ``Trainer``.
      metrics: as for ``Trainer``.
      optimizer: a name of ``jaxdl.optim.OPTIMIZERS`` or a ``jaxdl.Optimizer``; its
        schedule, penalties, clipping and fixed options apply to every member.

    ``fit`` returns a history of (epochs, K) arrays; ``evaluate`` gives (K,) per metric and
    ``predict`` (K, N, outputs). Array data only: every epoch of all members is one call.
    """

    def __init__(
        self,
        model: nn.Module,
        configs: Sequence[Mapping[str, float]],
        loss="cross_entropy",
        optimizer="adam",
        metrics: Sequence[str] = ("accuracy",),
    ):
        self.configs = _check_configs(configs)
        seeds = [int(c.get("seed", 0)) for c in self.configs]
        super().__init__(
            model, loss, optimizer, metrics=metrics, seed=seeds[0], strategy=Members(seeds)
        )
        if self.optimizer.ready:
            raise ValueError(
                "optimizer: a sweep builds its optimizer by name; got a transformation"
            )
        if self.task.unlabelled:
            raise ValueError(f"a sweep trains supervised tasks, not {self.task.name!r}")

    def __len__(self) -> int:
        return len(self.configs)

    def init(
        self, x_sample, total_steps: int = 1, steps_per_epoch: int = 1, learning_rate_factor=False
    ) -> TrainState:
        """The stacked state: member ``k`` initialised from its seed, with its hyperparameters
        in its optimizer state. ``x_sample``: (1, *input_shape). A sweep has no learning-rate
        factor (``ReduceLROnPlateau`` refuses sweeps)."""
        x_sample = _checks.as_features(x_sample, "x")[:1]
        self.input_shape, self._input_kind = tuple(x_sample.shape[1:]), x_sample.dtype.kind
        names = sorted(_hyperparameters(self.configs[0]))
        description = self.optimizer

        def factory(**hyper):
            rate = hyper.pop("learning_rate")
            return description.build(
                total_steps, steps_per_epoch, learning_rate=rate, options=hyper
            )

        # an explicit signature: inject_hyperparams binds the arguments by name
        factory.__signature__ = inspect.Signature(
            [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in names]
        )
        try:
            tx = optax.inject_hyperparams(factory)(**_hyperparameters(self.configs[0]))
            members = [self._member(tx, x_sample, config) for config in self.configs]
        except TypeError as error:
            raise TypeError(f"optimizer {self.optimizer.name!r}: {error}") from None
        self.state = jax.tree.map(lambda *leaves: jnp.stack(leaves), *members)
        self._learn_outputs(members[0], x_sample)
        return self.state

    def _member(self, tx, x_sample, config) -> TrainState:
        state = create_train_state(self.model, tx, x_sample, int(config.get("seed", 0)))
        hyper = dict(state.opt_state.hyperparams)
        for name, value in _hyperparameters(config).items():
            hyper[name] = jnp.asarray(value, jnp.result_type(hyper[name]))
        return state.replace(opt_state=state.opt_state._replace(hyperparams=hyper))

    def fit(self, x, y=None, **kw):
        """Train every member (``Trainer.fit``'s arguments). Returns {metric: (epochs, K)
        array}, with ``val_`` entries."""
        kw.setdefault("verbose", False)
        history = super().fit(x, y, **kw)
        return {name: np.stack(values) for name, values in history.items()}

    def _builtin_callbacks(self, verbose, checkpoint=True):
        first, last = super()._builtin_callbacks(verbose, checkpoint)
        return first[1:], last  # a diverging member must not stop the others

    def _mode(self, adapter):
        if adapter.kind != "arrays":
            raise ValueError(f"a sweep trains on arrays, not a {type(adapter.source).__name__}")
        return "epoch"

    def member(self, k: int) -> TrainState:
        """Member ``k``'s state (e.g. for ``Trainer.state`` or ``export_model``)."""
        self._require_state()
        if not 0 <= k < len(self):
            raise IndexError(f"member {k} of a sweep of {len(self)}")
        return jax.tree.map(lambda leaf: leaf[k], self.state)


def ensemble_predict(outputs, from_logits: bool = True) -> np.ndarray:
    """The ensemble's class probabilities: the mean over members of their softmax.

    outputs: (K, N, C) logits (or probabilities with ``from_logits=False``) -> (N, C).
    """
    outputs = jnp.asarray(outputs)
    if outputs.ndim != 3:
        raise ValueError(f"outputs: expected (members, N, classes), got shape {outputs.shape}")
    probabilities = jax.nn.softmax(outputs, axis=-1) if from_logits else outputs
    return np.asarray(jnp.mean(probabilities, axis=0))
