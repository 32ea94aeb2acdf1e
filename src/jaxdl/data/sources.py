"""Data sets that need no download: scikit-learn's digits, and sets generated from a seed.

``load(name)`` returns :class:`Splits` (train / validation / test) split with stratification,
with features scaled by statistics of the training split alone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from jaxdl._checks import check_fractions, check_seed, lookup
from jaxdl.data.dataset import ArrayDataset, DatasetInfo, Splits
from jaxdl.data.hf_source import is_hf_name
from jaxdl.data.sampling import stratified_split
from jaxdl.data.sequences import adding, pydoc_text, reverse
from jaxdl.data.tfds_source import TFDS_SETS, load_tfds
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

    # scikit-learn takes seeds below 2**32; smaller seeds keep their points
    x, y = make_moons(n_samples=n, noise=noise, random_state=seed % 2**32)
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
    "adding": adding,
    "reverse": reverse,
    "pydoc_text": pydoc_text,
}


def names() -> list[str]:
    """Names that :func:`load` accepts: embedded sets, then TFDS sets (and any Hugging Face
    set as "hf:NAME", not listed)."""
    return sorted(EMBEDDED) + list(TFDS_SETS)


def load(
    name: str,
    *,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.65, 0.15, 0.2),
    scaling: str | None = "standard",
    data_dir: str | None = None,
    download: bool = False,
    **options,
) -> Splits:
    """Load the data set ``name`` split into train / validation / test.

    Args:
      name: one of :func:`names`: "digits", "xor", "moons", "spirals" (classification),
        "adding" (regression), "reverse" (a label per position), "pydoc_text" (characters);
        a TFDS set; or "hf:NAME", a Hugging Face set.
      seed: fixes the generated points and the split.
      fractions: sizes of train, validation and test; the split is stratified by class.
      scaling: "standard" (zero mean, unit variance per feature), "minmax" ([0, 1]) or None;
        fitted on the training split only and applied to all three (not to token ids or
        the adding problem's markers).
      data_dir: for TFDS sets ("mnist", "fashion_mnist", "cifar10", "cifar100", "emnist",
        "imdb_reviews"), the folder of the prepared files (default None: TFDS's own).
        TFDS images come as float32 NHWC in [0, 1]; ``imdb_reviews`` as (N, max_len)
        int32 word ids of a vocabulary built on the training split (``info.extra``);
        ``fractions`` and ``scaling`` apply to embedded sets (TFDS keeps its test split and
        holds out a tenth of its train split for validation).
        "hf:NAME" loads a Hugging Face set (a Hub id or a local folder of its parquet
        files, through ``datasets``: :func:`jaxdl.data.hf_source.load_hf`), the same way:
        images from its Image feature, labels and class names from its ClassLabel, a text
        column as word ids; ``data_dir`` is then the ``datasets`` cache folder.
      download: for TFDS and Hugging Face sets, fetch and prepare the files first (default
        False: they must be prepared or cached already; nothing is fetched).
      options: passed to the generator, e.g. ``n=``, ``noise=``, or ``image=True`` for digits
        as (8, 8, 1) images; ``vocab_size=`` and ``max_len=`` for ``imdb_reviews``.

    Returns:
      :class:`Splits` with NumPy ``x`` of shape (N, *info.input_shape) (float32, or int32
      token ids) and targets ``y``: (N,) int32 labels for classification, (N, 1) float32 for
      "adding", (N, T) int32 for "reverse" and "pydoc_text".

    Example:
      >>> splits = jaxdl.data.load("digits", image=True)  # ships with scikit-learn
      >>> splits.train.x.shape, splits.validation.x.shape, splits.test.x.shape
      ((1168, 8, 8, 1), (269, 8, 8, 1), (360, 8, 8, 1))
      >>> splits.train.y.dtype, splits.info.num_classes, splits.info.input_shape
      (dtype('int32'), 10, (8, 8, 1))
    """
    if is_hf_name(name):
        from jaxdl.data.hf_source import load_hf  # imports Hugging Face datasets

        return load_hf(name, seed=seed, data_dir=data_dir, download=download, **options)
    if isinstance(name, str) and name.lower() in TFDS_SETS:
        seed = check_seed(seed)
        return load_tfds(name.lower(), seed=seed, data_dir=data_dir, download=download, **options)
    make = lookup("data set", name, {**EMBEDDED, **{n: None for n in TFDS_SETS}})
    seed = check_seed(seed)
    check_fractions(fractions, 3)
    x, y, info = make(seed, **options)
    if info.task == "language_model":  # hold out the end of the text, not random windows
        bounds = np.cumsum(np.round(np.array(fractions[:-1]) * len(x)).astype(int))
        train, validation, test = np.split(np.arange(len(x)), bounds)
    else:
        stratify = info.task == "classification" and y.ndim == 1
        train, validation, test = stratified_split(y, fractions, seed=seed, stratify=stratify)
    if scaling is not None and info.scalable:
        scaler = lookup("scaling", scaling, SCALERS).fit(x[train])
        x = scaler(x)
    data = ArrayDataset(x, y)
    return Splits(data.subset(train), data.subset(validation), data.subset(test), info)
