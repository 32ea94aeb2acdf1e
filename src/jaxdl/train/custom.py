"""Tasks of your own objective or your own step, on the Trainer's loop.

A new regulariser, contrastive pairs, a teacher model: what the step computes changes, the
run around it does not. Both tasks here follow the ``jaxdl.train.tasks.Task`` protocol, so
callbacks, checkpoints (and resuming), progress, history, ``evaluate`` and the strategies
work with them unchanged:

| task          | you give                                          | the task does         |
|---------------|---------------------------------------------------|-----------------------|
| `CustomLoss`  | ``fn(params, batch, rng, model) -> loss`` or      | gradients, the update,|
|               | ``(loss, {term: value})``                         | masks, device sums    |
| `CustomStep`  | ``step_fn(state, batch, rng) -> (state, metrics)``| the rest of the run   |

``Trainer(model, loss=jaxdl.tasks.CustomLoss(fn))`` then trains as any other task::

    def distill(params, batch, rng, model):
        logits = jaxdl.tasks.call_model(model, params, batch["x"], rng)
        soft = jax.nn.log_softmax(teacher_logits(batch["x"]) / 2.0)
        kl = jnp.sum(jnp.exp(soft) * (soft - jax.nn.log_softmax(logits / 2.0)), -1)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"])
        return ce + kl, {"kl": kl}                      # (B,) values: masked means

A batch is the loop's dict: ``"x"`` (B, ...), ``"y"`` (B, ...) (zeros for unlabelled data),
``"mask"`` (B,) (0 for the padding rows of the last batch) and, with
``fit(sample_weight=)``, ``"weight"`` (B,).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxdl import _checks
from jaxdl import metrics as metrics_lib
from jaxdl.train.cross_device import global_batch_layers
from jaxdl.train.state import mode_argument, mode_kwargs
from jaxdl.train.steps import apply_gradients, batch_mask, forward
from jaxdl.train.task import Task

# the key evaluation draws from (as the ELBO and GAN steps), so a score is a function of the state
_EVAL_STREAM = 0x7FFFFFFF


def call_model(model: nn.Module, params, x, rng=None):
    """``model`` applied to ``x`` (B, ...) with ``params``, as the Trainer calls it: in
    training mode with dropout drawn from ``rng``, or in inference mode where ``rng`` is None
    (what ``CustomLoss`` passes in evaluation). Models with batch statistics need
    ``CustomStep``. Returns the model's outputs (B, ...)."""
    kwargs = mode_kwargs(mode_argument(model), rng is not None)
    rngs = {"dropout": rng} if rng is not None else {}
    return model.apply({"params": params}, x, rngs=rngs, **kwargs)


def _check_names(argument: str, names) -> tuple[str, ...]:
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise TypeError(f"{argument}: expected a list of names (str), got {names!r}")
    names = tuple(names)
    bad = [n for n in names if not isinstance(n, str) or not n]
    if bad:
        raise TypeError(f"{argument}: expected names (str), got {bad[0]!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{argument}: a name is given twice in {names}")
    return names


def _state_of(value, mask, name: str, where: str):
    """A reported value as a mergeable mean: (B,) values are averaged over the batch's
    rows (padding left out), a scalar counts once per example of the batch."""
    value = jnp.asarray(value)
    if value.ndim == 0:
        n = jnp.sum(mask)
        return metrics_lib.Mean(total=value.astype(jnp.float32) * n, count=n)
    if value.shape != mask.shape:
        raise ValueError(
            f"{where}: {name!r} must be a scalar or one value per example, shape "
            f"{mask.shape}; got shape {value.shape}"
        )
    return metrics_lib.Mean.from_values(value, mask)


def _metric(spec):
    return metrics_lib.get(spec) if isinstance(spec, str) else spec


def _output_metrics(metrics, num_classes, state, batch, mask) -> dict:
    """``metrics`` of the model's inference-mode outputs for the batch (none: no forward)."""
    if not metrics:
        return {}
    outputs, _ = forward(state, state.params, batch["x"], train=False)
    return {str(m): _metric(m)(outputs, batch["y"], mask, num_classes) for m in metrics}


class _Custom(Task):
    """What both custom tasks share: their reported names, labels and the trainer's
    checks."""

    def __init__(self, terms, labelled: bool):
        if not isinstance(labelled, bool):
            raise TypeError(f"labelled: expected True or False, got {labelled!r}")
        self.terms = terms
        self.unlabelled = not labelled

    def check_metrics(self, metrics):
        if metrics and self.unlabelled:
            raise ValueError(
                f"metrics= compares outputs with labels; this {type(self).__name__} has "
                f"labelled=False, so metrics must be empty, got {tuple(metrics)}"
            )
        resolved = super().check_metrics(metrics)
        clash = set(map(str, resolved)) & set(self.terms)
        if clash:
            raise ValueError(f"metrics: {sorted(clash)} are reported by the function already")
        return resolved

    def empty_metrics(self, metrics, num_classes):
        states = metrics_lib.empty_states(metrics, num_classes) if metrics else {}
        return {**{name: metrics_lib.Mean.empty() for name in self.terms}, **states}

    def check_targets(self, y, num_examples, trainer, name):
        if self.unlabelled:
            return y
        return _checks.as_labels(y, num_examples, None, name)

    def check(self, trainer) -> None:
        if trainer.precision != "float32":
            raise ValueError(
                f"{type(self).__name__} computes in float32 (your function applies the model "
                f"itself); precision={trainer.precision!r}"
            )


class CustomLoss(_Custom):
    """Minimise your own loss: ``fn(params, batch, rng, model) -> loss`` or
    ``(loss, {term: value})``.

    The task differentiates the loss, updates the parameters with the run's optimizer and
    reports ``loss``, each of ``terms`` and the trainer's ``metrics=`` (computed on the
    model's inference-mode outputs of the batch, an extra forward pass, against
    ``batch["y"]``).

    Args:
      fn: ``fn(params, batch, rng, model)``: ``params`` the model's parameters, ``batch``
        the loop's dict (see the module), ``rng`` a key of this step (a function of the
        seed and the step; None in evaluation, where the model should run in inference
        mode: :func:`call_model` does both), ``model`` the Flax module. It returns the loss:
        a scalar, used as it is (weigh the rows by ``batch["mask"]`` so that the padding of
        the last batch does not count: ``jaxdl.train.steps.masked_mean``), or one value per
        example (B,), whose mask-weighted mean the task takes; or ``(loss, aux)`` with
        ``aux`` a dict holding a scalar or (B,) value for each name of ``terms``.
      terms: the names of ``aux``, reported as means beside ``loss`` (default none).
      labelled: whether the data holds targets ``y`` (default True); False takes features
        alone.

    Under the "pmap" strategy each device computes ``fn`` on its slice of the batch: (B,)
    values give exactly the one-device step (their sum over the devices divided by the
    global count), a scalar loss the mean of the devices' losses, which is the same when
    it is a mean over equally many rows on each; batch norm and dropout act on the global
    batch (``jaxdl.train.cross_device``). Models with batch statistics need
    :class:`CustomStep`.
    """

    name = "custom_loss"

    def __init__(self, fn: Callable, *, terms: Sequence[str] = (), labelled: bool = True):
        if not callable(fn):
            raise TypeError(
                f"fn: expected a function fn(params, batch, rng, model) -> loss, got {fn!r}"
            )
        terms = _check_names("terms", terms)
        if "loss" in terms:
            raise ValueError("terms: 'loss' is reported already; name the other terms")
        super().__init__(("loss", *terms), labelled)
        self.fn = fn

    def check(self, trainer) -> None:
        super().check(trainer)
        if trainer.state is not None and trainer.state.batch_stats:
            raise ValueError(
                f"CustomLoss applies {type(trainer.model).__name__} with its parameters "
                "alone, and this model keeps batch statistics; write the step with "
                "jaxdl.tasks.CustomStep, which updates the whole state"
            )

    def _loss(self, params, batch, rng, model, mask, count, axis_name):
        """(objective, reported states) of ``fn`` on the batch (this device's slice)."""
        with global_batch_layers(axis_name):
            out = self.fn(params, batch, rng, model)
        loss, aux = out if isinstance(out, tuple) else (out, {})
        if not isinstance(aux, dict) or set(aux) != set(self.terms[1:]):
            have = sorted(aux) if isinstance(aux, dict) else type(aux).__name__
            raise ValueError(
                f"fn: expected (loss, aux) with aux holding the terms {list(self.terms[1:])}, "
                f"got {have}"
            )
        loss = jnp.asarray(loss)
        where = f"fn {getattr(self.fn, '__name__', '')}".strip()
        states = {"loss": _state_of(loss, mask, "loss", where)}
        states.update({k: _state_of(v, mask, k, where) for k, v in aux.items()})
        if loss.ndim == 0:
            objective = loss if axis_name is None else loss / jax.lax.psum(1, axis_name)
        else:
            objective = jnp.sum(loss * mask) / jnp.maximum(count, 1.0)
        return objective.astype(jnp.float32), states

    def make_steps(self, metrics, num_classes, axis_name, model):
        psum = (lambda tree: jax.lax.psum(tree, axis_name)) if axis_name else (lambda tree: tree)

        def train_step(state, batch):
            mask = batch_mask(batch)
            count = psum(jnp.sum(mask))
            rng = jax.random.fold_in(state.rng, state.step)
            (objective, states), grads = jax.value_and_grad(
                lambda p: self._loss(p, batch, rng, model, mask, count, axis_name), has_aux=True
            )(state.params)
            grads, objective = psum((grads, objective))
            states.update(_output_metrics(metrics, num_classes, state, batch, mask))
            return apply_gradients(state, grads, objective), psum(states)

        def eval_step(state, batch):
            mask = batch_mask(batch)
            count = psum(jnp.sum(mask))
            _, states = self._loss(state.params, batch, None, model, mask, count, axis_name)
            states.update(_output_metrics(metrics, num_classes, state, batch, mask))
            return psum(states)

        return train_step, eval_step

    def config(self) -> dict:
        return {
            "task": self.name,
            "loss": getattr(self.fn, "__name__", ""),
            "terms": list(self.terms[1:]),
        }


class CustomStep(_Custom):
    """Train with your own step: ``step_fn(state, batch, rng) -> (state, metrics)``.

    Args:
      step_fn: takes the ``jaxdl.TrainState`` (params, ``opt_state``, ``tx``,
        ``batch_stats``, ``apply_fn``...), the loop's batch dict (see the module) and a key
        of this step (a function of the seed and the step), and returns the state after one
        update (``jaxdl.train.steps.apply_gradients(state, grads, loss)``, or
        ``state.apply_gradients(grads=grads)``) and a dict holding a scalar or (B,) value
        for each name of ``terms``, "loss" among them (its finiteness is what the run's
        non-finite policy watches). (B,) values are averaged over the batch's rows, the
        padding left out; a scalar counts as that value for every row. The state's
        ``step`` counts batches: it is set to one more than before, whatever the function
        made of it, so each step's key stays new.
      terms: the names ``step_fn`` reports; default ("loss",).
      eval_fn: ``eval_fn(state, batch) -> metrics`` with the same names, for ``evaluate``
        and validation; default: the metrics ``step_fn`` reports for the state (its update
        discarded), with a fixed key.
      labelled: whether the data holds targets ``y`` (default True); False takes features
        alone.

    The trainer's ``metrics=`` are computed on the model's inference-mode outputs (before
    the step's update) against ``batch["y"]``. It runs with the "single" and "sharded"
    strategies, whose steps see the global batch; under "pmap" a step would have to sum
    its own gradients over the devices, so that is refused (``CustomLoss`` runs there).
    """

    name = "custom_step"

    def __init__(
        self,
        step_fn: Callable,
        *,
        terms: Sequence[str] = ("loss",),
        eval_fn: Callable | None = None,
        labelled: bool = True,
    ):
        if not callable(step_fn):
            raise TypeError(
                "step_fn: expected a function step_fn(state, batch, rng) -> (state, metrics), "
                f"got {step_fn!r}"
            )
        if eval_fn is not None and not callable(eval_fn):
            raise TypeError(
                f"eval_fn: expected a function eval_fn(state, batch) -> metrics, got {eval_fn!r}"
            )
        terms = _check_names("terms", terms)
        if "loss" not in terms:
            raise ValueError(
                f"terms: expected 'loss' among the names step_fn reports, got {list(terms)}"
            )
        super().__init__(("loss", *(t for t in terms if t != "loss")), labelled)
        self.step_fn, self.eval_fn = step_fn, eval_fn

    def check(self, trainer) -> None:
        super().check(trainer)
        if trainer.strategy.name == "pmap":
            raise ValueError(
                "CustomStep runs with strategy='single' or 'sharded', not 'pmap' (a step "
                "under pmap sees its device's rows and would have to sum its gradients "
                "itself); use 'sharded', or CustomLoss"
            )

    def _states(self, metrics, mask, what: str) -> dict:
        if not isinstance(metrics, dict) or set(metrics) != set(self.terms):
            have = sorted(metrics) if isinstance(metrics, dict) else type(metrics).__name__
            raise ValueError(
                f"{what}: expected metrics holding {list(self.terms)} (terms=), got {have}"
            )
        return {k: _state_of(metrics[k], mask, k, what) for k in self.terms}

    def make_steps(self, metrics, num_classes, axis_name, model):
        name = getattr(self.step_fn, "__name__", "")

        def train_step(state, batch):
            mask = batch_mask(batch)
            rng = jax.random.fold_in(state.rng, state.step)
            out = self.step_fn(state, batch, rng)
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError(
                    f"step_fn {name}: expected (state, metrics), got {type(out).__name__}"
                )
            new_state, reported = out
            if jax.tree.structure(new_state) != jax.tree.structure(state):
                raise TypeError(
                    f"step_fn {name}: the state it returns must have the structure of the "
                    "state it was given (the same fields, parameters and optimizer state)"
                )
            states = self._states(reported, mask, f"step_fn {name}")
            states.update(_output_metrics(metrics, num_classes, state, batch, mask))
            return new_state.replace(step=state.step + 1), states

        def eval_step(state, batch):
            mask = batch_mask(batch)
            if self.eval_fn is not None:
                reported = self.eval_fn(state, batch)
                where = f"eval_fn {getattr(self.eval_fn, '__name__', '')}".strip()
            else:
                key = jax.random.fold_in(state.rng, _EVAL_STREAM)
                reported = self.step_fn(state, batch, key)[1]
                where = f"step_fn {name}"
            states = self._states(reported, mask, where)
            states.update(_output_metrics(metrics, num_classes, state, batch, mask))
            return states

        return train_step, eval_step

    def config(self) -> dict:
        return {
            "task": self.name,
            "loss": getattr(self.step_fn, "__name__", ""),
            "terms": list(self.terms),
        }
