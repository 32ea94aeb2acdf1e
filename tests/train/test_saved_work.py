"""Saved work is never discarded: jaxdl touches only what it wrote, a checkpoint of another
run is refused by name and left in place, an export is replaced atomically."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import jaxdl
from jaxdl.train import Checkpointer, CheckpointMismatchError


def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def digits():
    return jaxdl.data.load("digits", seed=0)


def run(folder, optimizer="adam", epochs=2, **options):
    trainer = jaxdl.Trainer(
        jaxdl.models.MLP((16, 10)),
        optimizer=jaxdl.Optimizer(optimizer, 1e-3, **options),
        checkpoint=folder,
    )
    trainer.fit(digits().train, epochs=epochs, batch_size=128, verbose=False, resume=True)
    return trainer


@pytest.mark.parametrize(
    "change, named",
    [
        ({"optimizer": "sgd"}, "optimizer.name: saved 'adam', now 'sgd'"),
        ({"skip_nonfinite": True}, "optimizer.skip_nonfinite: saved False, now True"),
    ],
)
def test_resuming_another_run_names_what_differs_and_moves_nothing(tmp_path, change, named):
    run(tmp_path)
    before = listing(tmp_path)
    with pytest.raises(CheckpointMismatchError, match="of another run") as error:
        run(tmp_path, epochs=3, **change)
    assert named in str(error.value)
    assert listing(tmp_path) == before and not (tmp_path / "damaged").exists()
    resumed = run(tmp_path, epochs=3)  # the original script still finds its checkpoints
    assert resumed.epoch == 3


def test_a_folder_holding_the_users_own_files_is_refused_and_left_alone(tmp_path):
    for name in ("2023", "2024"):  # integer names, as Orbax names its steps
        (tmp_path / name).mkdir()
        (tmp_path / name / "photo.jpg").write_bytes(b"\xff\xd8 a photo")
    before = listing(tmp_path)
    with pytest.raises(FileExistsError, match=r"entries jaxdl did not write \(2023, 2024\)"):
        run(tmp_path)
    assert listing(tmp_path) == before


def test_checkpoint_settings_that_can_only_be_a_mistake_are_refused(tmp_path):
    for keep in (0, -1):
        with pytest.raises(ValueError, match=f"keep: expected an int >= 1, got {keep}"):
            jaxdl.Checkpoint(tmp_path, keep=keep)
    with pytest.raises(ValueError, match="every_epochs"):
        jaxdl.Checkpoint(tmp_path, every_epochs=0)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        jaxdl.Checkpoint(tmp_path / "a_file")


def test_a_second_run_on_the_same_folder_is_refused_while_the_first_trains(tmp_path):
    first = jaxdl.Checkpoint(tmp_path)

    class SecondRunStarts(jaxdl.Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            with pytest.raises(RuntimeError, match="another run is training in the checkpoint"):
                run(tmp_path)
            self.refused = True

    probe = SecondRunStarts()
    trainer = jaxdl.Trainer(jaxdl.models.MLP((16, 10)), checkpoint=first)
    trainer.fit(digits().train, epochs=1, batch_size=128, callbacks=[probe], verbose=False)
    assert probe.refused
    run(tmp_path, epochs=2)  # the lock went with the run


def test_a_damaged_newest_checkpoint_behind_pretrained_falls_back_to_the_previous(tmp_path, caplog):
    run(tmp_path, epochs=2)
    steps = Checkpointer(tmp_path).steps()
    for root, _, files in os.walk(tmp_path / str(steps[-1]) / "state"):
        for name in files:
            with open(os.path.join(root, name), "r+b") as f:
                f.truncate(os.path.getsize(f.name) // 2)
    with caplog.at_level("WARNING", logger="jaxdl"):
        variables = jaxdl.train.read_variables(str(tmp_path))
    assert re.search(f"{steps[-1]} could not be read .*trying the one before", caplog.text)
    restored = Checkpointer(tmp_path).manager.restore(steps[0])["state"]
    np.testing.assert_array_equal(variables["params"]["output"]["kernel"],
                                  restored["params"]["output"]["kernel"])  # fmt: skip


def test_an_export_over_an_export_is_atomic_at_every_stage(tmp_path, monkeypatch):
    model = jaxdl.models.MLP((4, 3))
    x = np.ones((1, 5), np.float32)
    first = model.init(jax.random.key(0), x)
    second = jax.tree.map(lambda a: a + 1.0, first)
    jaxdl.export_model(tmp_path, model, first)

    def failing(*args, **kwargs):
        raise OSError("disk full")

    for stage in ("orbax.checkpoint.StandardCheckpointer.save", "os.replace"):
        with monkeypatch.context() as patch:
            patch.setattr(stage, failing)
            with pytest.raises(OSError, match="disk full"):
                jaxdl.export_model(tmp_path, model, second)
        _, loaded = jaxdl.load_model(tmp_path)  # the old export, whole
        np.testing.assert_array_equal(loaded["params"]["output"]["bias"],
                                      first["params"]["output"]["bias"])  # fmt: skip
    jaxdl.export_model(tmp_path, model, second)
    _, loaded = jaxdl.load_model(tmp_path)
    np.testing.assert_array_equal(loaded["params"]["output"]["bias"],
                                  second["params"]["output"]["bias"])  # fmt: skip
    assert sorted(os.listdir(tmp_path))[0] == "model.json" and len(os.listdir(tmp_path)) == 2
    (tmp_path.parent / "mine").mkdir()
    (tmp_path.parent / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a jaxdl export"):
        jaxdl.export_model(tmp_path.parent / "mine", model, first)


EXPORT_LOOP = """
import sys
import jax, numpy as np
import jaxdl
model = jaxdl.models.MLP((64, 64, 3))
variables = model.init(jax.random.key(0), np.ones((1, 32), np.float32))
for i in range(1000):
    shifted = jax.tree.map(lambda a: a * 0 + i, variables)
    jaxdl.export_model(sys.argv[1], model, shifted)
    print(f"exported {i}", flush=True)
"""


@pytest.mark.parametrize("delay", [0.0, 0.05])
def test_kill_9_while_exporting_over_an_export_leaves_one_of_them_whole(tmp_path, delay):
    script = tmp_path / "export.py"
    script.write_text(EXPORT_LOOP)
    target = tmp_path / "model"
    child = subprocess.Popen(
        [sys.executable, str(script), str(target)], stdout=subprocess.PIPE, text=True
    )
    try:
        for line in child.stdout:
            if line.startswith("exported 2"):
                break
        time.sleep(delay)  # inside the next export, or between two
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    _, loaded = jaxdl.load_model(target)
    values = {float(np.asarray(leaf).ravel()[0]) for leaf in jax.tree.leaves(loaded)}
    assert len(values) == 1 and values.pop() >= 2  # one whole export, never a mix
    assert json.loads((target / "model.json").read_text())["variables"] in os.listdir(target)
