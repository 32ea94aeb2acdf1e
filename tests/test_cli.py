"""The `jaxdl` command, run in-process as a user would run it."""

import json
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import pytest

import jaxdl
from jaxdl import cli


def test_main_job_defaults_reach_097_on_digits(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--out", str(out), "--quiet"]) == 0
    result = json.loads((out / "metrics.json").read_text())
    assert result["test"]["accuracy"] >= 0.97
    assert result["epochs_run"] == 40
    history = (out / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,loss,accuracy,f1,val_loss")
    assert len(history) == 41
    for picture in ("loss_curve.png", "confusion_matrix.png"):
        image = mpimg.imread(out / picture)
        assert image.shape[0] > 200 and image.shape[1] > 200
        assert image[..., :3].std() > 0.05  # not a blank canvas
    printed = capsys.readouterr().out
    assert "test: loss=" in printed and str(out) in printed


def test_flags_reach_the_run(tmp_path):
    out = tmp_path / "run"
    code = cli.main(
        [
            "train",
            "--dataset",
            "moons",
            "--model",
            "linear",
            "--epochs",
            "2",
            "--batch-size",
            "32",
            "--optimizer",
            "sgd",
            "--lr",
            "0.1",
            "--seed",
            "3",
            "--schedule",
            "constant",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["dataset"], config["model"], config["seed"]) == ("moons", "linear", 3)
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 2


def test_an_earlier_run_folder_is_not_replaced_without_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--dataset", "moons", "--model", "linear", "--epochs", "1", "--quiet"]
    assert cli.main([*args, "--out", str(out)]) == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert cli.main([*args, "--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert "already holds a run; choose another folder or pass --overwrite" in error
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert cli.main([*args, "--out", str(out), "--overwrite"]) == 0


def test_bad_names_give_a_short_error(capsys):
    assert cli.main(["train", "--optimizer", "adum", "--quiet"]) == 2
    assert "unknown optimizer 'adum'; expected one of" in capsys.readouterr().err


def test_graph_models_point_to_their_examples(capsys):
    assert cli.main(["train", "--model", "gcn", "--quiet"]) == 2
    assert "model 'gcn' reads graphs" in capsys.readouterr().err


def test_generative_models_are_not_offered(capsys):
    assert cli.main(["train", "--model", "vae", "--quiet"]) == 2
    assert "model 'vae' is trained with the 'elbo' objective" in capsys.readouterr().err
    assert cli.main(["list"]) == 0
    models_line = next(line for line in capsys.readouterr().out.splitlines() if "models:" in line)
    assert "mlp" in models_line and not {"vae", "gan", "autoencoder"} & set(
        models_line.split(":", 1)[1].replace(",", " ").split()
    )


def test_list_and_help(capsys):
    assert cli.main(["list"]) == 0
    printed = capsys.readouterr().out
    assert "digits" in printed and "nesterov" in printed and "warmup_cosine" in printed
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    help_text = capsys.readouterr().out
    for flag in (
        "--model",
        "--dataset",
        "--epochs",
        "--batch-size",
        "--optimizer",
        "--lr",
        "--seed",
        "--out",
    ):
        assert flag in help_text


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "jaxdl"
    done = subprocess.run([str(script), "list"], capture_output=True, text=True, check=True)
    assert "models:" in done.stdout


def test_ctrl_c_ends_with_a_line_and_absurd_epochs_are_refused_at_once(tmp_path, capsys):
    class Interrupt(jaxdl.Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            if epoch == 1:
                raise KeyboardInterrupt  # as Ctrl-C would, inside the run

    out = tmp_path / "run"
    args = ["train", "--dataset", "moons", "--model", "linear", "--epochs", "5", "--quiet"]
    real_fit = jaxdl.Trainer.fit
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            jaxdl.Trainer,
            "fit",
            lambda self, *a, **k: real_fit(
                self, *a, **{**k, "callbacks": [*k["callbacks"], Interrupt()]}
            ),
        )
        assert cli.main([*args, "--out", str(out)]) == 130
    error = capsys.readouterr().err
    assert "interrupted after 2 epochs" in error and "Traceback" not in error
    assert len((out / "history.csv").read_text().splitlines()) == 3  # header and 2 epochs
    huge = ["train", "--dataset", "moons", "--model", "linear", "--quiet"]
    assert cli.main([*huge, "--epochs", "99999999999999999999", "--out", str(tmp_path / "h")]) == 2
    assert "more steps than a run can count" in capsys.readouterr().err
