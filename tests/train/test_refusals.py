"""The Trainer and what it saves refuse bad input with jaxdl's own message, naming the
argument, before anything trains: each case here once reached users as a raw exception."""

import json

import numpy as np
import pytest

import jaxdl


def digits():
    return jaxdl.data.load("digits", seed=0)


def test_a_model_that_is_not_a_flax_module_is_refused():
    with pytest.raises(TypeError, match="model: expected a Flax Linen module, got function"):
        jaxdl.Trainer(lambda x: x)


@pytest.mark.parametrize(
    "model, loss, message",
    [
        (jaxdl.models.MLP((4, 10)), "elbo", "the 'elbo' task trains a model with losses"),
        (jaxdl.models.MLP((4, 10)), "gan", "the 'gan' task trains a model with generate"),
        (jaxdl.models.VAE((64,), 4), "cross_entropy", "returns several outputs.*loss='elbo'"),
    ],
)
def test_a_task_and_a_model_that_do_not_fit_are_refused(model, loss, message):
    with pytest.raises(TypeError, match=message):
        jaxdl.Trainer(model, loss=loss).fit(digits().train, epochs=1, verbose=False)


def test_an_absurd_epoch_count_is_refused_at_once_not_counted():
    # refused before the progress bar (or anything else) costs time in the epoch count
    trainer = jaxdl.Trainer(jaxdl.models.MLP((4, 10)))
    with pytest.raises(ValueError, match="epochs=1000000000000 of 19 steps is more steps"):
        trainer.fit(digits().train, epochs=10**12, batch_size=64, verbose=False)
    assert trainer.state is None  # nothing was built, let alone trained


def test_a_csv_log_in_a_missing_folder_is_refused_when_made(tmp_path):
    with pytest.raises(FileNotFoundError, match="CSVLogger: path .*: no folder"):
        jaxdl.CSVLogger(tmp_path / "missing" / "log.csv")


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "model.json is not valid JSON"),
        ('["a list"]', "expected format 'jaxdl-model-1', got 'list'"),
        ('{"format": "jaxdl-model-1"}', "does not describe a model"),
        (
            '{"format": "jaxdl-model-1", "model": {"class": "ModelSpec", "fields": {}}}',
            "unknown model class 'ModelSpec'",
        ),
        (
            '{"format": "jaxdl-model-1", "model": {"class": "MLP", "fields": {}}, '
            '"variables": "../elsewhere"}',
            "variables must name a folder inside it",
        ),
    ],
)
def test_a_malformed_model_json_is_refused_by_name(tmp_path, text, message):
    (tmp_path / "model.json").write_text(text)
    with pytest.raises(ValueError, match=message):
        jaxdl.load_model(tmp_path)


def test_the_refusals_above_leave_an_export_loadable(tmp_path):
    model = jaxdl.models.MLP((4, 3))
    trainer = jaxdl.Trainer(model)
    trainer.init(np.ones((1, 5), np.float32))
    trainer.export(tmp_path)
    saved = json.loads((tmp_path / "model.json").read_text())
    assert saved["model"] == {
        "class": "MLP",
        "fields": {"features": [4, 3], "activation": "relu", "dropout_rate": 0.0,
                   "batch_norm": False, "norm": None, "residual": False},
    }  # fmt: skip
    loaded, variables = jaxdl.load_model(tmp_path)
    assert loaded == model and set(variables) == {"params"}
