"""Training: state, pure steps, the Trainer loop and its callbacks."""

from jaxdl.train.callbacks import Callback, CSVLogger, EarlyStopping, NonFiniteLossError
from jaxdl.train.state import TrainState, create_train_state, init_variables
from jaxdl.train.steps import make_epoch_runner, make_eval_step, make_train_step, predict_step
from jaxdl.train.trainer import Trainer

__all__ = [
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "NonFiniteLossError",
    "TrainState",
    "Trainer",
    "create_train_state",
    "init_variables",
    "make_epoch_runner",
    "make_eval_step",
    "make_train_step",
    "predict_step",
]
