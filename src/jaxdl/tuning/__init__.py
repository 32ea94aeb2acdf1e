"""Hyperparameter search, and many models trained at once with ``vmap``.

- :func:`grid_search` / :func:`random_search`: one ``Trainer`` per configuration, scored on
  a validation split or by stratified k-fold; results sorted by score, as a table, a CSV
  file and a plot of the score against each hyperparameter.
- :class:`Sweep`: K configurations that differ in continuous hyperparameters (learning
  rates, weight decays, seeds) trained as one compiled program; :func:`ensemble_predict`
  averages its members.
"""

from jaxdl.tuning.search import (
    Distribution,
    SearchResults,
    grid,
    grid_search,
    int_uniform,
    log_uniform,
    mlp_trainer,
    random_search,
    run_search,
    sample,
    uniform,
)
from jaxdl.tuning.sweep import Sweep, ensemble_predict

__all__ = [
    "Distribution",
    "SearchResults",
    "Sweep",
    "ensemble_predict",
    "grid",
    "grid_search",
    "int_uniform",
    "log_uniform",
    "mlp_trainer",
    "random_search",
    "run_search",
    "sample",
    "uniform",
]
