"""``Task``: the protocol every objective follows (``jaxdl.train.tasks`` holds the ones that
ship, ``jaxdl.train.custom`` the two that take the user's own loss or step)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from jaxdl import metrics as metrics_lib

OUTPUTS = ("logits", "probabilities", "classes")  # what Trainer.predict(output=) gives


def check_unique(names: Sequence[str]) -> None:
    """Refuse two metrics that would report under one name."""
    repeated = sorted({n for n in names if list(names).count(n) > 1})
    if repeated:
        raise ValueError(
            f"metrics: two metrics report under the name {repeated[0]!r} (the history shows "
            f"{', '.join(names)}); give a custom metric another name"
        )


def check_output(output) -> None:
    """``Trainer.predict(output=)``: one of ``OUTPUTS``."""
    if output not in OUTPUTS:
        raise ValueError(f"output: expected one of {', '.join(map(repr, OUTPUTS))}, got {output!r}")


class Task:
    """The protocol every task follows; see the module's table for the three that ship."""

    name = "task"
    unlabelled = False  # whether the data is features alone
    classification = False  # whether targets are class labels, checked even from a source
    default_metrics: tuple[str, ...] = ()
    terms: tuple[str, ...] = ("loss",)  # what the steps report besides ``metrics``

    def check(self, trainer) -> None:
        """Refuse a configuration the task cannot run (before anything is compiled)."""

    def check_metrics(self, metrics: Sequence) -> tuple[metrics_lib.Metric, ...]:
        """The metrics the run asked for (names of ``jaxdl.metrics.METRICS``, functions or
        state classes: ``jaxdl.metrics.as_metric``) as ``Metric`` objects, each named; an
        unknown one, or two of one name, is refused now."""
        resolved = tuple(metrics_lib.as_metric(m) for m in metrics)
        check_unique(self.metric_names(resolved))
        return resolved

    def metric_names(self, metrics: Sequence) -> tuple[str, ...]:
        """The names the steps report, in the order the history shows them."""
        return (*self.terms, *(str(m) for m in metrics))

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

    def output_transform(self, output: str) -> Callable:
        """``convert(outputs) -> outputs`` for ``Trainer.predict(output=...)``, refused now
        (before anything runs) where the task's outputs are not class scores. Only
        "logits", the outputs as they are, here."""
        check_output(output)
        if output != "logits":
            raise ValueError(
                f"output={output!r}: the {self.name!r} task's outputs are not class scores; "
                "use output='logits' (the model's outputs as they are)"
            )
        return lambda outputs: outputs

    def config(self) -> dict:
        """What ``Trainer.config()`` records of the task (JSON-ready): ``{"task": name}``."""
        return {"task": self.name}
