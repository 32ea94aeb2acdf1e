"""The ``jaxdl`` command: ``train``, ``predict``, ``evaluate`` and ``list``.

``jaxdl train`` trains a model on a data set and writes a run folder; ``jaxdl predict RUN
--input FILE`` and ``jaxdl evaluate RUN`` use what it wrote; ``jaxdl list`` shows what can be
named and which models train on which data sets. With no arguments, ``jaxdl train`` trains an
MLP on scikit-learn's 8x8 digits (no download) to about 0.98 test accuracy.

A run folder holds:

- ``config.json``: the settings of ``jaxdl train`` (``--resume`` reads them back);
- ``preprocessing.json``: what the model expects, as JSON: the data set, the input shape and
  dtype, the class names, the feature columns of a CSV, the image size of an image folder
  and the fitted scaler (its statistics), which ``predict`` and ``evaluate`` apply;
- ``model/``: the trained model (``jaxdl.load_model``);
- ``checkpoints/`` (or ``--checkpoint-dir``): the run's state, to continue it with
  ``--resume``;
- ``history.csv``, ``metrics.json``, ``loss_curve.png``, and ``confusion_matrix.png``
  (classifiers), ``samples.png`` (VAE, GAN) or ``reconstructions.png`` (autoencoder, VAE).

Ctrl-C (SIGINT) or SIGTERM stops training after the running compiled call; the run folder is
completed (model, history, checkpoint) and a message says how to continue. Messages of the
library (the ``jaxdl`` logger) go to standard error; results go to standard output.

The package, one concern a module: ``app`` (``main``: messages, exit statuses),
``arguments`` (the parser), ``catalog`` (what trains on what, ``jaxdl list``), ``datasets``
(what a run trains on), ``modelling`` (its model, loss and metrics), ``runfolder`` (the files
of a run folder), ``training`` (``jaxdl train``) and ``inference`` (``predict``, ``evaluate``).
"""

from jaxdl.cli.app import COMMANDS, main
from jaxdl.cli.arguments import DESCRIPTION, build_parser
from jaxdl.cli.catalog import GRAPH_SETS, list_names
from jaxdl.cli.datasets import Data
from jaxdl.cli.inference import evaluate, predict
from jaxdl.cli.training import train

__all__ = [
    "COMMANDS",
    "DESCRIPTION",
    "GRAPH_SETS",
    "Data",
    "build_parser",
    "evaluate",
    "list_names",
    "main",
    "predict",
    "train",
]
