"""Training: the state, pure steps, tasks, the loop, its callbacks and the Trainer facade."""

from jaxdl.train import objectives, parallel, tasks
from jaxdl.train.callbacks import (
    Callback,
    CallbackList,
    CSVLogger,
    EarlyStopping,
    History,
    NonFiniteCheck,
    ProgressBar,
    ReduceLROnPlateau,
)
from jaxdl.train.checkpoint import Checkpointer
from jaxdl.train.checkpointing import Checkpoint, ModelCheckpoint
from jaxdl.train.custom import CustomLoss, CustomStep
from jaxdl.train.errors import CheckpointMismatchError, NonFiniteLossError
from jaxdl.train.export import export_model, load_model
from jaxdl.train.lr_finder import LRFinderResult, find_learning_rate
from jaxdl.train.objectives import gan_optimizer, make_elbo_steps, make_gan_steps
from jaxdl.train.stablehlo import export_stablehlo, load_exported
from jaxdl.train.state import TrainState, create_train_state, init_variables
from jaxdl.train.steps import make_epoch_runner, make_eval_step, make_train_step, predict_step
from jaxdl.train.tasks import ELBO, GAN, Supervised, Task
from jaxdl.train.trainer import Trainer
from jaxdl.train.transfer import Pretrained, read_variables, transfer_variables
from jaxdl.train.writers import TensorBoard

__all__ = [
    "CSVLogger",
    "Callback",
    "CallbackList",
    "Checkpoint",
    "CheckpointMismatchError",
    "Checkpointer",
    "CustomLoss",
    "CustomStep",
    "ELBO",
    "EarlyStopping",
    "GAN",
    "History",
    "ModelCheckpoint",
    "LRFinderResult",
    "NonFiniteCheck",
    "NonFiniteLossError",
    "Pretrained",
    "ProgressBar",
    "ReduceLROnPlateau",
    "Supervised",
    "Task",
    "TensorBoard",
    "TrainState",
    "Trainer",
    "create_train_state",
    "export_model",
    "export_stablehlo",
    "find_learning_rate",
    "gan_optimizer",
    "init_variables",
    "load_exported",
    "load_model",
    "make_epoch_runner",
    "make_elbo_steps",
    "make_eval_step",
    "make_gan_steps",
    "make_train_step",
    "objectives",
    "parallel",
    "predict_step",
    "read_variables",
    "tasks",
    "transfer_variables",
]
