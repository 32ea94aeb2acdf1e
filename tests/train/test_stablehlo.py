"""``Trainer.export(path, format="stablehlo")``: the compiled inference program, reloaded with
no model code, gives ``predict``'s outputs on batches of any size, for jaxdl's models and for
a custom Flax module."""

import json
import subprocess
import sys

import flax.linen as nn
import jax
import numpy as np
import pytest

import jaxdl
from jaxdl.models import ZOO

SPECS = {spec.name: spec for spec in ZOO}
TASKS = {"supervised": "cross_entropy", "reconstruction": "mse", "elbo": "elbo", "gan": "gan"}


def trained(spec_name: str):
    model, x = SPECS[spec_name].tiny()
    trainer = jaxdl.Trainer(model, loss=TASKS[SPECS[spec_name].objective], seed=0)
    trainer.init(x)
    return trainer, x


@pytest.mark.parametrize("name", ["mlp", "cnn", "gru", "transformer"])
def test_the_program_gives_predicts_outputs_on_batches_of_any_size(tmp_path, name):
    trainer, x = trained(name)
    trainer.export(tmp_path / "program", format="stablehlo")
    exported = jaxdl.load_exported(tmp_path / "program")
    rows = np.concatenate([x, x[::-1], x])  # more rows than the example had
    want = trainer.predict(rows)  # each row's outputs depend on that row alone
    for size in (1, len(rows)):
        got = np.asarray(exported.call(rows[:size]))
        np.testing.assert_allclose(got, want[:size], rtol=1e-6, atol=1e-6)
    saved = json.loads((tmp_path / "program" / "model.json").read_text())
    assert saved["inputs"][0]["shape"] == ["batch", *x.shape[1:]]
    assert saved["inputs"][0]["dtype"] == str(x.dtype)


def test_a_graph_model_is_exported_for_the_example_graphs_sizes(tmp_path):
    trainer, graph = trained("gcn")
    with pytest.raises(ValueError, match="example: the model takes inputs other than one array"):
        trainer.export(tmp_path / "program", format="stablehlo")
    trainer.export(tmp_path / "program", format="stablehlo", example=graph)
    got = jaxdl.load_exported(tmp_path / "program").call(graph)
    np.testing.assert_allclose(np.asarray(got), trainer.predict(graph), rtol=1e-6, atol=1e-6)


class Gated(nn.Module):
    """A model jaxdl does not know: a gated linear unit and a head."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.Dense(16)(x) * nn.sigmoid(nn.Dense(16)(x))
        h = nn.Dropout(0.5, deterministic=not train)(h)
        return nn.Dense(3)(h)


FRESH_PROCESS = """
import sys
import jax
import numpy as np
# only JAX: no jaxdl, no flax, no model code
with open(sys.argv[1], "rb") as f:
    exported = jax.export.deserialize(bytearray(f.read()))
x = np.load(sys.argv[2])
np.save(sys.argv[3], np.asarray(exported.call(x)))
assert "jaxdl" not in sys.modules and "flax" not in sys.modules
"""


def test_a_custom_module_is_exported_and_runs_in_a_process_without_jaxdl(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0)
    trainer = jaxdl.Trainer(Gated(), seed=0)
    trainer.fit((x, y), epochs=2, batch_size=32, verbose=False)
    with pytest.raises(TypeError, match='format="stablehlo"'):
        trainer.export(tmp_path / "json")
    folder = tmp_path / "program"
    trainer.export(folder, format="stablehlo")
    program = folder / json.loads((folder / "model.json").read_text())["program"]
    np.save(tmp_path / "x.npy", x[:7])
    subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, program, tmp_path / "x.npy", tmp_path / "y.npy"],
        check=True,
    )
    # inference mode: dropout is off, so the outputs are predict's
    np.testing.assert_allclose(
        np.load(tmp_path / "y.npy"), trainer.predict(x[:7]), rtol=1e-6, atol=1e-6
    )


def test_exporting_again_replaces_the_program_and_a_foreign_folder_is_refused(tmp_path):
    trainer, x = trained("mlp")
    folder = tmp_path / "program"
    trainer.export(folder, format="stablehlo")
    trainer.state = trainer.state.replace(
        params=jax.tree.map(lambda p: p + 1.0, trainer.state.params)
    )
    trainer.export(folder, format="stablehlo")
    assert len([n for n in folder.iterdir() if n.name.startswith("program")]) == 1
    np.testing.assert_allclose(
        np.asarray(jaxdl.load_exported(folder).call(x)), trainer.predict(x), rtol=1e-6, atol=1e-6
    )
    with pytest.raises(ValueError, match="it is read with jaxdl.load_exported"):
        jaxdl.load_model(folder)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a jaxdl export"):
        trainer.export(mine, format="stablehlo")
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    with pytest.raises(ValueError, match="format: expected 'jaxdl' or 'stablehlo', got 'onnx'"):
        trainer.export(tmp_path / "other", format="onnx")
