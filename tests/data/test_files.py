"""Your own files as data sets: ``from_csv``, ``csv_features``, ``from_image_folder``."""

import logging

import numpy as np
import pytest
from PIL import Image

from jaxdl import data
from jaxdl.data import files


def write(path, text):
    path.write_text(text)
    return path


@pytest.fixture
def flowers(tmp_path):
    """Twelve rows, classes named by words, four of each."""
    rows = ["petal,sepal,kind"]
    for i in range(12):
        kind = ("rose", "iris", "daisy")[i % 3]
        rows.append(f"{i},{10 - i * 0.5},{kind}")
    return write(tmp_path / "flowers.csv", "\n".join(rows) + "\n")


def test_csv_classes_are_the_sorted_words_and_every_row_lands_in_one_split(flowers):
    splits = data.from_csv(flowers, target="kind", scaling=None)
    info = splits.info
    assert info.class_names == ("daisy", "iris", "rose")
    assert (info.num_classes, info.input_shape, info.task) == (3, (2,), "classification")
    assert info.extra["feature_names"] == ["petal", "sepal"]
    parts = [splits.train, splits.validation, splits.test]
    assert sum(len(p) for p in parts) == 12
    rows = np.concatenate([p.x for p in parts])
    labels = np.concatenate([p.y for p in parts])
    order = np.argsort(rows[:, 0])
    # row i holds petal=i, sepal=10 - i/2 and the i % 3-th of (rose, iris, daisy)
    np.testing.assert_array_equal(rows[order, 0], np.arange(12))
    np.testing.assert_allclose(rows[order, 1], 10 - np.arange(12) * 0.5)
    expected = [("rose", "iris", "daisy")[i % 3] for i in range(12)]
    assert [info.class_names[c] for c in labels[order]] == expected
    # stratified: 65/15/20% of each class of four examples
    for part in parts:
        counts = np.bincount(part.y, minlength=3)
        assert counts.max() - counts.min() <= 1


def test_csv_scaling_is_fitted_on_the_training_split_and_kept(flowers):
    raw = data.from_csv(flowers, target="kind", scaling=None, seed=3)
    scaled = data.from_csv(flowers, target="kind", seed=3)
    scaler = scaled.info.extra["scaler"]
    np.testing.assert_allclose(scaler.mean, raw.train.x.mean(0), rtol=1e-6)
    np.testing.assert_allclose(scaler.std, raw.train.x.std(0), rtol=1e-6)
    np.testing.assert_allclose(scaled.train.x.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(
        scaled.test.x, (raw.test.x - raw.train.x.mean(0)) / raw.train.x.std(0), rtol=1e-5
    )
    assert raw.info.extra["scaler"] is None


def test_csv_task_inference_and_override(tmp_path, caplog):
    lines = ["a,b,y"] + [f"{i},{i * i},{i % 4}" for i in range(16)]
    path = write(tmp_path / "t.csv", "\n".join(lines))
    with caplog.at_level(logging.INFO, logger="jaxdl"):
        splits = data.from_csv(path, target="y")
    assert splits.info.task == "classification"
    assert splits.info.class_names == ("0", "1", "2", "3")
    assert "read as classification of 4 classes" in caplog.text
    regression = data.from_csv(path, target="y", task="regression")
    assert regression.info.task == "regression" and regression.info.num_classes == 0
    assert regression.train.y.shape == (len(regression.train), 1)
    assert regression.train.y.dtype == np.float32
    # a fractional target is a regression; features and targets stay row-aligned
    lines = ["a,y"] + [f"{i},{i / 3}" for i in range(10)]
    splits = data.from_csv(write(tmp_path / "r.csv", "\n".join(lines)), "y", scaling=None)
    assert splits.info.task == "regression"
    for part in (splits.train, splits.validation, splits.test):
        np.testing.assert_allclose(part.y[:, 0], part.x[:, 0] / 3, rtol=1e-6)


def test_numeric_classes_sort_as_numbers_and_given_classes_keep_their_labels(tmp_path):
    lines = ["x,y"] + [f"{i},{(2, 10, 9)[i % 3]}" for i in range(9)]
    path = write(tmp_path / "n.csv", "\n".join(lines))
    splits = data.from_csv(path, "y", scaling=None)
    assert splits.info.class_names == ("2", "9", "10")  # not "10" < "2"
    again = data.from_csv(path, "y", classes=["10", "9", "2", "5"], scaling=None)
    assert again.info.num_classes == 4
    for part in (again.train, again.validation, again.test):
        kinds = np.array([(2, 10, 9)[int(i) % 3] for i in part.x[:, 0]])
        np.testing.assert_array_equal(part.y, np.select([kinds == 10, kinds == 9], [0, 1], 2))
    with pytest.raises(ValueError, match=r"'10' is not one of the classes \['2', '9'\]"):
        data.from_csv(path, "y", classes=["2", "9"])


def test_csv_errors_name_the_column_and_the_line(tmp_path, flowers):
    with pytest.raises(ValueError, match=r"no target column 'species'; the header has 'petal'"):
        data.from_csv(flowers, target="species")
    bad = write(tmp_path / "bad.csv", "a,name,y\n1,2,0\n3,bob,1\n")
    with pytest.raises(ValueError, match=r"column 'name', line 3: 'bob' is not a finite number"):
        data.from_csv(bad, target="y")
    kept = data.from_csv(
        write(tmp_path / "ok.csv", "a,name,y\n" + "".join(f"{i},x{i},{i % 2}\n" for i in range(8))),
        target="y",
        features=["a"],
    )
    assert kept.info.input_shape == (1,)
    with pytest.raises(ValueError, match=r"line 3: expected 3 values as in the first row, got 2"):
        data.from_csv(write(tmp_path / "short.csv", "a,b,y\n1,2,0\n1,2\n"), target="y")
    with pytest.raises(ValueError, match=r"column 'a', line 2: 'nan' is not a finite number"):
        data.from_csv(write(tmp_path / "nan.csv", "a,y\nnan,0\n1,1\n"), target="y")
    with pytest.raises(ValueError, match=r"column 'y', line 3: the target is empty"):
        data.from_csv(write(tmp_path / "empty.csv", "a,y\n1,0\n2,\n"), target="y")
    with pytest.raises(ValueError, match=r"task='regression' needs numbers"):
        data.from_csv(flowers, target="kind", task="regression")
    with pytest.raises(ValueError, match="unknown task 'classify'"):
        data.from_csv(flowers, target="kind", task="classify")
    with pytest.raises(FileNotFoundError, match="no CSV file"):
        data.from_csv(tmp_path / "missing.csv", target="y")


def test_csv_features_by_name_or_by_position(tmp_path):
    with_header = write(tmp_path / "h.csv", "b,y,a\n1,0,2\n3,1,4\n")
    np.testing.assert_array_equal(files.csv_features(with_header, ["a", "b"]), [[2, 1], [4, 3]])
    np.testing.assert_array_equal(files.csv_features(with_header, ["a"]), [[2], [4]])
    plain = write(tmp_path / "p.csv", "1,2\n3,4\n")
    np.testing.assert_array_equal(files.csv_features(plain), [[1, 2], [3, 4]])
    np.testing.assert_array_equal(files.csv_features(plain, ["a", "b"]), [[1, 2], [3, 4]])
    with pytest.raises(ValueError, match=r"expected 3 columns \('a', 'b', 'c'\), got 2 values"):
        files.csv_features(plain, ["a", "b", "c"])
    with pytest.raises(ValueError, match="no column 'c'"):
        files.csv_features(with_header, ["c"])


def save(path, pixels, mode):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(pixels, np.uint8), mode).save(path)


@pytest.fixture
def shapes(tmp_path):
    """Grey PNGs of two classes: 'dark' images of value 40, 'light' of value 200, 6x10."""
    root = tmp_path / "shapes"
    for i in range(5):
        save(root / "light" / f"{i}.png", np.full((6, 10), 200), "L")
        save(root / "dark" / f"{i}.png", np.full((6, 10), 40), "L")
    (root / "dark" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    return root


def test_image_folder_classes_sizes_and_values(shapes):
    splits = data.from_image_folder(shapes, image_size=(4, 8))
    info = splits.info
    assert info.class_names == ("dark", "light")
    assert info.input_shape == (4, 8, 1) and info.extra["channels"] == 1
    parts = [splits.train, splits.validation, splits.test]
    assert sum(len(p) for p in parts) == 10
    for part in parts:
        assert part.x.dtype == np.float32 and part.x.shape[1:] == (4, 8, 1)
        # a uniform image stays uniform when resized: 40/255 for dark (0), 200/255 for light
        expected = np.where(part.y == 0, 40 / 255, 200 / 255)
        np.testing.assert_allclose(part.x.reshape(len(part), -1).max(1), expected, rtol=1e-6)
        np.testing.assert_allclose(part.x.reshape(len(part), -1).min(1), expected, rtol=1e-6)


def test_colour_images_give_three_channels_in_rgb_order(tmp_path):
    root = tmp_path / "colours"
    for i in range(3):
        save(root / "red" / f"{i}.png", np.tile([250, 10, 0], (5, 5, 1)), "RGB")
        save(root / "blue" / f"{i}.png", np.tile([0, 20, 240], (5, 5, 1)), "RGB")
    splits = data.from_image_folder(root, image_size=5)
    assert splits.info.input_shape == (5, 5, 3)
    assert splits.info.class_names == ("blue", "red")
    x = np.concatenate([splits.train.x, splits.validation.x, splits.test.x])
    y = np.concatenate([splits.train.y, splits.validation.y, splits.test.y])
    np.testing.assert_allclose(x[y == 1][:, 2, 2], np.tile([250, 10, 0], (3, 1)) / 255, rtol=1e-6)
    np.testing.assert_allclose(x[y == 0][:, 0, 0], np.tile([0, 20, 240], (3, 1)) / 255, rtol=1e-6)
    grey = data.from_image_folder(root, image_size=5, channels=1)
    assert grey.info.input_shape == (5, 5, 1)


def test_matplotlib_images_read_back(tmp_path):
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / "m" / name).mkdir(parents=True)
        for i in range(3):
            plt.imsave(tmp_path / "m" / name / f"{i}.png", rng.random((8, 8)), cmap="gray")
    splits = data.from_image_folder(tmp_path / "m", image_size=8)
    assert splits.info.input_shape == (8, 8, 3)  # imsave writes RGBA
    x = splits.train.x
    assert 0 <= x.min() and x.max() <= 1
    np.testing.assert_allclose(x[..., 0], x[..., 1])  # grey colour map: equal channels


def test_image_folder_errors(tmp_path, shapes):
    with pytest.raises(NotADirectoryError, match="no image folder"):
        data.from_image_folder(tmp_path / "nowhere")
    (tmp_path / "flat").mkdir()
    save(tmp_path / "flat" / "x.png", np.zeros((2, 2)), "L")
    with pytest.raises(ValueError, match="expected one folder per class"):
        data.from_image_folder(tmp_path / "flat")
    (shapes / "empty").mkdir()
    with pytest.raises(ValueError, match=r"shapes/empty: no image files"):
        data.from_image_folder(shapes)
    (shapes / "empty").rmdir()
    (shapes / "light" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"cannot read image .*broken\.png"):
        data.from_image_folder(shapes)
    (shapes / "light" / "broken.png").unlink()
    with pytest.raises(ValueError, match=r"folder 'light' is not one of the classes \['dark'\]"):
        data.from_image_folder(shapes, classes=["dark"])
    with pytest.raises(ValueError, match="image_size: expected a positive int"):
        data.from_image_folder(shapes, image_size=0)
    with pytest.raises(ValueError, match="channels: expected 1"):
        data.from_image_folder(shapes, channels=2)
