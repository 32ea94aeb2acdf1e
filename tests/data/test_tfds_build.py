"""TFDS's real preparation path, offline: local builders write a few rows where TFDS's own
builders would download, and jaxdl prepares and reads them as it does a real set.

Each local builder subclasses the TFDS builder of the set it stands for (same name, version,
features), so the files it writes are the files ``tfds build`` would write; the set converted
by ``tfds convert_format`` is read back by the stock builder, in a fresh process. The text
set needs no TensorFlow; preparing an image set does (TFDS encodes images with it), so those
tests run where TensorFlow is installed: ``nox -s tfds`` (``pip install "jaxdl[tfds-build]"``,
which also brings apache-beam and mlcroissant, imported by the ``tfds`` command line).
"""

import glob
import json
import os
import re
import shlex
import subprocess
import sys
from importlib.util import find_spec

import numpy as np
import pytest

from jaxdl import data

tfds = pytest.importorskip("tensorflow_datasets")

WORDS = ("bad", "good")  # the word of each label in the local text set


class OfflineImdbReviews(tfds.builder_cls("imdb_reviews"), skip_registration=True):
    """``imdb_reviews`` with 20 train and 6 test reviews, row i: "<label word> row<i>"."""

    name = "imdb_reviews"

    def _split_generators(self, dl_manager):
        return {
            "train": self._generate_examples("row", 20),
            "test": self._generate_examples("new", 6),
        }

    def _generate_examples(self, prefix, n):
        for i in range(n):
            yield f"{prefix}{i}", {"text": f"{WORDS[i % 2]} {prefix}{i}", "label": i % 2}


class OfflineMnist(tfds.builder_cls("mnist"), skip_registration=True):
    """``mnist`` with 20 train and 10 test images, image i all ``10 * i + 5``, label i % 2."""

    name = "mnist"

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 20), "test": self._generate_examples(20, 10)}

    def _generate_examples(self, start, n):
        for i in range(start, start + n):
            image = np.full((28, 28, 1), 10 * (i - start) + 5, np.uint8)
            yield i, {"image": image, "label": (i - start) % 2}


@pytest.fixture
def offline(monkeypatch):
    """Make ``tfds.builder`` (what jaxdl calls) return the local builder of a set."""

    def use(builder_cls):
        stock = tfds.builder

        def builder(name, **kwargs):
            return builder_cls(**kwargs) if name == builder_cls.name else stock(name, **kwargs)

        monkeypatch.setattr(tfds, "builder", builder)

    return use


def _check_text_rows(x, y, tokens, unseen_word):
    """Each row reads "<word of its label> <unseen_word or its own row word>", then padding."""
    for row, label in zip(x, y):
        words = [tokens[i] for i in row if i]
        assert words[0] == WORDS[label] and len(words) == 2
        assert (words[1] == "<unk>") == unseen_word
        assert np.all(row[2:] == 0)


def test_text_set_prepared_as_array_record_and_loaded(tmp_path, offline):
    offline(OfflineImdbReviews)
    splits = data.load("imdb_reviews", data_dir=str(tmp_path), download=True, max_len=4)
    # prepared in the format TFDS's data sources read by index, not TFDS's default TFRecord
    (version_dir,) = glob.glob(f"{tmp_path}/imdb_reviews/plain_text/*")
    prepared = json.loads(open(f"{version_dir}/dataset_info.json").read())
    assert prepared["fileFormat"] == "array_record"
    assert glob.glob(f"{version_dir}/imdb_reviews-train.array_record-*")
    info = splits.info
    assert (info.num_classes, info.class_names, info.input_shape) == (2, ("neg", "pos"), (4,))
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (18, 2, 6)
    assert sorted(splits.test.y.tolist()) == [0, 0, 0, 1, 1, 1]
    tokens = info.extra["vocabulary"].tokens
    # the vocabulary holds the two label words and the row words of the training part only
    raw = tfds.data_source("imdb_reviews", split="train", data_dir=str(tmp_path))
    texts = [raw[i]["text"].decode() for i in range(len(raw))]
    fit, _ = data.stratified_split(np.array([raw[i]["label"] for i in range(20)]), (0.9, 0.1), 0)
    assert set(tokens[2:]) == {"bad", "good"} | {texts[i].split()[1] for i in fit}
    _check_text_rows(splits.train.x, splits.train.y, tokens, unseen_word=False)
    _check_text_rows(splits.validation.x, splits.validation.y, tokens, unseen_word=True)
    _check_text_rows(splits.test.x, splits.test.y, tokens, unseen_word=True)
    # streamed from the same files, with a vocabulary of the whole train split
    pipeline = data.stream("imdb_reviews", "test", data_dir=str(tmp_path), max_len=4)
    batch = next(pipeline.batches(6))
    tokens = pipeline.info.extra["vocabulary"].tokens
    assert set(tokens[2:]) == {"bad", "good"} | {f"row{i}" for i in range(20)}
    _check_text_rows(batch["x"], batch["y"], tokens, unseen_word=True)
    assert sorted(batch["y"].tolist()) == [0, 0, 0, 1, 1, 1]


def test_set_prepared_as_tfrecord_gets_the_conversion_command(tmp_path, offline):
    offline(OfflineImdbReviews)
    data.load("imdb_reviews", data_dir=str(tmp_path), download=True)
    # what TensorFlow's `tfds build` leaves: the same folder, its info naming TFRecord
    (version_dir,) = glob.glob(f"{tmp_path}/imdb_reviews/plain_text/*")
    info_path = f"{version_dir}/dataset_info.json"
    prepared = json.loads(open(info_path).read())
    prepared["fileFormat"] = "tfrecord"
    open(info_path, "w").write(json.dumps(prepared))
    command = (
        f"tfds convert_format --dataset_version_dir={version_dir} --out_file_format=array_record"
    )
    for attempt in (
        lambda: data.load("imdb_reviews", data_dir=str(tmp_path)),
        lambda: data.stream("imdb_reviews", "test", data_dir=str(tmp_path)),
        lambda: data.load("imdb_reviews", data_dir=str(tmp_path), download=True),
    ):
        with pytest.raises(ValueError, match="prepared in .* as tfrecord") as caught:
            attempt()
        assert command in str(caught.value)
        assert (
            'needs TensorFlow and the packages it imports: pip install "jaxdl[tfds-build]"):'
            in str(caught.value)
        )


def test_a_module_tfds_imports_that_is_missing_is_named(monkeypatch):
    def builder(name, **kwargs):  # as TFDS re-raises an import of a lazy module
        try:
            raise ModuleNotFoundError(
                "No module named 'importlib_resources'", name="importlib_resources"
            )
        except ModuleNotFoundError as error:
            raise ModuleNotFoundError(f"Failed to load {name}:\n{error}") from error

    monkeypatch.setattr(tfds, "builder", builder)
    with pytest.raises(ModuleNotFoundError, match="pip install importlib_resources") as caught:
        data.load("mnist", download=True)
    assert "download=True" not in str(caught.value)
    assert caught.value.name == "importlib_resources"


@pytest.mark.skipif(find_spec("tensorflow") is not None, reason="TensorFlow is installed")
def test_building_an_image_set_without_tensorflow_says_how_to_install_it(tmp_path, offline):
    offline(OfflineMnist)
    with pytest.raises(ModuleNotFoundError, match=r'pip install "jaxdl\[tfds-build\]"'):
        data.load("mnist", data_dir=str(tmp_path), download=True)


def _check_images(x, y):
    """Image i is all ``(10 * i + 5) / 255`` with label i % 2."""
    values = np.round(x * 255).astype(int)
    assert np.all(values == values[:, :1, :1, :1])
    assert np.array_equal(y, ((values[:, 0, 0, 0] - 5) // 10) % 2)
    return sorted(values[:, 0, 0, 0].tolist())


def test_image_set_prepared_as_array_record_and_loaded(tmp_path, offline):
    pytest.importorskip("tensorflow")
    offline(OfflineMnist)
    splits = data.load("mnist", data_dir=str(tmp_path), download=True)
    (version_dir,) = glob.glob(f"{tmp_path}/mnist/*")
    assert json.loads(open(f"{version_dir}/dataset_info.json").read())["fileFormat"] == (
        "array_record"
    )
    assert splits.info.input_shape == (28, 28, 1) and splits.info.num_classes == 10
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (18, 2, 10)
    assert splits.train.x.dtype == np.float32 and splits.train.y.dtype == np.int32
    train = _check_images(splits.train.x, splits.train.y)
    validation = _check_images(splits.validation.x, splits.validation.y)
    assert sorted(train + validation) == [10 * i + 5 for i in range(20)]
    assert _check_images(splits.test.x, splits.test.y) == [10 * i + 5 for i in range(10)]
    batches = list(data.stream("mnist", "test", data_dir=str(tmp_path)).batches(4))
    assert len(batches) == 3 and batches[-1]["mask"].sum() == 2  # 10 rows: 2 padding
    keep = np.concatenate([b["mask"] for b in batches]).astype(bool)
    x = np.concatenate([b["x"] for b in batches])[keep]
    y = np.concatenate([b["y"] for b in batches])[keep]
    assert _check_images(x, y) == [10 * i + 5 for i in range(10)]


# Loads a set in a fresh process (TFDS keeps a data set's info per process) and saves what
# jaxdl read: the three splits of `load` and the test split streamed in batches of 4.
_LOAD_AND_SAVE = """
import sys
import numpy as np
from jaxdl import data

data_dir, out = sys.argv[1:]
s = data.load("mnist", data_dir=data_dir)
batches = list(data.stream("mnist", "test", data_dir=data_dir).batches(4))
keep = np.concatenate([b["mask"] for b in batches]).astype(bool)
np.savez(
    out, train_x=s.train.x, train_y=s.train.y, validation_x=s.validation.x,
    validation_y=s.validation.y, test_x=s.test.x, test_y=s.test.y,
    stream_x=np.concatenate([b["x"] for b in batches])[keep],
    stream_y=np.concatenate([b["y"] for b in batches])[keep],
)
"""


def _check_generated(x, y, examples):
    """The rows of (x, y) are the generated ``examples`` (image, label), each once."""
    expected = {int(image[0, 0, 0]): (image, label) for image, label in examples}
    values = np.round(x[:, 0, 0, 0] * 255).astype(int).tolist()
    assert sorted(values) == sorted(expected)
    for row, label, value in zip(x, y, values):
        image, expected_label = expected[value]
        assert np.array_equal(row, image.astype(np.float32) / np.float32(255.0))
        assert label == expected_label


def test_image_set_prepared_by_tensorflow_converts_with_the_given_command(tmp_path):
    pytest.importorskip("tensorflow")
    # `tfds convert_format` imports both at start-up (jaxdl[tfds-build] installs them)
    for module in ("apache_beam", "mlcroissant"):
        pytest.importorskip(module, reason=f"tfds convert_format imports {module}")
    builder = OfflineMnist(data_dir=str(tmp_path))
    builder.download_and_prepare(file_format="tfrecord")  # as TensorFlow's `tfds build`
    with pytest.raises(ValueError, match="prepared in .* as tfrecord") as caught:
        data.load("mnist", data_dir=str(tmp_path))
    (command,) = re.findall(r"tfds convert_format \S+ \S+", str(caught.value))
    # the advised command as a user pastes it, run by the `tfds` of this environment
    tfds_cli = os.path.join(os.path.dirname(sys.executable), "tfds")
    converted = subprocess.run(
        [tfds_cli, *shlex.split(command)[1:]], capture_output=True, text=True, timeout=300
    )
    assert converted.returncode == 0, converted.stderr[-3000:]
    # in place: array_record files beside the TFRecord ones, listed as an alternative format
    version_dir = builder.data_dir
    prepared = json.loads(open(f"{version_dir}/dataset_info.json").read())
    assert prepared["fileFormat"] == "tfrecord"
    assert prepared["alternativeFileFormats"] == ["array_record"]
    for split in ("train", "test"):
        assert glob.glob(f"{version_dir}/mnist-{split}.tfrecord-*")
        assert glob.glob(f"{version_dir}/mnist-{split}.array_record-*")
    out = tmp_path / "loaded.npz"
    loaded = subprocess.run(
        [sys.executable, "-c", _LOAD_AND_SAVE, str(tmp_path), str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    read = np.load(out)
    assert (len(read["train_x"]), len(read["validation_x"]), len(read["test_x"])) == (18, 2, 10)
    assert read["train_x"].dtype == np.float32 and read["train_y"].dtype == np.int32
    train = [(e["image"], e["label"]) for _, e in builder._generate_examples(0, 20)]
    test = [(e["image"], e["label"]) for _, e in builder._generate_examples(20, 10)]
    _check_generated(
        np.concatenate([read["train_x"], read["validation_x"]]),
        np.concatenate([read["train_y"], read["validation_y"]]),
        train,
    )
    _check_generated(read["test_x"], read["test_y"], test)
    _check_generated(read["stream_x"], read["stream_y"], test)
