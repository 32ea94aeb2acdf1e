"""Checkpoints: a run stopped and resumed ends bit-identical to one that never stopped."""

import json
import os
import re
import shutil
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


def saved_epochs(directory) -> dict[int, int]:
    """Each kept checkpoint's step and the epochs completed when it was written."""
    checkpointer = jaxdl.train.Checkpointer(directory)
    return {step: checkpointer.meta(step)["epoch"] for step in checkpointer.steps()}


def make_trainer(directory, steps_per_call="auto", **checkpoint):
    model = jaxdl.models.MLP(features=(32, 10), dropout_rate=0.2)
    return jaxdl.Trainer(
        model,
        optimizer=jaxdl.Optimizer("adam", schedule="cosine"),
        seed=3,
        steps_per_call=steps_per_call,
        checkpoint=jaxdl.Checkpoint(directory, **checkpoint),
    )


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
    trainer = make_trainer(tmp_path, keep=2)
    history = fit(trainer, data, [], resume=True)
    assert len(history["loss"]) == 5
    assert list(saved_epochs(tmp_path).values()) == [4, 5]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["seed"] == 3 and config["model"]["class"] == "MLP"
    assert config["optimizer"]["name"] == "adam" and config["optimizer"]["schedule"] == "cosine"
    again = make_trainer(tmp_path)
    assert fit(again, data, [], resume=True) == history  # nothing left to run
    with pytest.raises(FileExistsError, match="pass resume=True to continue that run"):
        fit(make_trainer(tmp_path), data, [])


def test_resume_needs_a_checkpoint_dir():
    trainer = jaxdl.Trainer(jaxdl.models.MLP(features=(4, 10)))
    with pytest.raises(ValueError, match="needs Trainer\\(checkpoint=...\\)"):
        trainer.fit(jaxdl.data.load("digits").train, epochs=1, resume=True, verbose=False)


@pytest.mark.slow  # three GAN compiles, about 30 s; nox -s slow
def test_a_gan_run_resumes_exactly_too(tmp_path):
    from sklearn.datasets import load_digits

    images = (load_digits().data[:192] / 16.0).reshape(-1, 8, 8, 1).astype(np.float32)
    gan = jaxdl.models.GAN(
        jaxdl.models.Generator((8, 8, 1), (8, 4)), jaxdl.models.Discriminator((4, 8)), 6
    )

    def run(directory, callbacks, resume=False):
        trainer = jaxdl.Trainer(gan, loss="gan", seed=1, checkpoint=directory)
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


def test_a_damaged_newest_checkpoint_is_named_and_the_previous_one_restored(tmp_path, caplog):
    data = jaxdl.data.load("digits", seed=0)
    trainer = make_trainer(tmp_path)
    fit(trainer, data, [])
    newest = tmp_path / str(max(saved_epochs(tmp_path)))
    for root, _, files in os.walk(newest / "state"):
        for name in files:  # truncate every data file, as a disk error or a cut copy would
            with open(os.path.join(root, name), "r+b") as f:
                f.truncate(max(0, os.path.getsize(f.name) // 2))
    resumed = make_trainer(tmp_path)
    with caplog.at_level("WARNING", logger="jaxdl"):
        history = fit(resumed, data, [], resume=True)
    assert re.search(f"checkpoint {newest} could not be read.*restoring", caplog.text)
    assert resumed.epoch == 5 and len(history["loss"]) == 5  # epoch 5 was run again
    assert leaves_equal(resumed.state.params, trainer.state.params)
    # the damaged checkpoint was set aside and epoch 5 saved again in its place
    assert (tmp_path / "damaged" / newest.name / "state").is_dir()
    assert saved_epochs(tmp_path)[int(newest.name)] == 5
    again = make_trainer(tmp_path)
    caplog.clear()
    with caplog.at_level("WARNING", logger="jaxdl"):
        assert fit(again, data, [], resume=True) == history
    assert not caplog.records


def test_a_checkpoint_of_another_model_lists_each_mismatch(tmp_path):
    data = jaxdl.data.load("digits", seed=0)
    fit(make_trainer(tmp_path), data, [])
    other = jaxdl.Trainer(
        jaxdl.models.MLP(features=(16, 10)),
        optimizer=jaxdl.Optimizer("adam", schedule="cosine"),
        seed=3,
        checkpoint=tmp_path,
    )
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(jaxdl.train.CheckpointMismatchError, match="of another run") as error:
        fit(other, data, [], resume=True)
    assert "model.fields.features: saved [32, 10], now [16, 10]" in str(error.value)
    assert "model.fields.dropout_rate: saved 0.2, now 0.0" in str(error.value)
    # without config.json the arrays themselves are compared, each mismatch listed
    os.remove(tmp_path / "config.json")
    with pytest.raises(ValueError, match="does not fit this model") as error:
        fit(other, data, [], resume=True)
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == [p for p in before if p.name != "config.json"]  # every other file kept
    message = str(error.value)
    assert "params/dense_0/kernel: checkpoint (64, 32), model (64, 16)" in message
    assert "params/output/kernel: checkpoint (32, 10), model (16, 10)" in message


TRAIN_SCRIPT = """
import json, sys, time
import numpy as np
import jax
import jaxdl

class Report(jaxdl.Callback):
    def on_epoch_end(self, trainer, epoch, logs):
        print(f"epoch {epoch} done", flush=True)
        time.sleep(0.2)  # room for the parent to kill us mid-run

class Stream:
    # the digits as a batch source, one compiled step per batch, announcing each

    def __init__(self, data):
        self.x, self.y = data.x, data.y

    def num_batches(self, batch_size, shuffle=True, seed=0, epoch=0):
        return -(-len(self.x) // batch_size)

    def batches(self, batch_size, shuffle=True, seed=0, epoch=0):
        indices, mask = jaxdl.data.epoch_indices(
            len(self.x), batch_size, shuffle=shuffle, seed=seed, epoch=epoch
        )
        for b, (i, m) in enumerate(zip(indices, mask)):
            print(f"epoch {epoch} batch {b}", flush=True)
            time.sleep(0.02)
            yield {"x": self.x[i], "y": self.y[i], "mask": m}

directory, out, mode = sys.argv[1:4]
data = jaxdl.data.load("digits", seed=0).train
trainer = jaxdl.Trainer(
    jaxdl.models.MLP(features=(32, 10), dropout_rate=0.2),
    optimizer=jaxdl.Optimizer("adam", schedule="cosine"), seed=3,
    checkpoint=jaxdl.Checkpoint(directory, every_steps=5 if mode == "stream" else None),
)
history = trainer.fit(
    Stream(data) if mode == "stream" else data, epochs=6 if mode == "arrays" else 3,
    batch_size=64, callbacks=[Report()], verbose=False, resume=True,
)
leaves = jax.tree.leaves(jax.device_get((trainer.state.params, trainer.state.opt_state)))
np.savez(out + ".npz", *leaves)
with open(out + ".json", "w") as f:
    json.dump(history, f)
"""


def script_runs(tmp_path_factory, mode):
    """The training script in ``mode`` ("arrays": whole epochs on the device; "stream": a
    batch source, one step per call, checkpoints every 5 steps), and where the end of its
    uninterrupted run is written; ``command(folder, name)`` runs it with its own checkpoints
    in ``folder / name``."""
    folder = tmp_path_factory.mktemp(mode)
    script = folder / "train.py"
    script.write_text(TRAIN_SCRIPT)

    def command(where, name):
        return [sys.executable, str(script), str(where / name), str(where / name), mode]

    subprocess.run(command(folder, "whole"), check=True, capture_output=True)
    return command, folder / "whole"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return script_runs(tmp_path_factory, "arrays")


@pytest.fixture(scope="module")
def uninterrupted_stream(tmp_path_factory):
    return script_runs(tmp_path_factory, "stream")


def same_end(a, b) -> bool:
    """Two runs of the script ended with the same parameters, optimizer state and history."""
    first, second = np.load(f"{a}.npz"), np.load(f"{b}.npz")
    arrays = len(first.files) == len(second.files) > 0 and all(
        np.array_equal(first[k], second[k]) for k in first.files
    )
    return arrays and json.loads(open(f"{a}.json").read()) == json.loads(open(f"{b}.json").read())


def kill_when(command, line_start: str, signal_number: int):
    """Run ``command``, send it ``signal_number`` once it prints a line starting with
    ``line_start``; return its exit status and standard error."""
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in child.stdout:
        if line.startswith(line_start):
            child.send_signal(signal_number)
            break
    _, stderr = child.communicate()
    return child.returncode, stderr


@pytest.mark.parametrize(
    "runs, when",
    [
        # a kill between epochs is the easier twin of a kill inside one: slow session
        pytest.param("uninterrupted", "epoch 3 done", marks=pytest.mark.slow),
        ("uninterrupted_stream", "epoch 1 batch 12"),
    ],
    ids=["after-an-epoch", "inside-an-epoch"],
)
def test_a_run_killed_with_sigkill_and_restarted_ends_bit_identical(tmp_path, request, runs, when):
    command, whole = request.getfixturevalue(runs)
    # no handler, no cleanup: as an out-of-memory kill
    status, _ = kill_when(command(tmp_path, "killed"), when, signal.SIGKILL)
    assert status == -signal.SIGKILL
    assert not (tmp_path / "killed.npz").exists()  # it did not get to finish
    subprocess.run(command(tmp_path, "killed"), check=True, capture_output=True)
    assert same_end(whole, tmp_path / "killed")


# both go through the same handler: SIGINT runs in the slow session
@pytest.mark.parametrize("name", ["SIGTERM", pytest.param("SIGINT", marks=pytest.mark.slow)])
def test_sigterm_or_sigint_saves_a_checkpoint_and_exits_nonzero(tmp_path, uninterrupted, name):
    command, whole = uninterrupted
    status, stderr = kill_when(command(tmp_path, "stopped"), "epoch 2 done", getattr(signal, name))
    assert status != 0
    assert f"{name} received: training stopped after epoch 3" in stderr  # epoch 2 is the third
    assert "resume=True" in stderr
    assert max(saved_epochs(tmp_path / "stopped").values()) == 3
    subprocess.run(command(tmp_path, "stopped"), check=True, capture_output=True)
    assert same_end(whole, tmp_path / "stopped")


def test_sigterm_inside_an_epoch_stops_after_the_running_step(tmp_path, uninterrupted_stream):
    command, whole = uninterrupted_stream
    status, stderr = kill_when(command(tmp_path, "stopped"), "epoch 1 batch 8", signal.SIGTERM)
    assert status == 1
    pattern = r"SIGTERM received: training stopped in epoch 2 after batch (\d+) of 19"
    stopped = re.search(pattern, stderr)
    assert stopped, stderr
    checkpointer = jaxdl.train.Checkpointer(tmp_path / "stopped")
    meta = checkpointer.meta(checkpointer.latest_step())
    # the signal came while batch 8 (or, on a slow machine, a later one) was being read
    assert meta["position"]["batch"] == int(stopped[1]) >= 9
    assert checkpointer.latest_step() == 19 + int(stopped[1])
    subprocess.run(command(tmp_path, "stopped"), check=True, capture_output=True)
    assert same_end(whole, tmp_path / "stopped")


PREDICT_SCRIPT = """
import sys
import warnings
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


@pytest.mark.parametrize("steps_per_call", ["epoch", 1])
def test_a_run_resumed_inside_an_epoch_ends_bit_identical(tmp_path, steps_per_call):
    """Checkpoints every 7 steps keep the position in the epoch and its partial metrics; a
    run cut after any of them (here: inside epoch 2) ends as the uninterrupted run. The
    early stopping watches for the *highest* validation loss, so its best epoch lies before
    the cut and its best weights, put back at the end, must come from the checkpoint."""
    data = jaxdl.data.load("digits", seed=0)

    def run(directory, resume=False):
        trainer = make_trainer(directory, steps_per_call, every_steps=7, keep=100)
        stopping = jaxdl.EarlyStopping(patience=50, mode="max", restore_best=True)
        return trainer, fit(trainer, data, [stopping], resume=resume)

    whole, expected = run(tmp_path / "whole")
    epochs = saved_epochs(tmp_path / "whole")
    steps_per_epoch = 19  # 1203 training examples in batches of 64
    # a checkpoint every 7 steps of each epoch, and one at each epoch's end
    assert sorted(epochs) == sorted(steps_per_epoch * e + k for e in range(5) for k in (7, 14, 19))
    cut = 2 * steps_per_epoch + 7
    assert epochs[cut] == 2  # saved inside the third epoch
    shutil.copytree(tmp_path / "whole", tmp_path / "cut")
    for step in epochs:
        if step > cut:  # as if the run had been killed just after checkpoint `cut`
            shutil.rmtree(tmp_path / "cut" / str(step))

    resumed, history = run(tmp_path / "cut", resume=True)
    assert history == expected
    assert np.argmax(expected["val_loss"]) < 2  # the restored best lies before the cut
    assert leaves_equal(resumed.state.params, whole.state.params)
    assert leaves_equal(resumed.state.opt_state, whole.state.opt_state)


def test_keep_best_keeps_the_best_epoch_beside_the_newest(tmp_path):
    data = jaxdl.data.load("digits", seed=0)
    trainer = make_trainer(tmp_path, keep=1, keep_best="val_accuracy")
    history = fit(trainer, data, [])
    best_epoch = int(np.argmax(history["val_accuracy"]))  # first of equal values
    kept = saved_epochs(tmp_path)
    assert sorted(kept.values()) == sorted({best_epoch + 1, 5})

    # the kept best holds the weights an EarlyStopping(restore_best) run ends with
    reference = make_trainer(tmp_path / "ref")
    fit(reference, data, [jaxdl.EarlyStopping("val_accuracy", patience=50, restore_best=True)])
    meta = trainer.load_checkpoint("best")
    assert meta["epoch"] == best_epoch + 1
    assert leaves_equal(trainer.state.params, reference.state.params)
    assert trainer.evaluate(data.validation)["accuracy"] == pytest.approx(
        max(history["val_accuracy"]), abs=1e-6
    )
    with pytest.raises(ValueError, match="keep_best='val_auc' monitors 'val_auc', which"):
        fit(make_trainer(tmp_path / "bad", keep_best="val_auc"), data, [])


def test_a_checkpoint_cut_off_while_being_written_is_never_taken(tmp_path, caplog):
    """Orbax writes into ``<step>.orbax-checkpoint-tmp-<time>`` and renames the folder when
    complete: a kill during the write leaves such a folder, newer than every good one."""
    data = jaxdl.data.load("digits", seed=0)
    trainer = make_trainer(tmp_path)
    expected = fit(trainer, data, [])
    latest = max(saved_epochs(tmp_path))
    cut = tmp_path / f"{latest + 19}.orbax-checkpoint-tmp-1790000000"
    shutil.copytree(tmp_path / str(latest), cut)
    for root, _, files in os.walk(cut):
        for name in files[: len(files) // 2]:  # half written
            os.remove(os.path.join(root, name))

    resumed = make_trainer(tmp_path)
    with caplog.at_level("WARNING", logger="jaxdl"):  # not even a warning: not a checkpoint
        history = fit(resumed, data, [], resume=True)
    assert not caplog.records
    assert history == expected and int(resumed.state.step) == latest
    assert leaves_equal(resumed.state.params, trainer.state.params)
