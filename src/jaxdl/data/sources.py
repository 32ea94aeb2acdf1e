"""Data sets that need no download: scikit-learn's digits, and sets generated from a seed.

``load(name)`` returns :class:`Splits` (train / validation / test) split with stratification,
with features scaled by statistics of the training split alone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from jaxdl._checks import lookup
from jaxdl.data.dataset import ArrayDataset, DatasetInfo, Splits
from jaxdl.data.sampling import stratified_split
from jaxdl.data.transforms import SCALERS


def _digits(seed: int, image: bool = False) -> tuple[np.ndarray, np.ndarray, DatasetInfo]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.data.astype(np.float32)
    shape = (64,)
    if image:
        x, shape = x.reshape(-1, 8, 8, 1), (8, 8, 1)
    info = DatasetInfo(
        "digits",
        10,
        shape,
        tuple(str(c) for c in range(10)),
        description="1797 handwritten digits, 8x8 grey levels 0-16 (UCI, via scikit-learn)",
    )
    return x, bunch.target.astype(np.int32), info


def _xor(seed: int, n: int = 400, margin: float = 0.1):
    """Points in the four quadrants of [-1, 1]^2, kept ``margin`` off the axes; label = sign XOR."""
    rng = np.random.default_rng(seed)
    magnitude = rng.uniform(margin, 1.0, size=(n, 2))
    x = magnitude * rng.choice([-1.0, 1.0], size=(n, 2))
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(np.int32)
    info = DatasetInfo(
        "xor",
        2,
        (2,),
        ("same sign", "opposite sign"),
        description=f"{n} points, label = XOR of the coordinates' signs",
    )
    return x.astype(np.float32), y, info


def _moons(seed: int, n: int = 1000, noise: float = 0.15):
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=n, noise=noise, random_state=seed)
    info = DatasetInfo(
        "moons",
        2,
        (2,),
        ("upper", "lower"),
        description=f"{n} points on two interleaving half circles, noise {noise}",
    )
    return x.astype(np.float32), y.astype(np.int32), info


def _spirals(seed: int, n: int = 1000, noise: float = 0.2, turns: float = 1.5):
    """Two interleaved Archimedean spirals of ``n / 2`` points each."""
    rng = np.random.default_rng(seed)
    half = n // 2
    t = np.sqrt(rng.uniform(0.0, 1.0, half)) * turns * 2 * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1)
    x = np.concatenate([arm, -arm]) + rng.normal(0.0, noise, size=(2 * half, 2))
    y = np.r_[np.zeros(half), np.ones(half)].astype(np.int32)
    info = DatasetInfo(
        "spirals",
        2,
        (2,),
        ("arm 0", "arm 1"),
        description=f"{2 * half} points on two interleaved spirals, noise {noise}",
    )
    return x.astype(np.float32), y, info


EMBEDDED: dict[str, Callable] = {
    "digits": _digits,
    "xor": _xor,
    "moons": _moons,
    "spirals": _spirals,
}


def names() -> list[str]:
    """Names that :func:`load` accepts."""
    return sorted(EMBEDDED)


def load(
    name: str,
    *,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.65, 0.15, 0.2),
    scaling: str | None = "standard",
    **options,
) -> Splits:
    """Load the data set ``name`` split into train / validation / test.

    Args:
      name: one of :func:`names` ("digits", "xor", "moons", "spirals").
      seed: fixes the generated points and the split.
      fractions: sizes of train, validation and test; the split is stratified by class.
      scaling: "standard" (zero mean, unit variance per feature), "minmax" ([0, 1]) or None;
        fitted on the training split only and applied to all three.
      options: passed to the generator, e.g. ``n=``, ``noise=``, or ``image=True`` for digits
        as (8, 8, 1) images.

    Returns:
      :class:`Splits` with NumPy float32 ``x`` of shape (N, *info.input_shape) and int32 ``y``
      of shape (N,).
    """
    make = lookup("data set", name, EMBEDDED)
    x, y, info = make(seed, **options)
    train, validation, test = stratified_split(y, fractions, seed=seed)
    if scaling is not None:
        scaler = lookup("scaling", scaling, SCALERS).fit(x[train])
        x = scaler(x)
    data = ArrayDataset(x, y)
    return Splits(data.subset(train), data.subset(validation), data.subset(test), info)
