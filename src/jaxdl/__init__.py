"""jaxdl: a functional deep-learning library on JAX.

Models are Flax Linen modules; training is a pure, compiled step ``(state, batch) ->
(state, metrics)``; :class:`Trainer` is a thin host loop over it.
"""

from jaxdl.host_memory import keep_freed_memory

keep_freed_memory()  # before JAX's CPU threads start: they then reuse their step buffers

from jaxdl import (  # noqa: E402
    activations,
    data,
    graphs,
    losses,
    metrics,
    models,
    optim,
    plotting,
    train,
    tuning,
)
from jaxdl.model_summary import summary  # noqa: E402
from jaxdl.optimizer import Optimizer  # noqa: E402
from jaxdl.train import (  # noqa: E402
    Callback,
    Checkpoint,
    CSVLogger,
    EarlyStopping,
    NonFiniteLossError,
    Pretrained,
    Trainer,
    TrainState,
    create_train_state,
    export_model,
    init_variables,
    load_model,
    make_eval_step,
    make_train_step,
    parallel,
    tasks,
)

__version__ = "0.1.0"

__all__ = [
    "CSVLogger",
    "keep_freed_memory",
    "Callback",
    "Checkpoint",
    "Optimizer",
    "Pretrained",
    "tasks",
    "EarlyStopping",
    "NonFiniteLossError",
    "TrainState",
    "Trainer",
    "activations",
    "create_train_state",
    "data",
    "export_model",
    "graphs",
    "init_variables",
    "load_model",
    "losses",
    "make_eval_step",
    "make_train_step",
    "metrics",
    "models",
    "optim",
    "parallel",
    "plotting",
    "summary",
    "train",
    "tuning",
]
