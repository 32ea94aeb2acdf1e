"""Splitting data sets so that every split keeps the class proportions of the whole."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split


def stratified_split(
    labels,
    fractions: tuple[float, ...] = (0.65, 0.15, 0.2),
    seed: int = 0,
    stratify: bool = True,
) -> list[np.ndarray]:
    """Split ``range(len(labels))`` into index arrays of the given fractions (summing to 1).

    With ``stratify=True`` each split holds every class in the proportion of the whole, to
    within one example per class. The result depends only on ``labels``, ``fractions`` and
    ``seed``.
    """
    labels = np.asarray(labels)
    if not np.isclose(sum(fractions), 1.0) or min(fractions) <= 0:
        raise ValueError(f"fractions must be positive and sum to 1, got {fractions}")
    remaining = np.arange(len(labels))
    splits, left = [], 1.0
    for i, fraction in enumerate(fractions[:-1]):
        take = fraction / left
        first, remaining = train_test_split(
            remaining,
            train_size=take,
            random_state=seed + i,
            stratify=labels[remaining] if stratify else None,
        )
        splits.append(np.sort(first))
        left -= fraction
    splits.append(np.sort(remaining))
    return splits
