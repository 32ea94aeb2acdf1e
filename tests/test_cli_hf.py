"""`jaxdl train --dataset hf:NAME`, in-process and offline: a local parquet folder in the
schema of ylecun/mnist (8x8 images, 100 training and 20 test rows) trained on, refused,
predicted and evaluated through the command, as a Hub set would be."""

import csv
import json

import numpy as np
import pytest
from hf_files import DIGIT_NAMES, write_hub_folder, write_mnist

import jaxdl
from jaxdl import cli
from jaxdl.cli.datasets import load_raw

SEED = 1  # not the default, so that a seed lost on the way changes the split


def digit_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 8, 8) uint8 noise with a bright stroke of 6 pixels placed by the class (i % 10),
    so that two epochs learn something and accuracies are not all 0 or 1."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 90, (n, 64), dtype=np.uint8)
    for i, c in enumerate(labels):
        images[i, 6 * c : 6 * c + 6] = 230
    return images.reshape(n, 8, 8), labels


@pytest.fixture(scope="module")
def hf_mnist(tmp_path_factory):
    pytest.importorskip("datasets")
    (train, y_train), (test, y_test) = digit_images(100, 0), digit_images(20, 1)
    folder = tmp_path_factory.mktemp("mnist")
    name = write_mnist(folder, train, test, {"train": y_train, "test": y_test})
    return name, str(tmp_path_factory.mktemp("hf_cache"))


@pytest.fixture(scope="module")
def hf_run(hf_mnist, tmp_path_factory):
    """The run an MLP trained on the set wrote, and the lengths of what fit was given."""
    name, cache = hf_mnist
    run = tmp_path_factory.mktemp("hf") / "run"
    seen = {}
    real_fit = jaxdl.Trainer.fit

    def fit(self, data, *args, **kwargs):
        seen["train"], seen["validation"] = data, kwargs["validation_data"]
        return real_fit(self, data, *args, **kwargs)

    argv = ["train", "--dataset", name, "--data-dir", cache, "--model", "mlp", "--hidden", "16"]
    argv += ["--epochs", "2", "--batch-size", "10", "--lr", "0.01", "--seed", str(SEED)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jaxdl.Trainer, "fit", fit)
        assert cli.main([*argv, "--quiet", "--out", str(run)]) == 0
    return run, seen


def test_an_hf_run_records_its_source_and_trains_on_the_train_split_less_a_tenth(hf_mnist, hf_run):
    name, cache = hf_mnist
    run, seen = hf_run
    prep = json.loads((run / "preprocessing.json").read_text())
    folder = name.removeprefix("hf:")
    assert prep["dataset"] == {"source": "hf", "name": name, "data_dir": cache, "path": folder}
    assert (prep["kind"], prep["input_shape"], prep["input_dtype"]) == (
        "images",
        [8, 8, 1],
        "float32",
    )
    assert prep["class_names"] == DIGIT_NAMES and prep["scaler"] is None  # in [0, 1] as read
    config = json.loads((run / "config.json").read_text())
    assert (config["dataset"], config["data_dir"], config["seed"]) == (name, cache, SEED)
    # 100 parquet rows: a stratified tenth (one a class) held out for validation, by --seed
    assert (len(seen["train"]), len(seen["validation"])) == (90, 10)
    splits = jaxdl.data.load(name, seed=SEED, data_dir=cache)
    np.testing.assert_array_equal(seen["train"].x, splits.train.x)
    np.testing.assert_array_equal(seen["validation"].y, splits.validation.y)
    other_seed = jaxdl.data.load(name, seed=0, data_dir=cache).validation.x
    assert not np.array_equal(other_seed, splits.validation.x)  # so the seed is what chose


def test_predict_on_the_test_images_gives_the_accuracy_the_run_reported(
    hf_mnist, hf_run, tmp_path, capsys
):
    name, cache = hf_mnist
    run, _ = hf_run
    test = jaxdl.data.load(name, data_dir=cache).test  # the parquet test split, 20 rows
    np.save(tmp_path / "test.npy", test.x)
    written = tmp_path / "predictions.csv"
    argv = ["predict", str(run), "--input", str(tmp_path / "test.npy"), "--output", str(written)]
    assert cli.main(argv) == 0
    header, *rows = list(csv.reader(written.open()))
    assert header == ["predicted", *(f"p_{c}" for c in DIGIT_NAMES)] and len(rows) == 20
    accuracy = np.mean([r[0] == DIGIT_NAMES[c] for r, c in zip(rows, test.y)])
    reported = json.loads((run / "metrics.json").read_text())["test"]
    assert accuracy == pytest.approx(reported["accuracy"], abs=1e-6)
    assert 0.1 < accuracy  # above chance: the images reached the model as they were written

    # evaluate reloads the set from what the run recorded, and so does --dataset hf:NAME
    line = "  ".join(f"{k}={v:.4f}" for k, v in reported.items())
    capsys.readouterr()
    assert cli.main(["evaluate", str(run)]) == 0
    assert capsys.readouterr().out.startswith(f"test: {line}  (the test split of {name})")
    assert cli.main(["evaluate", str(run), "--dataset", name]) == 0
    assert capsys.readouterr().out.startswith(f"data: {line}  (the test split of {name})")


def test_limit_and_seed_reach_the_hf_split(hf_mnist):
    name, cache = hf_mnist
    args = cli.build_parser().parse_args(
        ["train", "--dataset", name, "--data-dir", cache, "--limit", "30", "--seed", str(SEED)]
    )
    data = load_raw(args, jaxdl.models.SPECS["cnn"])
    assert (len(data.train), len(data.validation), len(data.test)) == (30, 10, 20)
    whole = jaxdl.data.load(name, seed=SEED, data_dir=cache)
    np.testing.assert_array_equal(data.train.x, whole.train.x[:30])


@pytest.fixture(scope="module")
def hf_imdb(tmp_path_factory):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    columns = {
        split: {"text": ["a fine film", "a dull film"] * 5, "label": [1, 0] * 5}
        for split in ("train", "test")
    }
    return write_hub_folder(tmp_path_factory.mktemp("imdb"), columns, features)


@pytest.mark.parametrize(
    "model, which, message",
    [
        ("transformer", "mnist", "data set 'hf:{folder}' holds images"),
        ("cnn", "imdb", "model 'cnn' trains on images; data set 'hf:{folder}' holds token ids"),
    ],
)
def test_a_model_that_cannot_read_an_hf_set_is_refused_before_it_is_read(
    hf_mnist, hf_imdb, tmp_path, capsys, model, which, message
):
    name = hf_mnist[0] if which == "mnist" else hf_imdb
    cache, out = tmp_path / "cache", tmp_path / "run"
    argv = ["train", "--model", model, "--dataset", name, "--data-dir", str(cache)]
    assert cli.main([*argv, "--out", str(out), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert message.format(folder=name.removeprefix("hf:")) in error, error
    assert "Traceback" not in error and not out.exists()
    # the kind came from the parquet schema: no split was prepared into the cache
    assert not list(cache.rglob("*.arrow"))


def test_images_too_small_for_the_model_are_refused_once_decoded(hf_mnist, tmp_path, capsys):
    name, cache = hf_mnist
    out = tmp_path / "run"
    argv = ["train", "--model", "resnet18", "--dataset", name, "--data-dir", cache]
    assert cli.main([*argv, "--out", str(out), "--quiet"]) == 2
    assert "8x8 images end as maps of 1x1 pixels" in capsys.readouterr().err
    assert not out.exists()


def test_hf_names_are_offered_in_the_help_and_the_unknown_data_set_error(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    assert "hf:NAME" in " ".join(capsys.readouterr().out.split())
    assert cli.main(["train", "--dataset", "nowhere", "--quiet"]) == 2
    assert "an image folder (CLASS_NAME/*.png) or hf:NAME" in capsys.readouterr().err
    assert cli.main(["train", "--dataset", "hf:", "--quiet"]) == 2
    assert "--dataset: expected hf:NAME" in capsys.readouterr().err


def test_an_uncached_hub_set_offline_says_how_to_download(tmp_path, capsys):
    pytest.importorskip("datasets")
    argv = ["train", "--dataset", "hf:ylecun/mnist", "--data-dir", str(tmp_path), "--quiet"]
    assert cli.main([*argv, "--out", str(tmp_path / "run")]) == 1
    error = capsys.readouterr().err
    assert (
        f"--dataset hf:ylecun/mnist: no such local folder, and no such set in {tmp_path}" in error
    )
    assert "pass --download once" in error and "Traceback" not in error
