"""Tasks: what a run optimises, behind one small protocol.

A task checks that it fits the run's configuration, builds the pure train and evaluation
steps, names the metrics they report (with their empty states) and checks the targets that
enter. The loop asks nothing else, so a new objective is a new class:

| task         | data   | steps                                | reports                       |
|--------------|--------|--------------------------------------|-------------------------------|
| `Supervised` | (x, y) | ``steps.make_train_step`` (any loss) | loss + ``metrics``            |
| `ELBO`       | x      | ``objectives.make_elbo_steps``       | loss, reconstruction, kl      |
| `GAN`        | x      | ``objectives.make_gan_steps``        | loss, d_loss, g_loss, d_real, |
|              |        |                                      | d_fake                        |

``Trainer(model, loss=...)`` takes a task, or a loss name or callable (a ``Supervised``
task), or "elbo" / "gan".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from jaxdl import _checks
from jaxdl import losses as losses_lib
from jaxdl import metrics as metrics_lib
from jaxdl.data.sampling import class_weights
from jaxdl.train import objectives, steps


class Task:
    """The protocol every task follows; see the module's table for the three that ship."""

    name = "task"
    unlabelled = False  # whether the data is features alone
    classification = False  # whether targets are class labels, checked even from a source
    default_metrics: tuple[str, ...] = ()
    terms: tuple[str, ...] = ("loss",)  # what the steps report besides ``metrics``

    def check(self, trainer) -> None:
        """Refuse a configuration the task cannot run (before anything is compiled)."""

    def check_metrics(self, metrics: Sequence[str]) -> tuple[str, ...]:
        for name in metrics:
            metrics_lib.get(name)
        return tuple(metrics)

    def metric_names(self, metrics: Sequence[str]) -> tuple[str, ...]:
        """The names the steps report, in the order the history shows them."""
        return (*self.terms, *metrics)

    def empty_metrics(self, metrics: Sequence[str], num_classes: int | None) -> dict:
        """The metric states of no examples, where each epoch's running merge starts."""
        return {name: metrics_lib.Mean.empty() for name in self.terms}

    def prepare(self, targets, num_outputs: int | None) -> None:
        """Learn what the steps need from the training targets (once, before compiling)."""

    def check_targets(self, y, num_examples: int, trainer, name: str):
        """The targets ``y`` checked against the model's outputs (labels in range, ...)."""
        return y

    def make_steps(self, metrics, num_classes: int, axis_name: str | None, model):
        """``(train_step, eval_step)``: pure functions of ``(state, batch)``."""
        raise NotImplementedError

    def per_network(self, model) -> Callable | None:
        """How the optimizer is split over the model's networks (None: one optimizer)."""
        return None

    def config(self) -> dict:
        return {"task": self.name}


class Supervised(Task):
    """Predict the targets: minimise the mask-weighted mean of a per-example ``loss``.

    Args:
      loss: a name of ``jaxdl.losses.LOSSES`` or a callable ``(predictions, targets) ->
        (B,)`` values. "cross_entropy" takes integer labels (B,) or one-hot rows (B, C).
      loss_options: keyword arguments of the loss (e.g. ``from_logits=False``).
      class_weight: "balanced" (``jaxdl.data.class_weights`` of the training labels) or one
        weight per class, multiplying each example's loss in training (the reported
        metrics and ``evaluate`` stay unweighted).
      augment: ``augment(key, x) -> x`` applied to every training batch inside the
        compiled step (``jaxdl.data.augment``); never to evaluation or prediction.
    """

    name = "supervised"
    default_metrics = ("accuracy",)

    def __init__(self, loss="cross_entropy", *, loss_options=None, class_weight=None, augment=None):
        fn = losses_lib.get(loss)
        if loss_options is not None and not isinstance(loss_options, dict):
            raise TypeError(f"loss_options: expected a dict, got {loss_options!r}")
        _check_options(fn, loss_options or {}, loss)
        if isinstance(class_weight, str) and class_weight != "balanced":
            raise ValueError(
                f"class_weight: expected 'balanced' or one weight per class, got {class_weight!r}"
            )
        if augment is not None and not callable(augment):
            raise TypeError(f"augment: expected a function augment(key, x) -> x, got {augment!r}")
        self.loss, self.loss_options = loss, dict(loss_options or {})
        self.class_weight, self.augment = class_weight, augment
        self.class_weights = None  # resolved from the first fit's labels

    @property
    def classification(self) -> bool:
        return self.loss in losses_lib.CLASSIFICATION_LOSSES

    def empty_metrics(self, metrics, num_classes):
        return metrics_lib.empty_states(metrics, num_classes)

    def check(self, trainer) -> None:
        if trainer.num_outputs is None and trainer.state is not None:
            raise TypeError(
                f"{type(trainer.model).__name__} returns several outputs, which the loss "
                f"{self.loss!r} cannot compare with targets; use loss='elbo' for a VAE"
            )

    def prepare(self, targets, num_outputs):
        if self.class_weight is None or self.class_weights is not None:
            return
        if targets is None:
            raise ValueError(
                "class_weight needs labels: this batch source has no targets() (give a "
                "Pipeline its labels=)"
            )
        classes = num_outputs if num_outputs and num_outputs > 1 else 2
        if isinstance(self.class_weight, str):
            labels = np.asarray(targets)
            labels = labels.argmax(axis=-1) if labels.ndim == 2 else labels
            self.class_weights = class_weights(labels.astype(np.int64), classes)
            return
        weights = np.asarray(self.class_weight, np.float32)
        if weights.shape != (classes,) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError(
                f"class_weight: expected {classes} finite weights >= 0 (one per class), got "
                f"{self.class_weight!r}"
            )
        if not np.any(weights > 0):
            raise ValueError("class_weight: every weight is 0, so no example would count")
        self.class_weights = weights

    def check_targets(self, y, num_examples, trainer, name):
        classes = trainer.num_outputs if self.classification else None
        y = _checks.as_labels(y, num_examples, classes, name)
        if self.classification and trainer.output_shape:
            _checks.check_class_targets(y, trainer.output_shape, name)
        return y

    def make_steps(self, metrics, num_classes, axis_name, model):
        args = (self.loss, metrics, num_classes, self.loss_options)
        options = {"augment": self.augment, "class_weights": self.class_weights}
        return (
            steps.make_train_step(*args, **options, axis_name=axis_name),
            steps.make_eval_step(*args, axis_name=axis_name),
        )

    def config(self) -> dict:
        loss = self.loss if isinstance(self.loss, str) else getattr(self.loss, "__name__", "")
        return {"task": self.name, "loss": loss, "loss_options": self.loss_options}


def _check_options(fn, options: dict, loss) -> None:
    """Keyword options the loss does not take are refused now, not at the first step."""
    import inspect

    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    fixed = {"predictions", "targets", "weights", "reduction"}  # what the steps pass
    unknown = sorted(set(options) - (set(parameters) - fixed))
    if unknown:
        takes = sorted(set(parameters) - fixed)
        raise TypeError(
            f"loss_options: the loss {loss!r} takes no {', '.join(map(repr, unknown))}; "
            f"it takes {', '.join(map(repr, takes)) or 'no options'}"
        )


class _Unlabelled(Task):
    """Tasks whose data is features alone and whose steps report their own terms."""

    unlabelled = True

    def check_metrics(self, metrics):
        if metrics:
            raise ValueError(
                f"the {self.name!r} task reports its own terms ({', '.join(self.terms)}); "
                f"metrics= must be empty, got {tuple(metrics)}"
            )
        return ()

    def check(self, trainer) -> None:
        if trainer.strategy.name == "pmap":
            raise ValueError(
                f"the {self.name!r} task runs with strategy='single' or 'sharded', not 'pmap'"
            )
        if trainer.precision != "float32":
            raise ValueError(
                f"the {self.name!r} task computes in float32; precision={trainer.precision!r}"
            )
        missing = [m for m in self.model_methods if not hasattr(trainer.model, m)]
        if missing:
            raise TypeError(
                f"the {self.name!r} task trains a model with {', '.join(self.model_methods)} "
                f"({self.model_kind}); {type(trainer.model).__name__} has no {missing[0]}"
            )


class ELBO(_Unlabelled):
    """Maximise a VAE's evidence lower bound: minimise its ``losses(x)["loss"]``."""

    name = "elbo"
    terms = ("loss", "reconstruction", "kl")
    model_methods = ("losses",)
    model_kind = "jaxdl.models.VAE"

    def make_steps(self, metrics, num_classes, axis_name, model):
        return objectives.make_elbo_steps()


class GAN(_Unlabelled):
    """The non-saturating GAN game; each network is updated by its own optimizer state."""

    name = "gan"
    terms = ("loss", "d_loss", "g_loss", "d_real", "d_fake")
    model_methods = ("generate", "discriminate", "latent_dim")
    model_kind = "jaxdl.models.GAN"

    def check(self, trainer) -> None:
        super().check(trainer)
        opt = trainer.optimizer
        if opt.freeze or opt.param_groups or opt.accumulate_steps > 1:
            raise ValueError(
                "freeze, param_groups and accumulate_steps are not supported with the 'gan' task"
            )

    def make_steps(self, metrics, num_classes, axis_name, model):
        return objectives.make_gan_steps(model.latent_dim)

    def per_network(self, model):
        return lambda make: objectives.gan_optimizer(make(), make())


TASKS = {"elbo": ELBO, "gan": GAN}


def as_task(loss) -> Task:
    """A task from ``Trainer(loss=...)``: a task as it is, "elbo"/"gan", or a loss."""
    if isinstance(loss, Task):
        return loss
    if isinstance(loss, str) and loss in TASKS:
        return TASKS[loss]()
    return Supervised(loss)
