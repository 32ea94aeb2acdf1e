"""Pictures of a run, written to PNG.

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
        ax.plot(epochs, history[name], label="train")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], label="validation")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name)
        if name == "loss" and min(history[name]) > 0:
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
