"""Training: state, pure steps, the Trainer loop and its callbacks."""

from jaxdl.train import objectives
from jaxdl.train.callbacks import Callback, CSVLogger, EarlyStopping, NonFiniteLossError
from jaxdl.train.checkpoint import Checkpointer, CheckpointMismatchError
from jaxdl.train.export import export_model, load_model
from jaxdl.train.objectives import gan_optimizer, make_elbo_steps, make_gan_steps
from jaxdl.train.state import TrainState, create_train_state, init_variables
from jaxdl.train.steps import make_epoch_runner, make_eval_step, make_train_step, predict_step
from jaxdl.train.trainer import Trainer
from jaxdl.train.transfer import read_variables, transfer_variables

__all__ = [
    "CSVLogger",
    "Callback",
    "CheckpointMismatchError",
    "Checkpointer",
    "EarlyStopping",
    "NonFiniteLossError",
    "TrainState",
    "Trainer",
    "create_train_state",
    "export_model",
    "gan_optimizer",
    "init_variables",
    "load_model",
    "make_epoch_runner",
    "make_elbo_steps",
    "make_eval_step",
    "make_gan_steps",
    "make_train_step",
    "objectives",
    "predict_step",
    "read_variables",
    "transfer_variables",
]
