"""jaxdl: a functional deep-learning library on JAX.

Models are Flax Linen modules; training is a pure, compiled step ``(state, batch) ->
(state, metrics)``; :class:`Trainer` is a thin host loop over it.
"""

from jaxdl import (
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
from jaxdl.compile_cache import use_compilation_cache
from jaxdl.host_memory import keep_freed_memory
from jaxdl.model_summary import summary
from jaxdl.optimizer import Optimizer
from jaxdl.train import (
    Callback,
    Checkpoint,
    CSVLogger,
    EarlyStopping,
    ModelCheckpoint,
    NonFiniteLossError,
    Pretrained,
    ReduceLROnPlateau,
    TensorBoard,
    Trainer,
    TrainState,
    create_train_state,
    export_model,
    export_stablehlo,
    init_variables,
    load_exported,
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
    "use_compilation_cache",
    "Callback",
    "Checkpoint",
    "Optimizer",
    "Pretrained",
    "tasks",
    "EarlyStopping",
    "ModelCheckpoint",
    "NonFiniteLossError",
    "ReduceLROnPlateau",
    "TensorBoard",
    "TrainState",
    "Trainer",
    "activations",
    "create_train_state",
    "data",
    "export_model",
    "export_stablehlo",
    "graphs",
    "init_variables",
    "load_exported",
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
