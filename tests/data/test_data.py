import numpy as np
import pytest
from sklearn.datasets import load_digits

from jaxdl import data


def test_digits_splits_info_and_scaling_fitted_on_train_only():
    splits = data.load("digits", seed=0)
    info = splits.info
    assert (info.num_classes, info.input_shape, len(info.class_names)) == (10, (64,), 10)
    sizes = [len(splits.train), len(splits.validation), len(splits.test)]
    assert sum(sizes) == 1797
    assert sizes[2] == pytest.approx(0.2 * 1797, abs=2)
    assert splits.train.x.dtype == np.float32 and splits.train.y.dtype == np.int32
    # recompute the scaling by hand from the raw pixels of the training split
    raw = load_digits()
    train_idx, _, test_idx = data.stratified_split(raw.target, (0.65, 0.15, 0.2), seed=0)
    mean = raw.data[train_idx].mean(0)
    std = raw.data[train_idx].std(0)
    std[std == 0] = 1
    np.testing.assert_allclose(
        splits.test.x, (raw.data[test_idx] - mean) / std, rtol=1e-4, atol=1e-5
    )
    np.testing.assert_array_equal(splits.test.y, raw.target[test_idx])
    # train features are standardised; the test split's are not exactly (no leakage)
    assert np.abs(splits.train.x.mean(0)).max() < 1e-4
    assert np.abs(splits.test.x.mean(0)).max() > 1e-2


def test_digits_as_images():
    splits = data.load("digits", image=True, scaling="minmax")
    assert splits.train.x.shape[1:] == (8, 8, 1) == splits.info.input_shape
    assert splits.train.x.min() == 0.0 and splits.train.x.max() == 1.0


@pytest.mark.parametrize("name", ["xor", "moons", "spirals"])
def test_generated_sets_are_functions_of_the_seed(name):
    a, b, c = data.load(name, seed=1), data.load(name, seed=1), data.load(name, seed=2)
    np.testing.assert_array_equal(a.train.x, b.train.x)
    assert not np.array_equal(a.train.x, c.train.x)
    assert a.info.num_classes == 2 and set(np.unique(a.train.y)) == {0, 1}


def test_xor_labels_are_sign_xor():
    splits = data.load("xor", scaling=None)
    x, y = splits.train.x, splits.train.y
    np.testing.assert_array_equal(y, (x[:, 0] * x[:, 1] < 0).astype(int))
    assert np.abs(x).min() >= 0.1


def test_stratified_split_keeps_class_proportions(rng):
    y = rng.choice(5, size=997, p=[0.5, 0.2, 0.15, 0.1, 0.05])
    parts = data.stratified_split(y, (0.6, 0.2, 0.2), seed=3)
    assert sorted(np.concatenate(parts)) == list(range(997))
    for part, fraction in zip(parts, (0.6, 0.2, 0.2)):
        for c in range(5):
            assert abs((y[part] == c).sum() - fraction * (y == c).sum()) <= 1.0 + 1e-9


def test_epoch_indices_cover_every_example_once():
    idx, mask = data.epoch_indices(50, 16, shuffle=True, seed=3, epoch=2)
    assert idx.shape == mask.shape == (4, 16)
    real = idx[mask > 0]
    assert sorted(real) == list(range(50))
    assert mask.sum() == 50 and (mask[-1, 2:] == 0).all()
    again, _ = data.epoch_indices(50, 16, shuffle=True, seed=3, epoch=2)
    other, _ = data.epoch_indices(50, 16, shuffle=True, seed=3, epoch=3)
    np.testing.assert_array_equal(idx, again)
    assert not np.array_equal(idx, other)
    ordered, _ = data.epoch_indices(50, 16, shuffle=False)
    np.testing.assert_array_equal(ordered.reshape(-1)[:50], np.arange(50))


def test_scalers_and_one_hot(rng):
    x = rng.normal(3, 2, size=(100, 4, 4, 3)).astype(np.float32)
    per_channel = data.Standardizer.fit(x, per_channel=True)
    assert per_channel.mean.shape == (3,)
    z = per_channel(x)
    np.testing.assert_allclose(z.reshape(-1, 3).mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z.reshape(-1, 3).std(0), 1, atol=1e-4)
    np.testing.assert_allclose(per_channel.inverse(z), x, rtol=1e-5, atol=1e-5)
    flat = rng.normal(size=(20, 3))
    mm = data.MinMaxScaler.fit(flat)
    np.testing.assert_allclose(mm(flat).min(0), 0, atol=1e-6)
    np.testing.assert_allclose(mm(flat).max(0), 1, atol=1e-6)
    np.testing.assert_array_equal(data.one_hot([2, 0], 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        data.one_hot([3], 3)


def test_unknown_data_set_lists_names():
    listed = "digits, emnist, fashion_mnist, imdb_reviews, mnist, moons"
    with pytest.raises(ValueError, match=f"unknown data set .digitz.*{listed}"):
        data.load("digitz")


TFDS_IMAGES = [
    ("mnist", (28, 28, 1), 10),
    ("fashion_mnist", (28, 28, 1), 10),
    ("cifar10", (32, 32, 3), 10),
    ("cifar100", (32, 32, 3), 100),
    ("emnist", (28, 28, 1), 62),  # the "byclass" configuration: digits, upper and lower case
]


@pytest.mark.parametrize("name,shape,classes", TFDS_IMAGES)
def test_tfds_image_sets_under_mock_data(name, shape, classes):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=30):
        splits = data.load(name, seed=0)
        raw_test = tfds.data_source(name, split="test")
        expected_test = np.stack([raw_test[i]["image"] for i in range(30)]) / 255.0
        streamed = list(data.stream(name, "test", num_threads=2).batches(8))
    assert splits.info.input_shape == shape and splits.info.num_classes == classes
    assert len(splits.info.class_names) == classes
    assert len(splits.train) + len(splits.validation) == 30 and len(splits.test) == 30
    x = splits.train.x
    assert x.dtype == np.float32 and x.shape[1:] == shape and 0 <= x.min() and x.max() <= 1
    assert splits.train.y.dtype == np.int32 and splits.train.y.max() < classes
    np.testing.assert_allclose(splits.test.x, expected_test, rtol=1e-6)
    # the streaming pipeline reads the same records: 4 batches of 8, the last 2 rows padding
    assert len(streamed) == 4 and streamed[-1]["mask"].sum() == 6
    stream_x = np.concatenate([b["x"] for b in streamed])[:30]
    stream_y = np.concatenate([b["y"] for b in streamed])[:30]
    np.testing.assert_allclose(stream_x, splits.test.x, rtol=1e-6)
    assert np.array_equal(stream_y, splits.test.y) and stream_x.dtype == np.float32


def test_imdb_reviews_under_mock_data_become_ids_of_a_training_split_vocabulary():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=60):
        splits = data.load("imdb_reviews", seed=3, max_len=12)
        train = tfds.data_source("imdb_reviews", split="train")
        texts = [train[i]["text"] for i in range(len(train))]
        labels = np.array([int(train[i]["label"]) for i in range(len(train))])
        test = tfds.data_source("imdb_reviews", split="test")
        test_texts = [test[i]["text"] for i in range(len(test))]
        pipeline = data.stream("imdb_reviews", "test", max_len=12)
        streamed = next(pipeline.batches(60))
    info = splits.info
    assert (info.num_classes, info.input_shape, info.class_names) == (2, (12,), ("neg", "pos"))
    assert len(splits.train) + len(splits.validation) == 60 and len(splits.test) == 60
    # the vocabulary holds exactly the words of the training part, none of validation's own
    fit, _ = data.stratified_split(labels, (0.9, 0.1), 3)
    words = {w for i in fit for w in data.tokenize(texts[i])}
    vocabulary = info.extra["vocabulary"]
    assert set(vocabulary.tokens[2:]) == words and vocabulary.tokens[:2] == ("<pad>", "<unk>")
    assert splits.train.x.dtype == np.int32 and splits.train.x.max() < len(vocabulary)
    for row, text in zip(splits.test.x, test_texts):  # unknown words -> 1, padding -> 0
        expected = [w if w in words else "<unk>" for w in data.tokenize(text)[:12]]
        assert [vocabulary.tokens[i] for i in row if i] == expected
        assert np.all(row[len(expected) :] == 0)
    # streamed, with a vocabulary of the whole train split
    every_word = {w for text in texts for w in data.tokenize(text)}
    tokens = pipeline.info.extra["vocabulary"].tokens
    assert set(tokens[2:]) == every_word and streamed["x"].dtype == np.int32
    for row, text in zip(streamed["x"], test_texts):
        expected = [w if w in every_word else "<unk>" for w in data.tokenize(text)[:12]]
        assert [tokens[i] for i in row if i] == expected
    assert np.array_equal(streamed["y"], splits.test.y)


def test_a_vocabulary_by_hand():
    assert data.tokenize("Don't<br />STOP, it's 2 good!") == ["don't", "stop", "it's", "2", "good"]
    vocabulary = data.Vocabulary.build(["The cat sat.", b"the dog<br />sat", "a cat"], size=5)
    # counts: the 2, sat 2, cat 2, dog 1, a 1; ties alphabetical; size 5 keeps 3 words
    assert vocabulary.tokens == ("<pad>", "<unk>", "cat", "sat", "the")
    ids = vocabulary.encode(["the bird sat on the cat", "cat"], max_len=4)
    assert ids.tolist() == [[4, 1, 3, 1], [2, 0, 0, 0]]
    assert vocabulary.decode(ids[0]) == "the <unk> sat <unk>"
    with pytest.raises(ValueError, match="vocabulary size"):
        data.Vocabulary.build(["a"], size=2)


@pytest.mark.parametrize("name", ["mnist", "imdb_reviews"])
def test_tfds_set_not_prepared_offline_says_what_to_do(tmp_path, name):
    message = f"'{name}' is not prepared in .*download=True"
    with pytest.raises(FileNotFoundError, match=message):
        data.load(name, data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=message):
        data.stream(name, "train", data_dir=str(tmp_path))


def test_moons_take_any_seed_numpy_takes():
    def points(seed):  # every split's points, in one order
        splits = data.load("moons", seed=seed, scaling=None)
        x = np.concatenate([splits.train.x, splits.validation.x, splits.test.x])
        return x[np.lexsort(x.T)]

    # beyond scikit-learn's seeds: the points of seed 5, split by the full seed
    assert np.array_equal(points(2**32 + 5), points(5))
