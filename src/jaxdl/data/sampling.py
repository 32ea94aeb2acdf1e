"""Splitting data sets so that every split keeps the class proportions of the whole."""

from __future__ import annotations

import numpy as np

from jaxdl._checks import as_array, check_class_labels, check_fractions, check_int, check_seed


def _split_counts(n: int, fractions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Integers summing to ``n``, each within one of ``n * fraction`` (largest remainder,
    ties broken at random so that many small classes do not all favour the same split)."""
    exact = n * fractions
    counts = np.floor(exact).astype(int)
    remainder = exact - counts
    order = np.lexsort((rng.random(len(fractions)), -remainder))
    counts[order[: n - counts.sum()]] += 1
    return counts


def stratified_split(
    labels,
    fractions: tuple[float, ...] = (0.65, 0.15, 0.2),
    seed: int = 0,
    stratify: bool = True,
) -> list[np.ndarray]:
    """Split ``range(len(labels))`` into sorted index arrays of the given fractions (sum 1).

    With ``stratify=True`` each class is shuffled and cut on its own, so every split holds
    each class in the proportion of the whole to within one example. The result depends only
    on ``labels``, ``fractions`` and ``seed``. ``labels``: integer class labels (N,); with
    ``stratify=False`` any targets (N, ...) (only their number counts).
    """
    if stratify:
        labels = check_class_labels(labels)
    else:
        labels = as_array(labels, "labels")
        if labels.ndim == 0 or len(labels) == 0:
            raise ValueError(f"labels: expected at least one target (N, ...), got {labels.shape}")
    fractions = check_fractions(fractions)
    rng = np.random.default_rng(check_seed(seed))
    groups = (
        [np.flatnonzero(labels == c) for c in np.unique(labels)]
        if stratify
        else [np.arange(len(labels))]
    )
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for members in groups:
        members = rng.permutation(members)
        bounds = np.cumsum(_split_counts(len(members), fractions, rng))[:-1]
        for part, chunk in zip(parts, np.split(members, bounds)):
            part.append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def stratified_kfold(labels, k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` pairs of sorted index arrays ``(train, validation)`` for cross-validation.

    Each class is shuffled and dealt into ``k`` folds of sizes within one of each other, so
    every validation fold holds each class in the proportion of the whole to within one
    example; each example is in exactly one validation fold. ``labels``: integer class
    labels (N,).
    """
    labels = check_class_labels(labels)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 2:
        raise ValueError(f"k: expected an int >= 2, got {k!r}")
    if k > len(labels):
        raise ValueError(f"k={k} folds need at least {k} examples, got {len(labels)}")
    fold_of = np.empty(len(labels), np.int64)
    rng = np.random.default_rng(check_seed(seed))
    offset = 0
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        # continue where the last class stopped, so small classes do not all pile into fold 0
        fold_of[members] = (offset + np.arange(len(members))) % k
        offset = (offset + len(members)) % k
    everything = np.arange(len(labels))
    return [(everything[fold_of != f], everything[fold_of == f]) for f in range(k)]


def class_weights(labels, num_classes: int | None = None) -> np.ndarray:
    """ "Balanced" weights per class, ``N / (C * count_c)``: each class then weighs as much
    in a weighted loss as it would if the classes were equally common. (C,) float32; a class
    with no example gets weight 0. ``labels``: integer class labels (N,) in
    [0, num_classes)."""
    labels = check_class_labels(labels)
    if labels.dtype.kind in "US":
        raise TypeError(f"labels: expected integer class labels, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if num_classes is not None:
        num_classes = check_int(num_classes, "num_classes")
    if labels.min() < 0 or (num_classes is not None and labels.max() >= num_classes):
        bound = f"[0, {num_classes})" if num_classes is not None else "[0, C)"
        raise ValueError(
            f"labels: expected class labels in {bound}, got values in "
            f"[{labels.min()}, {labels.max()}]"
        )
    counts = np.bincount(labels, minlength=num_classes or 0).astype(np.float64)
    weights = np.where(counts > 0, len(labels) / (len(counts) * np.maximum(counts, 1)), 0.0)
    return weights.astype(np.float32)


def oversample(labels, seed: int = 0) -> np.ndarray:
    """Indices that repeat the examples of every class up to the largest class's count
    (each example of a class at least ``max // count`` times, the rest drawn without
    replacement), shuffled. ``labels``: integer class labels (N,)."""
    labels = check_class_labels(labels)
    rng = np.random.default_rng(check_seed(seed))
    classes, counts = np.unique(labels, return_counts=True)
    target = counts.max()
    parts = []
    for c, count in zip(classes, counts):
        members = np.flatnonzero(labels == c)
        repeats, rest = divmod(target, count)
        parts += [np.tile(members, repeats), rng.choice(members, rest, replace=False)]
    return rng.permutation(np.concatenate(parts))


def undersample(labels, seed: int = 0) -> np.ndarray:
    """Indices keeping, from every class, as many examples as the smallest class has (drawn
    without replacement), shuffled. ``labels``: integer class labels (N,)."""
    labels = check_class_labels(labels)
    rng = np.random.default_rng(check_seed(seed))
    classes, counts = np.unique(labels, return_counts=True)
    parts = [rng.choice(np.flatnonzero(labels == c), counts.min(), replace=False) for c in classes]
    return rng.permutation(np.concatenate(parts))
