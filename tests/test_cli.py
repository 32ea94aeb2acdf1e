"""The `jaxdl` command, run in-process as a user would run it."""

import contextlib
import csv
import io
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import jax
import matplotlib.image as mpimg
import numpy as np
import pytest
from PIL import Image

import jaxdl
from jaxdl import cli
from jaxdl.data import files

SCRIPT = Path(sys.executable).parent / "jaxdl"
TINY = ["--quiet", "--epochs", "1", "--limit", "48", "--batch-size", "16"]


def not_blank(path, size=100):
    image = mpimg.imread(path)
    assert image.shape[0] > size and image.shape[1] > size
    assert image[..., :3].std() > 0.05  # not a blank canvas


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
        not_blank(out / picture, 200)
    printed = capsys.readouterr().out
    assert "test: loss=" in printed and str(out) in printed
    # what the model expects is kept as JSON: digits as 64 features, standardised on train
    prep = json.loads((out / "preprocessing.json").read_text())
    assert prep["input_shape"] == [64] and prep["class_names"] == [str(c) for c in range(10)]
    raw = jaxdl.data.load("digits", scaling=None)
    np.testing.assert_allclose(prep["scaler"]["mean"], raw.train.x.mean(0), rtol=1e-5)
    model, _ = jaxdl.load_model(out / "model")
    assert isinstance(model, jaxdl.models.MLP)


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
    args = ["train", "--dataset", "moons", "--model", "linear", *TINY]
    assert cli.main([*args, "--out", str(out)]) == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert cli.main([*args, "--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert "already holds a run; choose another folder, pass --overwrite" in error
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    (out / "notes.txt").write_text("mine")
    assert cli.main([*args, "--out", str(out), "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "mine"  # only the run's own files are replaced


def test_bad_names_give_a_short_error(capsys):
    assert cli.main(["train", "--optimizer", "adum", "--quiet"]) == 2
    assert "unknown optimizer 'adum'; expected one of" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--model", "resnet18"], "'resnet18' is built for images of at least 32x32"),
        (["--model", "resnet50", "--dataset", "mnist"], "28x28 images end as maps of 3x3"),
        (["--model", "cnn", "--dataset", "moons"], "'moons' holds feature vectors: use one of"),
        (["--model", "transformer", "--dataset", "digits"], "trains on token ids"),
        (["--model", "transformer_lm", "--dataset", "reverse"], "use one of pydoc_text"),
        (["--model", "gcn", "--dataset", "digits"], "trains on a graph with node labels"),
        (["--model", "vae", "--dataset", "moons"], "'vae' trains on images"),
        (["--model", "mlp", "--dataset", "karate_club"], "holds a graph with node labels"),
        (["--dataset", "table.csv"], "a CSV file needs --target COLUMN"),
        (["--target", "y"], "--target and --features are for --dataset FILE.csv"),
        (["--dataset", "nowhere"], "unknown data set 'nowhere'; expected one of: adding"),
        (["--model", "vae", "--precision", "bfloat16"], "computes in float32"),
    ],
)
def test_what_cannot_train_is_refused_before_anything_is_written(tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    assert cli.main(["train", *flags, "--out", str(out), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
    assert not out.exists()


def test_list_names_every_model_and_what_it_trains_on(capsys):
    assert cli.main(["list"]) == 0
    printed = capsys.readouterr().out
    assert "digits" in printed and "nesterov" in printed and "warmup_cosine" in printed
    models_line = next(line for line in printed.splitlines() if line.startswith("models:"))
    listed = set(models_line.split(":", 1)[1].replace(",", " ").split())
    assert listed == {spec.name for spec in jaxdl.models.ZOO}
    table = printed.split("what each model trains on:")[1]
    rows = {line.split("  ")[1].strip(): line for line in table.strip().splitlines()}
    assert "cifar10" in rows["resnet18, resnet50"] and "digits" not in rows["resnet18, resnet50"]
    assert "pydoc_text" in rows["transformer_lm"]
    assert "karate_club" in rows["gcn, gat, graph_network"]
    assert "IMAGE_FOLDER" in rows["autoencoder, vae, gan"]


@pytest.mark.parametrize("command", [[], ["train"], ["predict"], ["evaluate"], ["list"]])
def test_help_is_plain_text(capsys, command):
    with pytest.raises(SystemExit) as done:
        cli.main([*command, "--help"])
    assert done.value.code == 0
    help_text = capsys.readouterr().out
    assert "usage: jaxdl" in help_text
    for markup in ("``", ":class:", ":func:", ":meth:", "**"):
        assert markup not in help_text, (command, markup)
    if command == ["train"]:
        for flag in ("--model", "--dataset", "--target", "--epochs", "--batch-size", "--lr"):
            assert flag in help_text
        for flag in ("--precision", "--checkpoint-dir", "--resume", "--out", "--seed"):
            assert flag in help_text


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"jaxdl {jaxdl.__version__}"


def test_console_script_is_installed_and_a_closed_pipe_is_no_error():
    done = subprocess.run([str(SCRIPT), "list"], capture_output=True, text=True, check=True)
    assert "models:" in done.stdout
    # the reader goes away before the output is written, as `jaxdl list | head -1` can
    process = subprocess.Popen(
        [str(SCRIPT), "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    process.stdout.close()
    error = process.stderr.read()
    assert process.wait(timeout=120) == 0, error
    assert "Traceback" not in error and "BrokenPipe" not in error and "Exception" not in error


# ------------------------------------------------------------------ your own data


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A CSV of three classes named by words, far apart in 3 features (90 rows), and the
    run that an MLP trained on it wrote (its standard error captured)."""
    folder = tmp_path_factory.mktemp("table")
    rng = np.random.default_rng(0)
    path = folder / "plants.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["height", "kind", "width", "weight"])
        for i in range(90):
            kind = ("oak", "fern", "moss")[i % 3]
            centre = (i % 3) * 4.0
            h, w, m = rng.normal(centre, 1.0, 3) * (10, 1, 100)
            writer.writerow([f"{h:.3f}", kind, f"{w:.3f}", f"{m:.3f}"])
    run = folder / "run"
    stderr = io.StringIO()
    handlers = list(logging.getLogger("jaxdl").handlers)
    with contextlib.redirect_stderr(stderr):
        argv = ["train", "--dataset", str(path), "--target", "kind", "--hidden", "16"]
        argv += ["--epochs", "10", "--lr", "0.01", "--batch-size", "16", "--out", str(run)]
        code = cli.main(argv)
    assert code == 0, stderr.getvalue()
    library = logging.getLogger("jaxdl")
    assert library.handlers == handlers and library.propagate  # main() leaves them as they were
    return path, run, stderr.getvalue()


def test_csv_run_keeps_what_the_model_expects(table):
    path, run, stderr = table
    # the library's messages reach standard error through the handler main() sets up
    assert "jaxdl: from_csv: target column 'kind' read as classification of 3 classes" in stderr
    prep = json.loads((run / "preprocessing.json").read_text())
    assert prep["class_names"] == ["fern", "moss", "oak"]
    assert prep["dataset"]["feature_names"] == ["height", "width", "weight"]
    raw = jaxdl.data.from_csv(path, "kind", scaling=None)
    np.testing.assert_allclose(prep["scaler"]["mean"], raw.train.x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(prep["scaler"]["std"], raw.train.x.std(0), rtol=1e-5)
    assert (run / "model" / "model.json").exists() and (run / "checkpoints").is_dir()


def test_predict_is_trainer_predict_after_the_stored_scaling(table, tmp_path, capsys):
    path, run, _ = table
    written = tmp_path / "predictions.csv"
    assert cli.main(["predict", str(run), "--input", str(path), "--output", str(written)]) == 0
    header, *rows = list(csv.reader(written.open()))
    assert header == ["predicted", "p_fern", "p_moss", "p_oak"]

    # the same rows through the export, scaled by hand with the training split's statistics
    features = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(0, 2, 3))
    train = jaxdl.data.from_csv(path, "kind", scaling=None).train.x
    scaled = ((features - train.mean(0)) / train.std(0)).astype(np.float32)
    model, variables = jaxdl.load_model(run / "model")
    trainer = jaxdl.Trainer(model, pretrained=variables)
    trainer.init(scaled[:1])
    logits = trainer.predict(scaled)
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert [r[0] for r in rows] == [("fern", "moss", "oak")[c] for c in logits.argmax(1)]
    np.testing.assert_allclose(np.array([r[1:] for r in rows], float), probabilities, atol=1e-6)
    kinds = [line.split(",")[1] for line in path.read_text().splitlines()[1:]]
    assert np.mean([r[0] == k for r, k in zip(rows, kinds)]) > 0.6  # above chance (1/3)

    # an array of the rows in the run's feature order, to standard output: the same table
    np.save(tmp_path / "rows.npy", features)
    capsys.readouterr()
    assert cli.main(["predict", str(run), "--input", str(tmp_path / "rows.npy")]) == 0
    assert capsys.readouterr().out == written.read_text()
    assert cli.main(["predict", str(run), "--input", str(path), "--columns", "class"]) == 0
    assert capsys.readouterr().out.splitlines() == ["predicted", *(r[0] for r in rows)]
    assert cli.main(["predict", str(run), "--input", str(tmp_path / "rows.npy")[:-4]]) == 2
    assert "expected a .npy or .csv file" in capsys.readouterr().err


def test_evaluate_reproduces_the_test_metrics_and_scores_another_file(table, capsys):
    path, run, _ = table
    capsys.readouterr()
    assert cli.main(["evaluate", str(run)]) == 0
    printed = capsys.readouterr().out
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert printed.startswith("test: " + "  ".join(f"{k}={v:.4f}" for k, v in test.items()))

    # every row of a file, with the run's classes and scaling
    assert cli.main(["evaluate", str(run), "--dataset", str(path)]) == 0
    printed = capsys.readouterr().out
    raw = jaxdl.data.from_csv(path, "kind", scaling=None)
    x = np.concatenate([raw.train.x, raw.validation.x, raw.test.x])
    y = np.concatenate([raw.train.y, raw.validation.y, raw.test.y])
    model, variables = jaxdl.load_model(run / "model")
    trainer = jaxdl.Trainer(model, pretrained=variables, metrics=("accuracy", "f1"))
    trainer.init(x[:1])
    expected = trainer.evaluate(((x - raw.train.x.mean(0)) / raw.train.x.std(0), y))
    assert printed.startswith("data: " + "  ".join(f"{k}={v:.4f}" for k, v in expected.items()))
    assert "the 90 examples of" in printed


@pytest.fixture
def pictures(tmp_path):
    """A folder of 8x8 grey PNGs, 'bright' and 'dim', 12 of each."""
    rng = np.random.default_rng(1)
    for name, level in (("dim", 40), ("bright", 210)):
        (tmp_path / "pics" / name).mkdir(parents=True)
        for i in range(12):
            pixels = np.clip(rng.normal(level, 20, (8, 8)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, "L").save(tmp_path / "pics" / name / f"{i}.png")
    return tmp_path / "pics"


def test_an_image_folder_trains_and_its_images_are_predicted(pictures, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--dataset", str(pictures), "--model", "mlp", "--image-size", "8"]
    argv += ["--hidden", "8", "--epochs", "2", "--batch-size", "8", "--quiet", "--out", str(run)]
    assert cli.main(argv) == 0
    prep = json.loads((run / "preprocessing.json").read_text())
    assert prep["input_shape"] == [8, 8, 1] and prep["class_names"] == ["bright", "dim"]
    assert prep["scaler"] is None  # images in [0, 1], as they are read
    capsys.readouterr()
    assert cli.main(["predict", str(run), "--input", str(pictures / "dim")]) == 0
    header, *rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert header == ["file", "predicted", "p_bright", "p_dim"]
    assert [Path(r[0]).name for r in rows] == sorted(p.name for p in (pictures / "dim").iterdir())
    x = np.stack([files.read_image(r[0], 8, 1) for r in rows])
    model, variables = jaxdl.load_model(run / "model")
    trainer = jaxdl.Trainer(model, pretrained=variables)
    trainer.init(x[:1])
    logits = trainer.predict(x)
    np.testing.assert_allclose(
        [float(r[3]) for r in rows], np.exp(logits[:, 1]) / np.exp(logits).sum(1), atol=1e-6
    )


# ------------------------------------------------------------------ every family


FAMILIES = {  # model: (extra flags, the class it exports)
    "mlp": (["--hidden", "8", "--precision", "bfloat16"], "MLP"),
    "linear": (["--dataset", "moons"], "MLP"),
    "cnn": ([], "CNN"),
    "resnet20": ([], "ResNet"),
    "rnn": (["--dataset", "adding"], "RNNClassifier"),
    "lstm": ([], "RNNClassifier"),
    "gru": ([], "RNNClassifier"),
    "transformer": ([], "TransformerClassifier"),
    "transformer_lm": ([], "TransformerLM"),
    "gcn": ([], "GCN"),
    "gat": (["--dataset", "cycles_or_trees"], "GAT"),
    "graph_network": ([], "MessagePassingNet"),
    "autoencoder": ([], "Autoencoder"),
    "vae": ([], "VAE"),
    "gan": ([], "GAN"),
}
CHEAP = {"gcn", "autoencoder"}  # a graph set and an image grid; the others with --runslow


def test_the_families_are_the_zoo():
    assert set(FAMILIES) == {spec.name for spec in jaxdl.models.ZOO} - {"resnet18", "resnet50"}


@pytest.mark.parametrize(
    "model", [m if m in CHEAP else pytest.param(m, marks=pytest.mark.slow) for m in FAMILIES]
)
def test_every_listed_family_trains_and_keeps_its_model(tmp_path, capsys, model):
    flags, exported_class = FAMILIES[model]
    out = tmp_path / "run"
    assert cli.main(["train", "--model", model, *TINY, *flags, "--out", str(out)]) == 0
    result = json.loads((out / "metrics.json").read_text())
    assert result["epochs_run"] == 1 and np.isfinite(result["test"]["loss"])
    assert type(jaxdl.load_model(out / "model")[0]).__name__ == exported_class
    not_blank(out / "loss_curve.png")
    prep = json.loads((out / "preprocessing.json").read_text())
    pictures = {"vae": ["samples.png", "reconstructions.png"], "gan": ["samples.png"]}
    pictures["autoencoder"] = ["reconstructions.png"]
    if prep["task"] == "classification" and prep["objective"] == "supervised":
        pictures[model] = ["confusion_matrix.png"]
    for picture in pictures.get(model, []):
        not_blank(out / picture)
    # the exported model, restored with the stored preprocessing, scores the test split again
    capsys.readouterr()
    assert cli.main(["evaluate", str(out)]) == 0
    test = "  ".join(f"{k}={v:.4f}" for k, v in result["test"].items())
    assert capsys.readouterr().out.startswith(f"test: {test}")


@pytest.mark.slow
def test_resnet18_trains_on_an_image_folder_of_32x32_images(pictures, tmp_path):
    out = tmp_path / "run"
    argv = ["train", "--model", "resnet18", "--dataset", str(pictures), "--image-size", "32"]
    assert cli.main([*argv, *TINY, "--out", str(out)]) == 0
    model, _ = jaxdl.load_model(out / "model")
    assert model.small_inputs  # the 3x3 stem for images of 32x32 or less


# ------------------------------------------------------------------ stopping and resuming


def moons(epochs):
    flags = ["--dataset", "moons", "--model", "linear", "--limit", "48", "--batch-size", "16"]
    return ["train", *flags, "--epochs", str(epochs), "--quiet"]


@contextlib.contextmanager
def also_calling(callback):
    """Every ``Trainer.fit`` inside also runs ``callback`` (after the command's own)."""
    real_fit = jaxdl.Trainer.fit

    def fit(self, *args, **kwargs):
        return real_fit(self, *args, **{**kwargs, "callbacks": [*kwargs["callbacks"], callback]})

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jaxdl.Trainer, "fit", fit)
        yield


def test_ctrl_c_leaves_a_complete_run_that_resumes_to_the_uninterrupted_result(tmp_path, capsys):
    class CtrlC(jaxdl.Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            if epoch == 0:
                os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C would, while training

    stopped, whole = tmp_path / "stopped", tmp_path / "whole"
    with also_calling(CtrlC()):
        assert cli.main([*moons(3), "--out", str(stopped)]) == 130
    error = capsys.readouterr().err
    assert "jaxdl: interrupted after 1 of 3 epochs" in error and "Traceback" not in error
    assert f"continue with: jaxdl train --resume --out {stopped}" in error
    # a complete run folder of the finished epoch
    assert len((stopped / "history.csv").read_text().splitlines()) == 2  # header, 1 epoch
    assert json.loads((stopped / "metrics.json").read_text())["stopped"] == "interrupted"
    jaxdl.load_model(stopped / "model")
    not_blank(stopped / "loss_curve.png")

    assert cli.main(["train", "--resume", "--out", str(stopped), "--quiet"]) == 0
    assert cli.main([*moons(3), "--out", str(whole)]) == 0
    assert (stopped / "history.csv").read_text() == (whole / "history.csv").read_text()
    resumed, uninterrupted = (jaxdl.load_model(p / "model")[1] for p in (stopped, whole))
    for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(uninterrupted), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_sigterm_stops_the_run_the_same_way(tmp_path, capsys):
    class Term(jaxdl.Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            if epoch == 0:
                os.kill(os.getpid(), signal.SIGTERM)

    out = tmp_path / "run"
    with also_calling(Term()):
        assert cli.main([*moons(3), "--out", str(out)]) == 143
    assert "jaxdl: stopped by SIGTERM after 1 of 3 epochs" in capsys.readouterr().err
    jaxdl.load_model(out / "model")
    assert json.loads((out / "metrics.json").read_text())["stopped"] == "stopped by SIGTERM"


def test_resume_needs_a_run_and_absurd_epochs_are_refused_at_once(tmp_path, capsys):
    assert cli.main(["train", "--resume", "--out", str(tmp_path / "none"), "--quiet"]) == 1
    assert "--resume: " in capsys.readouterr().err
    huge = ["train", "--dataset", "moons", "--model", "linear", "--quiet"]
    assert cli.main([*huge, "--epochs", "99999999999999999999", "--out", str(tmp_path / "h")]) == 2
    assert "more steps than a run can count" in capsys.readouterr().err
