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
| `CustomLoss` | either | ``fn(params, batch, rng, model)``    | loss, its terms, ``metrics``  |
| `CustomStep` | either | ``step_fn(state, batch, rng)``       | its terms + ``metrics``       |

``Trainer(model, loss=...)`` takes a task, or a loss name or callable (a ``Supervised``
task), or "elbo" / "gan". The two custom tasks live in ``jaxdl.train.custom``.

A task also says what ``Trainer.predict(x, output=...)`` makes of the model's outputs:
"logits" (as they are), "probabilities" or "classes" (``Task.output_transform``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import numpy as np

from jaxdl import _checks
from jaxdl import losses as losses_lib
from jaxdl import metrics as metrics_lib
from jaxdl.data.sampling import class_weights
from jaxdl.train import objectives, steps
from jaxdl.train.custom import CustomLoss, CustomStep, call_model  # noqa: F401 (jaxdl.tasks.*)
from jaxdl.train.task import OUTPUTS, Task, check_output, check_unique  # noqa: F401


class Supervised(Task):
    """Predict the targets: minimise the mask-weighted mean of a per-example ``loss``.

    ``Trainer(model, loss="mse")`` makes ``Supervised("mse")``; the task itself is written
    out to pass options: ``Trainer(model, loss=jaxdl.tasks.Supervised("cross_entropy",
    class_weight="balanced", augment=jaxdl.data.augment.random_flip()))``.

    Args:
      loss: a name of ``jaxdl.losses.LOSSES`` or a custom loss: a callable
        ``loss(outputs, targets, **loss_options) -> values`` of the model's outputs (B, ...)
        and the batch's targets (B, ...), returning one value per example, shape (B,) (the
        steps take the mask-weighted mean over the batch, so padded rows never count).
        "cross_entropy" takes integer labels (B,) or one-hot rows (B, C). For a model of
        several outputs (a dict, or a tuple, of arrays), one loss per output, in the same
        structure: ``{"digit": "cross_entropy", "size": "mse"}``, with targets of that
        structure; the objective is then the ``loss_weights``-weighted sum of the outputs'
        mean losses, and the history reports each output's unweighted loss as
        ``"<output>_loss"`` (``"output_<i>_loss"`` for a tuple's i-th) beside ``loss``.
      loss_weights: for a loss per output, each output's weight in the objective, a dict (or
        a tuple) of finite numbers >= 0; an output left out weighs 1. Default: all 1.
      loss_options: keyword arguments of the loss (e.g. ``from_logits=False``); for a loss
        per output, a dict of them per output.
      class_weight: "balanced" (``jaxdl.data.class_weights`` of the training labels) or one
        weight per class, multiplying each example's loss in training (the reported
        metrics and ``evaluate`` stay unweighted). One output only.
      augment: ``augment(key, x) -> x`` applied to every training batch inside the
        compiled step (``jaxdl.data.augment``); never to evaluation or prediction.

    Attributes:
      default_metrics: what a ``Trainer`` reports without ``metrics=``, by the loss:
        ("accuracy",) for the classification losses "cross_entropy",
        "sparse_cross_entropy" and "binary_cross_entropy", none for the others (regression
        losses, hinge, KL, custom losses), as Keras reports none; per output (a dict) for a
        loss per output.
    """

    name = "supervised"

    def __init__(
        self,
        loss="cross_entropy",
        *,
        loss_weights=None,
        loss_options=None,
        class_weight=None,
        augment=None,
    ):
        if loss_options is not None and not isinstance(loss_options, dict):
            raise TypeError(f"loss_options: expected a dict, got {loss_options!r}")
        self.outputs = _output_keys(loss)  # None: one output
        if self.outputs is None:
            _check_options(losses_lib.get(loss), loss_options or {}, loss)
            if loss_weights is not None:
                raise ValueError(
                    "loss_weights: weighs the losses of several outputs; give loss= one loss "
                    f"per output (a dict or tuple), got the single loss {loss!r}"
                )
        else:
            _check_per_output("loss_options", loss_options, self.outputs, dict)
            for key in self.outputs:
                options = (loss_options or {}).get(key) or {}
                _check_options(losses_lib.get(loss[key]), options, loss[key])
            loss_weights = _check_loss_weights(loss_weights, self.outputs)
            if class_weight is not None:
                raise ValueError(
                    "class_weight: weighs the classes of one output; with a loss per output "
                    "weight the outputs with loss_weights="
                )
        if isinstance(class_weight, str) and class_weight != "balanced":
            raise ValueError(
                f"class_weight: expected 'balanced' or one weight per class, got {class_weight!r}"
            )
        if augment is not None and not callable(augment):
            raise TypeError(f"augment: expected a function augment(key, x) -> x, got {augment!r}")
        self.loss, self.loss_options = loss, dict(loss_options or {})
        self.loss_weights = loss_weights
        self.class_weight, self.augment = class_weight, augment
        self.class_weights = None  # resolved from the first fit's labels
        self.output_shapes = None  # {output: shape after the batch axis}, once known

    @property
    def classification(self) -> bool:
        return self.outputs is None and _loss_key(self.loss) in losses_lib.CLASSIFICATION_LOSSES

    @property
    def default_metrics(self):
        if self.outputs is None:
            return ("accuracy",) if _loss_key(self.loss) in _ACCURACY_LOSSES else ()
        return {
            k: ("accuracy",) for k in self.outputs if _loss_key(self.loss[k]) in _ACCURACY_LOSSES
        }

    @property
    def terms(self) -> tuple[str, ...]:
        if self.outputs is None:
            return ("loss",)
        return ("loss", *(f"{steps.output_name(k)}_loss" for k in self.outputs))

    def check_metrics(self, metrics):
        """As ``Task.check_metrics``; for a loss per output, ``metrics`` is a dict of metrics
        per output (``{"digit": ["accuracy"]}``), each named ``"<output>_<metric>"``."""
        if self.outputs is None:
            if isinstance(metrics, Mapping):
                raise TypeError(
                    "metrics: a dict gives metrics per output, for a loss per output "
                    f"(loss={{output: loss}}); this task has the single loss {self.loss!r}; got "
                    f"{metrics!r}"
                )
            return super().check_metrics(metrics)
        if not isinstance(metrics, Mapping):
            if len(metrics) == 0:
                return ()
            raise TypeError(
                f"metrics: the model has several outputs ({', '.join(map(str, self.outputs))}); "
                f"give metrics per output, e.g. metrics={{{self.outputs[0]!r}: ['accuracy']}}; "
                f"got {metrics!r}"
            )
        _check_per_output("metrics", metrics, self.outputs, (list, tuple, str))
        resolved = []
        for key in self.outputs:
            specs = metrics.get(key, ())
            for spec in (specs,) if isinstance(specs, str) else specs:
                resolved.append(_for_output(metrics_lib.as_metric(spec), key))
        check_unique(self.metric_names(resolved))
        return tuple(resolved)

    def _num_classes(self, num_classes):
        """The trainer's class count, or {output: C} for a loss per output."""
        if self.outputs is None or self.output_shapes is None:
            return num_classes
        return {
            k: shape[-1] if len(shape) and shape[-1] > 1 else 2
            for k, shape in self.output_shapes.items()
        }

    def empty_metrics(self, metrics, num_classes):
        states = metrics_lib.empty_states(metrics, self._num_classes(num_classes))
        return {**{name: metrics_lib.Mean.empty() for name in self.terms}, **states}

    def check(self, trainer) -> None:
        if trainer.state is None:
            return
        if self.outputs is None:
            if trainer.num_outputs is None:
                raise TypeError(
                    f"{type(trainer.model).__name__} returns several outputs, which the loss "
                    f"{self.loss!r} cannot compare with targets; give loss= one loss per output "
                    "(a dict or tuple of the outputs' structure), or use loss='elbo' for a VAE"
                )
            return
        self.output_shapes = _output_shapes(trainer, self.loss, self.outputs)

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
        """Targets against the model's outputs: integer labels in range and of the outputs'
        shape for a classification loss; any numeric targets (floats or integers) for the
        others. For a loss per output, ``y`` has the loss's structure, each output's targets
        checked by its loss."""
        if self.outputs is None:
            classes = trainer.num_outputs if self.classification else None
            y = _checks.as_labels(y, num_examples, classes, name)
            if self.classification and trainer.output_shape:
                _checks.check_class_targets(y, trainer.output_shape, name)
            return y
        if isinstance(self.loss, Mapping):
            fits = isinstance(y, Mapping) and set(y) == set(self.outputs)
            have = sorted(y) if isinstance(y, Mapping) else type(y).__name__
        else:
            fits = isinstance(y, list | tuple) and len(y) == len(self.outputs)
            have = f"{len(y)} arrays" if isinstance(y, list | tuple) else type(y).__name__
        if not fits:
            want = sorted(self.outputs) if isinstance(self.loss, Mapping) else len(self.outputs)
            raise ValueError(
                f"{name}: expected targets for the outputs {want} (one per loss), got {have}"
            )
        checked = {}
        for key in self.outputs:
            where = f"{name}[{key!r}]"
            shape = (self.output_shapes or {}).get(key)
            labels = _loss_key(self.loss[key]) in losses_lib.CLASSIFICATION_LOSSES
            classes = (shape[-1] if len(shape) else 1) if labels and shape is not None else None
            checked[key] = _checks.as_labels(y[key], num_examples, classes, where)
            if labels and shape:
                _checks.check_class_targets(checked[key], shape, where)
        if isinstance(y, Mapping):
            return checked
        return (tuple if isinstance(y, tuple) else list)(checked[k] for k in self.outputs)

    def make_steps(self, metrics, num_classes, axis_name, model):
        args = (self.loss, metrics, self._num_classes(num_classes), self.loss_options)
        weights = {"loss_weights": self.loss_weights}
        options = {"augment": self.augment, "class_weights": self.class_weights, **weights}
        return (
            steps.make_train_step(*args, **options, axis_name=axis_name),
            steps.make_eval_step(*args, **weights, axis_name=axis_name),
        )

    def output_transform(self, output: str) -> Callable:
        """``convert(outputs)`` for ``Trainer.predict(output=...)``, by the loss:

        - "logits": the outputs as they are.
        - "probabilities": softmax over the last axis for "cross_entropy",
          "sparse_cross_entropy" and "kl_divergence"; an element-wise sigmoid for
          "binary_cross_entropy" (a single logit (N, 1) -> the positive class's probability
          (N, 1)); a custom loss by the outputs' shape (softmax for C > 1, sigmoid for one).
          With ``loss_options={"from_logits": False}`` the outputs are probabilities already
          and come as they are.
        - "classes": the arg-max over the last axis (N, ..., C) -> (N, ...) where the
          probabilities are a softmax; 1 where the probability exceeds 0.5 (a logit or
          hinge score above 0) where they are element-wise, a single output (N, 1) giving
          (N,). int64.

        A regression loss ("mse", "mae", "msle") is refused (a ValueError), as are
        probabilities of a hinge loss; for a loss per output each output is converted by its
        own loss, and outputs of those losses come as they are.
        """
        check_output(output)
        if self.outputs is None:
            return _converter(self.loss, self.loss_options, output, strict=True)
        converters = {
            k: _converter(self.loss[k], self.loss_options.get(k) or {}, output, strict=False)
            for k in self.outputs
        }

        def convert(outputs):
            if isinstance(outputs, Mapping):
                return {k: converters[k](outputs[k]) for k in self.outputs}
            return type(outputs)(converters[k](outputs[k]) for k in self.outputs)

        return convert

    def config(self) -> dict:
        """``{"task": "supervised", "loss": name, "loss_options": {...}}`` (JSON-ready); for
        a loss per output, ``loss`` names one per output and ``loss_weights`` is added."""
        if self.outputs is None:
            return {
                "task": self.name,
                "loss": _loss_name(self.loss),
                "loss_options": self.loss_options,
            }
        names = {str(k): _loss_name(self.loss[k]) for k in self.outputs}
        weights = {str(k): w for k, w in self.loss_weights.items()}
        return {
            "task": self.name,
            "loss": names,
            "loss_options": {str(k): v for k, v in self.loss_options.items()},
            "loss_weights": weights,
        }


# losses whose outputs are class scores, and what ``predict(output=...)`` makes of them
_ACCURACY_LOSSES = frozenset({"cross_entropy", "sparse_cross_entropy", "binary_cross_entropy"})
_SOFTMAX_LOSSES = frozenset({"cross_entropy", "sparse_cross_entropy", "kl_divergence"})
_ELEMENTWISE_LOSSES = frozenset({"binary_cross_entropy", "hinge", "squared_hinge"})
_SCORE_LOSSES = frozenset({"hinge", "squared_hinge"})  # margins, not logits
_REGRESSION_LOSSES = frozenset({"mse", "mae", "msle"})


def _loss_key(loss) -> str | None:
    """A loss's name as ``LOSSES`` spells it; None for a callable."""
    return loss.lower().replace("-", "_") if isinstance(loss, str) else None


def _loss_name(loss) -> str:
    return loss if isinstance(loss, str) else getattr(loss, "__name__", "")


def _output_keys(loss) -> tuple | None:
    """The outputs of a loss per output (a dict's keys or a tuple's indices); None for one
    loss. Each entry must be a loss."""
    if isinstance(loss, Mapping):
        keys = tuple(loss)
        bad = [k for k in keys if not isinstance(k, str) or not k]
        if bad:
            raise TypeError(f"loss: a dict of losses is keyed by output names (str), got {bad}")
    elif isinstance(loss, list | tuple):
        keys = tuple(range(len(loss)))
    else:
        return None
    if not keys:
        raise ValueError("loss: expected one loss per output, got none")
    for key in keys:
        losses_lib.get(loss[key])  # a name of LOSSES or a callable, refused by name now
    return keys


def _check_per_output(argument: str, value, outputs: tuple, kind) -> None:
    """``value``: None or a dict keyed by some of ``outputs`` (indices for a tuple's)."""
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{argument}: with a loss per output, expected a dict per output, got {value!r}"
        )
    unknown = [k for k in value if k not in outputs]
    if unknown:
        raise ValueError(
            f"{argument}: {', '.join(map(repr, unknown))} is not an output of the loss; the "
            f"outputs are {', '.join(map(repr, outputs))}"
        )
    for key, entry in value.items():
        if not isinstance(entry, kind):
            raise TypeError(f"{argument}[{key!r}]: expected {kind}, got {entry!r}")


def _check_loss_weights(loss_weights, outputs: tuple) -> dict:
    """{output: weight}: a dict (or a sequence for a tuple's outputs) of finite weights >= 0,
    1 for an output left out."""
    if loss_weights is None:
        return {k: 1.0 for k in outputs}
    if isinstance(loss_weights, list | tuple):
        if len(loss_weights) != len(outputs):
            raise ValueError(
                f"loss_weights: expected {len(outputs)} weights (one per output), got "
                f"{len(loss_weights)}"
            )
        loss_weights = dict(zip(outputs, loss_weights))
    _check_per_output("loss_weights", loss_weights, outputs, (int, float, np.number))
    weights = {k: float(loss_weights.get(k, 1.0)) for k in outputs}
    bad = {k: w for k, w in weights.items() if not np.isfinite(w) or w < 0}
    if bad:
        raise ValueError(f"loss_weights: expected finite weights >= 0, got {bad}")
    if not any(w > 0 for w in weights.values()):
        raise ValueError("loss_weights: every weight is 0, so nothing would be trained")
    return weights


def _output_shapes(trainer, loss, outputs: tuple) -> dict | None:
    """{output: shape after the batch axis} of the model's outputs from their shapes alone
    (no compile), checked against the loss's outputs; None before the trainer knows them."""
    out = getattr(trainer, "output_struct", None)  # learned at init, from any inputs
    if out is None:
        return None
    model = type(trainer.model).__name__
    if isinstance(loss, Mapping):
        if not isinstance(out, Mapping) or set(out) != set(outputs):
            have = sorted(out) if isinstance(out, Mapping) else "one array, not a dict"
            raise ValueError(
                f"loss: one loss per output for {sorted(outputs)}, but {model} returns {have}"
            )
    elif not isinstance(out, list | tuple) or len(out) != len(outputs):
        have = f"{len(out)} outputs" if isinstance(out, list | tuple) else "one array"
        raise ValueError(
            f"loss: one loss per output for {len(outputs)} outputs, but {model} returns {have}"
        )
    shapes = {}
    for key in outputs:
        if not isinstance(out[key], jax.ShapeDtypeStruct):
            raise TypeError(f"loss: the output {key!r} of {model} is not one array")
        shapes[key] = tuple(out[key].shape[1:])
    return shapes


def _for_output(metric: metrics_lib.Metric, key) -> metrics_lib.Metric:
    """``metric`` of one output of a model of several, named ``"<output>_<metric>"``."""

    def classes(num_classes):
        return num_classes.get(key) if isinstance(num_classes, Mapping) else num_classes

    def from_batch(predictions, targets, mask=None, num_classes=None):
        return metric.from_batch(predictions[key], targets[key], mask, classes(num_classes))

    return metrics_lib.Metric(
        from_batch,
        lambda num_classes=None: metric.empty(classes(num_classes)),
        f"{steps.output_name(key)}_{metric.name}",
    )


def _softmax(values: np.ndarray) -> np.ndarray:
    z = np.exp(values - values.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _sigmoid(values: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(values))  # never overflows
    return np.where(values >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(values.dtype)


def _converter(loss, options: dict, output: str, strict: bool) -> Callable:
    """How ``predict`` makes ``output`` of the outputs of one loss; a loss without class
    scores is refused (``strict``) or its outputs pass as they are."""
    key, same = _loss_key(loss), (lambda values: values)
    if output == "logits":
        return same
    refused = None
    if key in _REGRESSION_LOSSES:
        refused = f"the loss {loss!r} is a regression loss, whose outputs are values"
    elif key in _SCORE_LOSSES and output == "probabilities":
        refused = f"the loss {loss!r} gives margins, not probabilities (use output='classes')"
    if refused:
        if strict:
            raise ValueError(
                f"output={output!r}: {refused}, not class scores; predict(x) gives the outputs "
                "as they are"
            )
        return same
    already = options.get("from_logits", True) is False  # the outputs are probabilities

    def convert(values):
        values = np.asarray(values)
        several = values.ndim >= 2 and values.shape[-1] > 1
        elementwise = key in _ELEMENTWISE_LOSSES or (key not in _SOFTMAX_LOSSES and not several)
        if output == "probabilities":
            if already:
                return values
            return _sigmoid(values) if elementwise else _softmax(values)
        if not elementwise:
            return values.argmax(axis=-1)
        if values.ndim >= 2 and values.shape[-1] == 1:
            values = values[..., 0]
        return (values > (0.5 if already else 0.0)).astype(np.int64)

    return convert


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
