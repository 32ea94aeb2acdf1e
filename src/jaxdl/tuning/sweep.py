"""Many models at once: K configurations trained as one compiled program with ``vmap``.

Members share the model and the data; they differ in continuous hyperparameters of the
optimizer (learning rate, weight decay, momentum, ...) and in their seed, which fixes their
initialisation, their dropout and the order of their batches. The optimizer is built with
``optax.inject_hyperparams``, so each member's hyperparameters are arrays in its own
optimizer state, and the whole state is stacked along a leading member axis.

Member ``k`` ends exactly where ``Trainer(model, optimizer, learning_rate=lr_k,
optimizer_options={other hyperparameters of k}, seed=seed_k).fit(...)`` would, up to float
rounding: the same initialisation, batches, dropout keys and update rule.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl import _checks
from jaxdl import losses as losses_lib
from jaxdl import metrics as metrics_lib
from jaxdl.data.dataset import epoch_indices
from jaxdl.train import steps
from jaxdl.train.state import TrainState, create_train_state
from jaxdl.train.trainer import _as_arrays

# optax constructors whose numeric arguments become per-member arrays
OPTIMIZERS = {
    "sgd": optax.sgd,
    "adam": optax.adam,
    "adamw": optax.adamw,
    "adagrad": optax.adagrad,
    "rmsprop": optax.rmsprop,
}


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


class Sweep:
    """Train K copies of ``model`` with different hyperparameters as one program.

    Args:
      model: a Flax module, as for ``Trainer``.
      configs: K dicts with the same keys: ``learning_rate``, an optional ``seed`` (int) and
        any numeric argument of the optax optimizer (``weight_decay``, ``momentum``, ``b1``,
        ...), e.g. ``[{"learning_rate": 1e-3, "seed": 0}, {"learning_rate": 3e-3, "seed": 1}]``.
      loss, metrics, loss_options: as for ``Trainer``.
      optimizer: a name of ``OPTIMIZERS``; ``optimizer_options`` are fixed for every member.

    ``fit`` returns a history of (epochs, K) arrays; ``evaluate`` gives (K,) per metric and
    ``predict`` (K, N, outputs).
    """

    def __init__(
        self,
        model: nn.Module,
        configs: Sequence[Mapping[str, float]],
        loss="cross_entropy",
        optimizer: str = "adam",
        metrics: Sequence[str] = ("accuracy",),
        *,
        loss_options: dict | None = None,
        optimizer_options: dict | None = None,
    ):
        self.configs = _check_configs(configs)
        self.constructor = _checks.lookup("optimizer", optimizer, OPTIMIZERS)
        losses_lib.get(loss)
        for name in metrics:
            metrics_lib.get(name)
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.metrics, self.loss_options = tuple(metrics), loss_options
        self.optimizer_options = dict(optimizer_options or {})
        self.state: TrainState | None = None
        self.input_shape: tuple[int, ...] | None = None
        self.output_shape: tuple[int, ...] | None = None
        self._compiled: dict = {}

    def __len__(self) -> int:
        return len(self.configs)

    def _hyperparameters(self, config: dict) -> dict:
        return {k: v for k, v in config.items() if k != "seed"}

    def init(self, x_sample) -> TrainState:
        """The stacked state: member ``k`` initialised from its seed, with its hyperparameters
        in its optimizer state. ``x_sample``: (1, *input_shape)."""
        x_sample = _checks.as_features(x_sample, "x")[:1]
        self.input_shape = tuple(x_sample.shape[1:])
        first = self._hyperparameters(self.configs[0])
        try:
            tx = optax.inject_hyperparams(self.constructor)(**first, **self.optimizer_options)
        except TypeError as error:
            raise TypeError(f"optimizer {self.optimizer!r}: {error}") from None
        members = []
        for config in self.configs:
            state = create_train_state(self.model, tx, x_sample, int(config.get("seed", 0)))
            hyper = dict(state.opt_state.hyperparams)
            for name, value in self._hyperparameters(config).items():
                hyper[name] = jnp.asarray(value, jnp.result_type(hyper[name]))
            members.append(state.replace(opt_state=state.opt_state._replace(hyperparams=hyper)))
        self.state = jax.tree.map(lambda *leaves: jnp.stack(leaves), *members)
        out = jax.eval_shape(steps.predict_step, members[0], x_sample)
        self.num_outputs = int(out.shape[-1]) if out.ndim >= 2 else 1
        self.output_shape = tuple(out.shape[1:])
        return self.state

    def _functions(self) -> dict:
        if not self._compiled:
            num_classes = self.num_outputs if self.num_outputs > 1 else 2
            args = (self.loss, self.metrics, num_classes, self.loss_options)
            run = steps.make_epoch_runner(steps.make_train_step(*args))
            eval_step = steps.make_eval_step(*args)
            evaluate = lambda state, acc, batch: metrics_lib.merge(acc, eval_step(state, batch))
            self._compiled = {
                "eval_step": eval_step,
                "epoch": jax.jit(jax.vmap(run, in_axes=(0, None, None, 0, 0)), donate_argnums=(0,)),
                "eval": jax.jit(jax.vmap(evaluate, in_axes=(0, 0, None))),
                "predict": jax.jit(jax.vmap(steps.predict_step, in_axes=(0, None))),
            }
        return self._compiled

    def _check(self, data, name: str):
        x, y = _as_arrays(data, name)
        x = _checks.as_features(x, name + ".x", self.input_shape)
        classification = self.loss in losses_lib.CLASSIFICATION_LOSSES
        y = _checks.as_labels(y, len(x), self.num_outputs if classification else None, name + ".y")
        if classification:
            _checks.check_class_targets(y, self.output_shape, name + ".y")
        return x, y

    def fit(
        self,
        data,
        epochs: int = 1,
        batch_size: int = 32,
        validation_data=None,
        shuffle: bool = True,
    ) -> dict[str, np.ndarray]:
        """Train every member for ``epochs`` epochs; each epoch of all members is one call.

        Returns {metric: (epochs, K) array}, with ``val_`` entries for ``validation_data``.
        """
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs: expected a positive int, got {epochs!r}")
        if self.state is None:
            x, _ = _as_arrays(data, "data")
            self.init(x[:1])
        x, y = self._check(data, "data")
        batch_size = _checks.check_batch_size(batch_size, len(x))
        if validation_data is not None:
            validation_data = self._check(validation_data, "validation_data")
        fns = self._functions()
        x_device, y_device = jax.device_put(x), jax.device_put(y)
        seeds = [int(c.get("seed", 0)) for c in self.configs]
        history: dict[str, list] = {}
        start = int(np.asarray(self.state.step)[0]) // -(-len(x) // batch_size)
        for epoch in range(start, start + epochs):
            orders = [
                epoch_indices(len(x), batch_size, shuffle=shuffle, seed=s, epoch=epoch)
                for s in seeds
            ]
            indices = np.stack([o[0] for o in orders])
            mask = np.stack([o[1] for o in orders])
            self.state, acc, _ = fns["epoch"](self.state, x_device, y_device, indices, mask)
            for name, values in self._compute(acc).items():
                history.setdefault(name, []).append(values)
            if validation_data is not None:
                for name, values in self._evaluate(validation_data, 256).items():
                    history.setdefault(f"val_{name}", []).append(values)
        return {name: np.stack(values) for name, values in history.items()}

    def _compute(self, acc) -> dict[str, np.ndarray]:
        acc = jax.device_get(acc)
        per_member = [
            metrics_lib.compute(jax.tree.map(operator.itemgetter(k), acc)) for k in range(len(self))
        ]
        names = ("loss", *self.metrics)
        return {name: np.array([m[name] for m in per_member]) for name in names}

    def _evaluate(self, data, batch_size: int) -> dict[str, np.ndarray]:
        x, y = data
        fns = self._functions()
        indices, mask = epoch_indices(len(x), min(batch_size, len(x)), shuffle=False)
        acc = None
        for idx, m in zip(indices, mask):
            batch = {"x": x[idx], "y": y[idx], "mask": m}
            if acc is None:
                if "eval_shapes" not in fns:  # traced once, not at every evaluation
                    member = jax.tree.map(lambda leaf: leaf[0], self.state)
                    fns["eval_shapes"] = steps.metric_shapes(fns["eval_step"], member, batch)
                acc = jax.tree.map(
                    lambda s: jnp.zeros((len(self), *s.shape), s.dtype), fns["eval_shapes"]
                )
            acc = fns["eval"](self.state, acc, batch)
        return self._compute(acc)

    def _require_state(self):
        if self.state is None:
            raise RuntimeError("the sweep has no parameters yet: call fit() (or init()) first")

    def evaluate(self, data, batch_size: int = 256) -> dict[str, np.ndarray]:
        """Loss and metrics of every member over ``data``: {name: (K,) array}."""
        self._require_state()
        x, y = self._check(data, "data")
        return self._evaluate((x, y), _checks.check_inference_batch_size(batch_size, len(x)))

    def predict(self, x, batch_size: int = 256) -> np.ndarray:
        """Every member's outputs for ``x`` (N, *input_shape): (K, N, outputs)."""
        self._require_state()
        x = _checks.as_features(x, "x", self.input_shape)
        batch_size = _checks.check_inference_batch_size(batch_size, len(x))
        indices, _ = epoch_indices(len(x), batch_size, shuffle=False)
        fns = self._functions()
        outputs = jax.device_get([fns["predict"](self.state, x[idx]) for idx in indices])
        return np.concatenate(outputs, axis=1)[:, : len(x)]

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
