"""Every plot renders a real picture: the size its figure asks for, and not blank."""

import matplotlib.image
import numpy as np
import pytest

import jaxdl
from jaxdl import optim, plotting

DPI = 110  # plotting._save


def picture(path, width_in, height_in):
    """The PNG as an (H, W, 4) array, checked to have the figure's size and real content."""
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == (round(height_in * DPI), round(width_in * DPI)), image.shape
    grey = image[..., :3].mean(axis=-1)
    assert grey.std() > 0.05, "the picture is (nearly) blank"
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 20
    return image


def test_history_and_confusion_matrix(tmp_path):
    history = {"loss": [1.0, 0.5, 0.3], "accuracy": [0.5, 0.8, 0.9]}
    history |= {"val_loss": [1.1, 0.7, 0.6], "val_accuracy": [0.4, 0.7, 0.8]}
    picture(plotting.plot_history(history, tmp_path / "h.png"), 9, 3.5)
    matrix = np.array([[5, 1, 0], [0, 7, 2], [1, 0, 9]])
    picture(plotting.plot_confusion_matrix(matrix, tmp_path / "c.png"), 3.1, 3.1)


def test_schedules(tmp_path):
    schedules = {
        name: optim.make_schedule(name, 0.1, 100) for name in ("constant", "step", "cosine")
    }
    picture(plotting.plot_schedules(schedules, 100, tmp_path / "lr.png"), 6, 3.5)


def test_roc_and_pr_curves(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    scores = rng.normal(size=(300, 3)) + 2.0 * np.eye(3)[y]
    picture(plotting.plot_roc_pr(y, scores, tmp_path / "roc.png"), 10, 4.2)
    picture(plotting.plot_roc_pr(y == 1, scores[:, 1], tmp_path / "roc2.png"), 10, 4.2)


def test_image_grid(tmp_path):
    images = jaxdl.data.load("digits", seed=0, image=True, scaling="minmax").train.x[:20]
    picture(plotting.plot_image_grid(images, tmp_path / "g.png", columns=10), 6.2, 1.7)


def test_decision_boundary_colours_each_side_by_its_class(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (200, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    path = plotting.plot_decision_boundary(
        lambda p: (p[:, 0] > 0).astype(int), x, y, tmp_path / "b.png"
    )
    image = picture(path, 5, 4.5)
    row = image[image.shape[0] // 2, :, :3]
    # away from the axes and the points: the background tint of each half differs
    left, right = row[int(0.2 * len(row))], row[int(0.8 * len(row))]
    assert np.abs(left - right).max() > 0.1
    with pytest.raises(ValueError, match=r"expected \(N, 2\) points"):
        plotting.plot_decision_boundary(lambda p: p, x[:, :1], y, tmp_path / "bad.png")


def test_search_results(tmp_path):
    rows = [
        {"learning_rate": lr, "optimizer": opt, "score": s}
        for lr, opt, s in [(1e-4, "adam", 0.7), (1e-3, "sgd", 0.8), (1e-2, "adam", 0.9)]
    ]
    path = plotting.plot_search_results(rows, ["learning_rate", "optimizer"], tmp_path / "s.png")
    picture(path, 7.2, 3.2)


def test_graph(tmp_path):
    from jaxdl.data.graph_sets import karate_club

    graph, labels = karate_club()
    picture(plotting.plot_graph(graph, tmp_path / "k.png", node_colors=labels), 5.5, 5)
