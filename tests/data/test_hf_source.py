"""Hugging Face sets ("hf:NAME"), offline: small parquet folders in the hub's layout and the
schemas of ylecun/mnist, uoft-cs/cifar10 and stanfordnlp/imdb, read back exactly."""

import sys

import numpy as np
import pytest
from hf_files import numbered_images, write_hub_folder, write_mnist

import jaxdl

datasets = pytest.importorskip("datasets")

CIFAR_NAMES = "airplane automobile bird cat deer dog frog horse ship truck".split()


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    train, test = numbered_images(100, (28, 28), 0), numbered_images(20, (28, 28), 1)
    labels = {"train": np.arange(100) % 10, "test": np.arange(20) % 10}
    name = write_mnist(tmp_path_factory.mktemp("mnist"), train, test, labels)
    return name, train, test, labels


@pytest.fixture(scope="module")
def cifar10(tmp_path_factory):
    train, test = numbered_images(50, (32, 32, 3), 2), numbered_images(10, (32, 32, 3), 3)
    features = datasets.Features(
        {"img": datasets.Image(), "label": datasets.ClassLabel(names=CIFAR_NAMES)}
    )
    labels = {"train": np.arange(50) % 10, "test": np.arange(10)[::-1] % 10}
    columns = {
        s: {"img": list(x), "label": labels[s].tolist()}
        for s, x in (("train", train), ("test", test))
    }
    name = write_hub_folder(tmp_path_factory.mktemp("cifar10"), columns, features)
    return name, train, test, labels


def as_floats(images: np.ndarray) -> np.ndarray:
    x = images if images.ndim == 4 else images[..., None]
    return x.astype(np.float32) / np.float32(255.0)


def rows_of(x: np.ndarray) -> np.ndarray:
    """The example index that each image's first pixel holds."""
    return np.rint(x.reshape(len(x), -1)[:, 0] * 255).astype(int)


def streamed(pipeline, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    batches = list(pipeline.batches(batch_size))
    keep = np.concatenate([b["mask"] for b in batches]) == 1
    x = np.concatenate([b["x"] for b in batches])[keep]
    return x, np.concatenate([b["y"] for b in batches])[keep]


def test_mnist_schema_gives_the_pixels_and_labels_written(mnist, tmp_path, capfd):
    name, train, test, labels = mnist
    splits = jaxdl.data.load(name, seed=3, data_dir=str(tmp_path))
    info = splits.info
    assert (info.num_classes, info.input_shape) == (10, (28, 28, 1))
    assert info.class_names == tuple(str(i) for i in range(10))
    assert splits.test.x.dtype == np.float32 and splits.test.y.dtype == np.int32
    np.testing.assert_array_equal(splits.test.x, as_floats(test))
    np.testing.assert_array_equal(splits.test.y, labels["test"])
    # train and validation share the train split: each row once, one per class held out
    fit, held = rows_of(splits.train.x), rows_of(splits.validation.x)
    assert sorted(np.r_[fit, held]) == list(range(100))
    np.testing.assert_array_equal(splits.validation.x, as_floats(train[held]))
    np.testing.assert_array_equal(splits.train.x, as_floats(train[fit]))
    np.testing.assert_array_equal(splits.train.y, labels["train"][fit])
    assert sorted(splits.validation.y) == list(range(10))  # stratified: 10% of each class
    # datasets' own progress bars (download, preparation) are left on
    assert "Generating train split" in capfd.readouterr().err
    assert datasets.utils.logging.is_progress_bar_enabled()


def test_cifar10_schema_and_stream_equal_load(cifar10, tmp_path):
    name, train, test, labels = cifar10
    splits = jaxdl.data.load(name, data_dir=str(tmp_path))
    assert splits.info.input_shape == (32, 32, 3)
    assert splits.info.class_names == tuple(CIFAR_NAMES)
    np.testing.assert_array_equal(splits.test.x, as_floats(test))
    np.testing.assert_array_equal(splits.test.y, labels["test"])
    test_stream = jaxdl.data.stream(name, "test", data_dir=str(tmp_path), num_threads=2)
    assert isinstance(test_stream, jaxdl.data.Pipeline) and len(test_stream) == 10
    assert test_stream.info.input_shape == (32, 32, 3)
    x, y = streamed(test_stream, 4)
    np.testing.assert_array_equal(x, splits.test.x)
    np.testing.assert_array_equal(y, splits.test.y)
    train_stream = jaxdl.data.stream(name, "train", data_dir=str(tmp_path), num_threads=2)
    np.testing.assert_array_equal(train_stream.targets(), labels["train"])
    x, y = streamed(train_stream, 16)
    np.testing.assert_array_equal(x, as_floats(train))
    np.testing.assert_array_equal(y, labels["train"])


def test_imdb_schema_becomes_ids_of_a_vocabulary_of_the_training_part(tmp_path):
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    texts = ["A great film.", "a bad film<br />"] * 10
    columns = {
        "train": {"text": texts, "label": [1, 0] * 10},
        "test": {"text": ["A great, GREAT film!", "terrible film"], "label": [1, 0]},
        "unsupervised": {"text": ["no label"], "label": [-1]},  # as on the hub
    }
    name = write_hub_folder(tmp_path / "imdb", columns, features)
    splits = jaxdl.data.load(name, data_dir=str(tmp_path / "cache"), vocab_size=50, max_len=8)
    info = splits.info
    assert (info.class_names, info.input_shape, info.scalable) == (("neg", "pos"), (8,), False)
    assert len(splits.train) == 18 and sorted(splits.validation.y) == [0, 1]
    # by hand: the 18 training texts count a: 18, film: 18, bad: 9, great: 9 (ties by word)
    vocabulary = info.extra["vocabulary"]
    assert vocabulary.tokens == ("<pad>", "<unk>", "a", "film", "bad", "great")
    assert info.extra["vocab_size"] == 6
    expected = [[2, 5, 5, 3, 0, 0, 0, 0], [1, 3, 0, 0, 0, 0, 0, 0]]
    np.testing.assert_array_equal(splits.test.x, expected)
    np.testing.assert_array_equal(splits.test.y, [1, 0])
    pipeline = jaxdl.data.stream(
        name, "test", data_dir=str(tmp_path / "cache"), vocabulary=vocabulary, max_len=8
    )
    x, y = streamed(pipeline, 2)
    np.testing.assert_array_equal(x, expected)
    np.testing.assert_array_equal(y, [1, 0])


def test_a_column_that_is_no_class_label_is_named_in_the_error(cifar10, tmp_path):
    with pytest.raises(ValueError, match="label_column: expected a ClassLabel column"):
        jaxdl.data.load(cifar10[0], data_dir=str(tmp_path), label_column="img")


def test_a_hub_name_offline_says_how_to_download(tmp_path):
    before = datasets.config.HF_HUB_OFFLINE
    with pytest.raises(FileNotFoundError, match=r"download=True"):
        jaxdl.data.load("hf:ylecun/mnist", data_dir=str(tmp_path))
    assert datasets.config.HF_HUB_OFFLINE == before  # offline only for that call


def test_without_datasets_the_error_gives_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets now fails
    with pytest.raises(ImportError, match=r"pip install 'jaxdl\[hf\]'"):
        jaxdl.data.load("hf:ylecun/mnist")


@pytest.mark.slow
def test_an_image_stream_decoded_by_grain_workers_equals_load(cifar10, tmp_path):
    """The Arrow table and the decoding travel to two spawned workers, which decode the
    PNGs there: the same images and labels as ``load`` reads in this process."""
    name, _, test, labels = cifar10
    options = dict(data_dir=str(tmp_path), num_workers=2, num_threads=1)
    with jaxdl.data.stream(name, "test", **options) as stream:
        x, y = streamed(stream, 4)
    np.testing.assert_array_equal(x, as_floats(test))
    np.testing.assert_array_equal(y, labels["test"])
