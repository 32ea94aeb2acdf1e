"""Checkpoints: a run stopped and resumed ends bit-identical to one that never stopped."""

import json
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

import jaxdl


def leaves_equal(a, b) -> bool:
    a, b = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


class Interrupt(jaxdl.Callback):
    """Raises after epoch ``at`` ends, as a crash or a kill would."""

    def __init__(self, at: int):
        self.at = at

    def on_epoch_end(self, trainer, epoch, logs):
        if epoch == self.at:
            raise KeyboardInterrupt


def make_trainer(directory, **kw):
    model = jaxdl.models.MLP(features=(32, 10), dropout_rate=0.2)
    return jaxdl.Trainer(model, schedule="cosine", seed=3, checkpoint_dir=str(directory), **kw)


def fit(trainer, data, callbacks, **kw):
    return trainer.fit(
        data.train,
        epochs=5,
        batch_size=64,
        validation_data=data.validation,
        callbacks=callbacks,
        verbose=False,
        **kw,
    )


def test_a_resumed_run_ends_bit_identical_to_an_uninterrupted_one(tmp_path):
    data = jaxdl.data.load("digits", seed=0)
    whole = make_trainer(tmp_path / "whole")
    expected = fit(whole, data, [jaxdl.EarlyStopping(patience=50)])

    first = make_trainer(tmp_path / "cut")
    with pytest.raises(KeyboardInterrupt):
        fit(first, data, [jaxdl.EarlyStopping(patience=50), Interrupt(at=2)])
    assert first.epoch == 3  # epochs 0, 1, 2 ran; epoch 2's checkpoint was not written
    stopping = jaxdl.EarlyStopping(patience=50)
    second = make_trainer(tmp_path / "cut")  # a new process would start like this
    history = fit(second, data, [stopping], resume=True)

    assert history == expected  # every epoch, restored ones included, bit for bit
    assert int(second.state.step) == int(whole.state.step) and second.epoch == 5
    assert leaves_equal(second.state.params, whole.state.params)
    assert leaves_equal(second.state.opt_state, whole.state.opt_state)
    assert np.array_equal(
        jax.random.key_data(second.state.rng), jax.random.key_data(whole.state.rng)
    )
    assert stopping.best == min(expected["val_loss"])  # the callback's state came back too


def test_resume_without_a_checkpoint_starts_fresh_and_finished_runs_stay_finished(tmp_path):
    data = jaxdl.data.load("digits", seed=0)
    trainer = make_trainer(tmp_path, keep_checkpoints=2)
    history = fit(trainer, data, [], resume=True)
    assert len(history["loss"]) == 5
    kept = sorted(d for d in os.listdir(tmp_path) if d.isdigit())
    assert kept == ["4", "5"]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["seed"] == 3 and config["schedule"] == "cosine" and "MLP" in config["model"]
    again = make_trainer(tmp_path)
    assert fit(again, data, [], resume=True) == history  # nothing left to run
    with pytest.raises(FileExistsError, match="pass resume=True to continue that run"):
        fit(make_trainer(tmp_path), data, [])


def test_resume_needs_a_checkpoint_dir():
    trainer = jaxdl.Trainer(jaxdl.models.MLP(features=(4, 10)))
    with pytest.raises(ValueError, match="needs Trainer\\(checkpoint_dir=...\\)"):
        trainer.fit(jaxdl.data.load("digits").train, epochs=1, resume=True, verbose=False)


def test_a_gan_run_resumes_exactly_too(tmp_path):
    from sklearn.datasets import load_digits

    images = (load_digits().data[:192] / 16.0).reshape(-1, 8, 8, 1).astype(np.float32)
    gan = jaxdl.models.GAN(
        jaxdl.models.Generator((8, 8, 1), (8, 4)), jaxdl.models.Discriminator((4, 8)), 6
    )

    def run(directory, callbacks, resume=False):
        trainer = jaxdl.Trainer(gan, loss="gan", seed=1, checkpoint_dir=str(directory))
        return trainer, trainer.fit(
            images, epochs=3, batch_size=64, callbacks=callbacks, verbose=False, resume=resume
        )

    whole, expected = run(tmp_path / "whole", [])
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", [Interrupt(at=1)])
    resumed, history = run(tmp_path / "cut", [], resume=True)
    assert history == expected
    assert leaves_equal(resumed.state.params, whole.state.params)
    assert leaves_equal(resumed.state.batch_stats, whole.state.batch_stats)


def test_a_damaged_newest_checkpoint_is_named_and_the_previous_one_restored(tmp_path):
    data = jaxdl.data.load("digits", seed=0)
    trainer = make_trainer(tmp_path)
    fit(trainer, data, [])
    newest = tmp_path / "5"
    for root, _, files in os.walk(newest / "state"):
        for name in files:  # truncate every data file, as a disk error or a cut copy would
            with open(os.path.join(root, name), "r+b") as f:
                f.truncate(max(0, os.path.getsize(f.name) // 2))
    resumed = make_trainer(tmp_path)
    with pytest.warns(UserWarning, match=f"checkpoint {newest} could not be read.*restoring"):
        history = fit(resumed, data, [], resume=True)
    assert resumed.epoch == 5 and len(history["loss"]) == 5  # epoch 5 was run again
    assert leaves_equal(resumed.state.params, trainer.state.params)


def test_a_checkpoint_of_another_model_lists_each_mismatch(tmp_path):
    data = jaxdl.data.load("digits", seed=0)
    fit(make_trainer(tmp_path), data, [])
    other = jaxdl.Trainer(
        jaxdl.models.MLP(features=(16, 10)), schedule="cosine", seed=3, checkpoint_dir=str(tmp_path)
    )
    with pytest.raises(ValueError, match="does not fit this model") as error:
        fit(other, data, [], resume=True)
    message = str(error.value)
    assert "['params']['dense_0']['kernel']: checkpoint (64, 32), model (64, 16)" in message
    assert "['params']['output']['kernel']: checkpoint (32, 10), model (16, 10)" in message


TRAIN_SCRIPT = """
import json, sys, time
import numpy as np
import jax
import jaxdl

class Report(jaxdl.Callback):
    def on_epoch_end(self, trainer, epoch, logs):
        print(f"epoch {epoch} done", flush=True)
        time.sleep(0.2)  # room for the parent to kill us mid-run

directory, out = sys.argv[1], sys.argv[2]
trainer = jaxdl.Trainer(
    jaxdl.models.MLP(features=(32, 10), dropout_rate=0.2), schedule="cosine", seed=3,
    checkpoint_dir=directory,
)
history = trainer.fit(
    jaxdl.data.load("digits", seed=0).train, epochs=8, batch_size=64, callbacks=[Report()],
    verbose=False, resume=True,
)
leaves = jax.tree.leaves(jax.device_get((trainer.state.params, trainer.state.opt_state)))
np.savez(out + ".npz", *leaves)
with open(out + ".json", "w") as f:
    json.dump(history, f)
"""


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The training script, and what it ends with when nothing stops it."""
    folder = tmp_path_factory.mktemp("whole")
    script = folder / "train.py"
    script.write_text(TRAIN_SCRIPT)
    subprocess.run(
        [sys.executable, str(script), str(folder / "ckpt"), str(folder / "whole")],
        check=True,
        capture_output=True,
    )
    return script, folder / "whole"


def same_end(a, b) -> bool:
    """Two runs of the script ended with the same parameters, optimizer state and history."""
    first, second = np.load(f"{a}.npz"), np.load(f"{b}.npz")
    arrays = len(first.files) == len(second.files) > 0 and all(
        np.array_equal(first[k], second[k]) for k in first.files
    )
    return arrays and json.loads(open(f"{a}.json").read()) == json.loads(open(f"{b}.json").read())


def test_a_run_killed_with_sigkill_and_restarted_ends_bit_identical(tmp_path, uninterrupted):
    script, whole = uninterrupted
    run = lambda d, out: [sys.executable, str(script), str(tmp_path / d), str(tmp_path / out)]

    child = subprocess.Popen(run("killed", "killed"), stdout=subprocess.PIPE, text=True)
    for line in child.stdout:
        if line.startswith("epoch 4 done"):
            child.send_signal(signal.SIGKILL)  # no handler, no cleanup: as an OOM kill
            break
    child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed.npz").exists()  # it did not get to finish
    subprocess.run(run("killed", "killed"), check=True, capture_output=True)
    assert same_end(whole, tmp_path / "killed")


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])
def test_sigterm_or_sigint_saves_a_checkpoint_and_exits_nonzero(tmp_path, uninterrupted, name):
    script, whole = uninterrupted
    run = [sys.executable, str(script), str(tmp_path / "ckpt"), str(tmp_path / "stopped")]
    child = subprocess.Popen(run, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in child.stdout:
        if line.startswith("epoch 2 done"):
            child.send_signal(getattr(signal, name))  # during epoch 2's callbacks
            break
    _, stderr = child.communicate()
    assert child.returncode != 0
    assert f"{name} received: training stopped after epoch 3" in stderr
    assert "resume=True" in stderr
    assert sorted(d for d in os.listdir(tmp_path / "ckpt") if d.isdigit())[-1] == "3"
    subprocess.run(run, check=True, capture_output=True)
    assert same_end(whole, tmp_path / "stopped")


PREDICT_SCRIPT = """
import sys
import numpy as np
import jaxdl

model, variables = jaxdl.load_model(sys.argv[1])
np.save(sys.argv[3], np.asarray(model.apply(variables, np.load(sys.argv[2]))))
"""


def test_an_exported_model_predicts_the_same_in_a_new_process(tmp_path):
    data = jaxdl.data.load("digits", seed=0)
    trainer = jaxdl.Trainer(jaxdl.models.MLP(features=(32, 10), batch_norm=True), seed=0)
    trainer.fit(data.train, epochs=2, batch_size=64, verbose=False)
    trainer.export(tmp_path / "model")
    assert not (tmp_path / "model" / "variables" / "opt_state").exists()
    np.save(tmp_path / "x.npy", data.test.x)
    script = tmp_path / "predict.py"
    script.write_text(PREDICT_SCRIPT)
    paths = [str(tmp_path / p) for p in ("model", "x.npy", "out.npy")]
    subprocess.run([sys.executable, str(script), *paths], check=True, capture_output=True)
    np.testing.assert_allclose(
        np.load(tmp_path / "out.npy"), trainer.predict(data.test.x), rtol=1e-5, atol=1e-5
    )


def test_export_keeps_nested_modules_and_refuses_what_json_cannot_hold(tmp_path):
    gan = jaxdl.models.GAN(
        jaxdl.models.Generator((8, 8, 1), (8, 4)), jaxdl.models.Discriminator((4, 8)), 6
    )
    images = np.random.default_rng(0).random((64, 8, 8, 1)).astype(np.float32)
    trainer = jaxdl.Trainer(gan, loss="gan", seed=0)
    trainer.fit(images, epochs=1, batch_size=32, verbose=False)
    model, variables = jaxdl.load_model(trainer.export(tmp_path / "gan"))
    assert model == gan
    key = jax.random.key(5)
    np.testing.assert_array_equal(
        model.apply(variables, key, 4, method="sample"),
        gan.apply(trainer.state.variables(), key, 4, method="sample"),
    )
    with pytest.raises(TypeError, match="cannot export MLP.activation=.*pass activations by name"):
        jaxdl.export_model(tmp_path / "x", jaxdl.models.MLP(activation=jax.nn.relu), {})
    with pytest.raises(FileNotFoundError, match="holds no exported model"):
        jaxdl.load_model(tmp_path / "nothing")
