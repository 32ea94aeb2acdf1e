"""Pictures of a run, written to PNG: training curves, learning-rate schedules, confusion
matrices, ROC and PR curves, image grids, decision boundaries, graphs and search results.

Figures are drawn on matplotlib's ``Figure`` directly, not through pyplot, so no display is
needed and the caller's matplotlib backend is left as it was.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def _save(fig: Figure, path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return os.fspath(path)


def plot_history(history: Mapping[str, Sequence[float]], path: str | os.PathLike) -> str:
    """One panel per metric (loss first), training and ``val_`` curves over epochs."""
    names = [k for k in history if not k.startswith("val_")]
    names.sort(key=lambda k: (k != "loss", k))
    fig = Figure(figsize=(4.5 * len(names), 3.5))
    axes = fig.subplots(1, len(names), squeeze=False)
    for ax, name in zip(axes[0], names):
        epochs = np.arange(1, len(history[name]) + 1)
        setting = name == "lr" or name.startswith("lr/")  # the run's, not the data's
        ax.plot(epochs, history[name], label="learning rate" if setting else "train")
        if f"val_{name}" in history:
            # validation_freq > 1: the validated epochs are every k-th, ending at a multiple
            val = history[f"val_{name}"]
            every = max(1, len(history[name]) // max(1, len(val)))
            ax.plot(np.arange(1, len(val) + 1) * every, val, label="validation")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name)
        if (name == "loss" or setting) and min(history[name]) > 0:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def plot_confusion_matrix(
    matrix,
    path: str | os.PathLike,
    class_names: Sequence[str] | None = None,
    normalize: bool = False,
) -> str:
    """Heat map of a (C, C) confusion matrix, rows = true class, with the counts written in."""
    matrix = np.asarray(matrix, dtype=np.float64)
    shown = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1) if normalize else matrix
    n = matrix.shape[0]
    names = list(class_names) if class_names else [str(i) for i in range(n)]
    size = 1.6 + 0.5 * n
    fig = Figure(figsize=(size, size))
    ax = fig.subplots()
    image = ax.imshow(shown, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), names, rotation=45 if n > 10 else 0)
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = shown.max() / 2 if shown.size else 0
    for i in range(n):
        for j in range(n):
            text = f"{shown[i, j]:.2f}" if normalize else f"{int(matrix[i, j])}"
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=8,
                color="white" if shown[i, j] > threshold else "black",
            )
    return _save(fig, path)


def plot_classifier_run(
    folder: str | os.PathLike,
    history: Mapping[str, Sequence[float]],
    y_true,
    predictions,
    class_names: Sequence[str] | None = None,
) -> list[str]:
    """Write ``loss_curve.png`` and ``confusion_matrix.png`` of a classifier into ``folder``.

    y_true: (N,) labels; predictions: (N, C) scores or (N,) labels. Returns the two paths.
    """
    from jaxdl.metrics import confusion_matrix

    os.makedirs(folder, exist_ok=True)
    classes = len(class_names) if class_names else None
    matrix = confusion_matrix(y_true, predictions, classes)
    return [
        plot_history(history, os.path.join(folder, "loss_curve.png")),
        plot_confusion_matrix(matrix, os.path.join(folder, "confusion_matrix.png"), class_names),
    ]


def plot_graph(
    graph,
    path: str | os.PathLike,
    node_colors=None,
    title: str = "",
    marked=None,
    seed: int = 0,
) -> str:
    """Draw one graph (a ``jaxdl.graphs.GraphsTuple``) with a seeded spring layout.

    node_colors: (N,) class ids or values; marked: (N,) bool, nodes drawn with a thick ring
    (e.g. the labelled ones). Needs NetworkX for the layout.
    """
    import networkx as nx

    senders, receivers = np.asarray(graph.senders), np.asarray(graph.receivers)
    n = int(np.sum(graph.n_node))
    layout_graph = nx.Graph()
    layout_graph.add_nodes_from(range(n))
    layout_graph.add_edges_from(zip(senders.tolist(), receivers.tolist()))
    pos = nx.spring_layout(layout_graph, seed=seed)
    xy = np.array([pos[i] for i in range(n)])
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    for s, r in zip(senders, receivers):
        ax.plot(*xy[[s, r]].T, color="0.75", lw=0.8, zorder=1)
    colors = np.zeros(n) if node_colors is None else np.asarray(node_colors)
    widths = 0.5 if marked is None else np.where(np.asarray(marked), 3.0, 0.5)
    ax.scatter(*xy.T, c=colors, cmap="coolwarm", s=160, edgecolors="black", linewidths=widths)
    for i, (x, y) in enumerate(xy):
        ax.text(x, y, str(i), ha="center", va="center", fontsize=6)
    ax.set_title(title)
    ax.set_axis_off()
    return _save(fig, path)


def plot_image_grid(
    images, path: str | os.PathLike, columns: int = 10, title: str = "", row_labels=None
) -> str:
    """Images (N, H, W), (N, H, W, 1) or (N, H, W, 3) with values in [0, 1], ``columns`` per
    row, as one grey (or colour) grid; ``row_labels`` names the rows on the left."""
    images = np.clip(np.asarray(images, np.float32), 0, 1)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    rows = -(-len(images) // columns)
    fig = Figure(figsize=(0.6 * columns + (1.2 if row_labels else 0.2), 0.6 * rows + 0.5))
    axes = fig.subplots(rows, columns, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        if i < len(images):
            ax.imshow(
                images[i],
                cmap="gray" if images.ndim == 3 else None,
                vmin=0,
                vmax=1,
                interpolation="nearest",
            )
    for r, label in enumerate(row_labels or []):
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def plot_schedules(
    schedules: Mapping[str, object], total_steps: int, path: str | os.PathLike
) -> str:
    """Learning rate against step for each named schedule ({name: optax schedule})."""
    steps = np.arange(int(total_steps) + 1)
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    for name, schedule in schedules.items():
        ax.plot(steps, [float(schedule(s)) for s in steps], label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_roc_pr(y_true, scores, path: str | os.PathLike, class_names=None) -> str:
    """ROC and precision-recall curves, one per class (one-vs-rest), with their areas.

    y_true: (N,) labels; scores: (N, C) class scores or (N,) scores of class 1.
    """
    from jaxdl.metrics import pr_auc, precision_recall_curve, roc_auc, roc_curve

    y_true, scores = np.asarray(y_true), np.asarray(scores, np.float64)
    if scores.ndim == 1:
        scores = np.stack([-scores, scores], axis=1)
    classes = range(scores.shape[1]) if scores.shape[1] > 2 else [1]
    names = list(class_names) if class_names else [str(c) for c in range(scores.shape[1])]
    fig = Figure(figsize=(10, 4.2))
    roc_ax, pr_ax = fig.subplots(1, 2)
    for c in classes:
        positive = (y_true == c).astype(np.int32)
        fpr, tpr = roc_curve(positive, scores[:, c])
        precision, recall = precision_recall_curve(positive, scores[:, c])
        roc_ax.plot(fpr, tpr, label=f"{names[c]} ({roc_auc(positive, scores[:, c]):.3f})")
        pr_ax.plot(
            recall,
            precision,
            label=f"{names[c]} ({pr_auc(positive, scores[:, c]):.3f})",
        )
    roc_ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=0.8)
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (AUC)")
    pr_ax.set(xlabel="recall", ylabel="precision", title="precision-recall (AP)")
    for ax in (roc_ax, pr_ax):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right" if ax is roc_ax else "lower left")
    return _save(fig, path)


def plot_decision_boundary(
    predict, x, y, path: str | os.PathLike, resolution: int = 200, title: str = ""
) -> str:
    """Regions of a 2-D classifier and the points over them.

    predict: (M, 2) points -> (M, C) scores or (M,) labels (e.g. ``trainer.predict``);
    x: (N, 2) points; y: (N,) labels.
    """
    x, y = np.asarray(x, np.float32), np.asarray(y)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"x: expected (N, 2) points, got shape {x.shape}")
    low, high = x.min(axis=0), x.max(axis=0)
    margin = 0.1 * (high - low)
    xs = np.linspace(low[0] - margin[0], high[0] + margin[0], resolution)
    ys = np.linspace(low[1] - margin[1], high[1] + margin[1], resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)
    points = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1).astype(np.float32)
    out = np.asarray(predict(points))
    regions = out.argmax(axis=-1) if out.ndim == 2 else out.astype(int)
    fig = Figure(figsize=(5, 4.5))
    ax = fig.subplots()
    classes = int(max(regions.max(), y.max())) + 1
    ax.contourf(
        grid_x,
        grid_y,
        regions.reshape(grid_x.shape),
        levels=np.arange(classes + 1) - 0.5,
        cmap="coolwarm",
        alpha=0.35,
    )
    ax.scatter(x[:, 0], x[:, 1], c=y, cmap="coolwarm", s=10, edgecolors="black", linewidths=0.3)
    ax.set_title(title)
    return _save(fig, path)


def plot_search_results(
    rows: Sequence[Mapping], names: Sequence[str], path: str | os.PathLike, metric: str = "score"
) -> str:
    """Score against each hyperparameter of a search, one panel per hyperparameter: numbers
    on a (log, when they span more than a factor 20) axis, other values as categories."""
    names = list(names) or ["trial"]
    fig = Figure(figsize=(3.6 * len(names), 3.2))
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    scores = np.array([row["score"] for row in rows], np.float64)
    for ax, name in zip(axes, names):
        values = [row.get(name, i) for i, row in enumerate(rows)]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if numeric:
            v = np.asarray(values, np.float64)
            ax.scatter(v, scores, s=18)
            if v.min() > 0 and v.max() / v.min() > 20:
                ax.set_xscale("log")
        else:
            categories = list(dict.fromkeys(str(v) for v in values))
            ax.scatter([categories.index(str(v)) for v in values], scores, s=18)
            ax.set_xticks(range(len(categories)), categories)
        ax.set_xlabel(name)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    return _save(fig, path)
