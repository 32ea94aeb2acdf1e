"""Every model of ``jaxdl.models.ZOO`` through a checkpoint and an export: what comes back
is what was saved (the same module, equal as a dataclass, and the same arrays, so the same
outputs)."""

import jax
import numpy as np
import pytest

import jaxdl
from jaxdl.models import ZOO
from jaxdl.train import Checkpointer

SPECS = {spec.name: spec for spec in ZOO}
IMAGENET = ("resnet18", "resnet50")  # about 20 s each: nox -s slow
NAMES = [
    pytest.param(name, marks=pytest.mark.slow) if name in IMAGENET else name
    for name in sorted(SPECS)
]
TASKS = {"supervised": "cross_entropy", "reconstruction": "mse", "elbo": "elbo", "gan": "gan"}


def trainer_for(spec, seed: int) -> jaxdl.Trainer:
    model, x = spec.tiny()
    trainer = jaxdl.Trainer(model, loss=TASKS[spec.objective], seed=seed)
    trainer.init(x)
    return trainer


def leaves(tree):
    return [np.asarray(leaf) for leaf in jax.tree.leaves(jax.device_get(tree))]


@pytest.mark.parametrize("name", NAMES)
def test_a_checkpoint_and_an_export_give_back_what_was_saved(tmp_path, name):
    spec = SPECS[name]
    saved = trainer_for(spec, seed=0)
    checkpoints = tmp_path / "checkpoints"
    Checkpointer(checkpoints, asynchronous=False).save(7, saved.state, {"epoch": 1, "history": {}})
    fresh = trainer_for(spec, seed=1)  # other values, the same structure
    restored, meta = Checkpointer(checkpoints).restore(fresh.state)
    assert int(restored.step) == 0 and meta["epoch"] == 1
    for part in ("params", "batch_stats", "opt_state"):
        want, got = leaves(getattr(saved.state, part)), leaves(getattr(restored, part))
        assert len(want) == len(got)
        assert all(np.array_equal(a, b) for a, b in zip(want, got)), part
    np.testing.assert_array_equal(
        jax.random.key_data(restored.rng), jax.random.key_data(saved.state.rng)
    )
    # the export: the same module rebuilt from JSON, with the same arrays
    model, _ = spec.tiny()
    jaxdl.export_model(tmp_path / "export", model, saved.state.variables())
    loaded, variables = jaxdl.load_model(tmp_path / "export")
    assert loaded == model and set(variables) == set(saved.state.variables())
    for a, b in zip(leaves(saved.state.variables()), leaves(variables), strict=True):
        np.testing.assert_array_equal(a, b)
