"""Sequence data sets generated from a seed, and a character corpus that ships with Python.

- ``adding``: the adding problem (Hochreiter & Schmidhuber, 1997): each step holds a value in
  [0, 1] and a marker; exactly two steps are marked, one in each half, and the target is the
  sum of their values. Predicting the mean, 1, scores an MSE of 2/12 = 0.167.
- ``reverse``: random token sequences and their reversal, one target per position.
- ``pydoc_text``: the language reference that ships with CPython (``pydoc_data.topics``,
  about 465,000 characters), as next-character windows.
"""

from __future__ import annotations

import numpy as np

from jaxdl.data.dataset import DatasetInfo


def adding(seed: int, n: int = 10000, length: int = 50):
    """x (n, length, 2) float32 [value, marker]; y (n, 1) float32, the sum of marked values."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(n, length))
    first = rng.integers(0, length // 2, size=n)
    second = rng.integers(length // 2, length, size=n)
    markers = np.zeros((n, length))
    markers[np.arange(n), first] = 1.0
    markers[np.arange(n), second] = 1.0
    x = np.stack([values, markers], axis=-1).astype(np.float32)
    y = (values * markers).sum(axis=1, keepdims=True).astype(np.float32)
    info = DatasetInfo(
        "adding",
        0,
        (length, 2),
        task="regression",
        scalable=False,
        description=f"{n} sequences of {length} steps: sum the two marked values",
    )
    return x, y, info


def reverse(seed: int, n: int = 20000, length: int = 16, vocab: int = 10):
    """x (n, length) int32 tokens in [0, vocab); y (n, length) the same tokens reversed."""
    x = np.random.default_rng(seed).integers(0, vocab, size=(n, length)).astype(np.int32)
    info = DatasetInfo(
        "reverse",
        vocab,
        (length,),
        tuple(str(i) for i in range(vocab)),
        task="sequence",
        scalable=False,
        description=f"{n} sequences of {length} tokens from {vocab}, reversed",
    )
    return x, x[:, ::-1].copy(), info


def python_docs_text() -> str:
    """The text of CPython's language reference topics, in a fixed order."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))


def pydoc_text(seed: int, seq_len: int = 128, text: str | None = None):
    """Next-character windows: x (n, seq_len) int32, y (n, seq_len) the following characters.

    Windows do not overlap and stay in text order, so ``load`` can hold out the end of the
    text. Character ids are assigned from the first 90% of the text (what ``load`` trains
    on); characters seen only later map to id 0, "unknown".
    """
    text = python_docs_text() if text is None else text
    cut = int(0.9 * len(text))
    chars = ["<unk>", *sorted(set(text[:cut]))]
    index = {c: i for i, c in enumerate(chars)}
    ids = np.array([index.get(c, 0) for c in text], np.int32)
    n = (len(ids) - 1) // seq_len
    x = ids[: n * seq_len].reshape(n, seq_len)
    y = ids[1 : n * seq_len + 1].reshape(n, seq_len)
    info = DatasetInfo(
        "pydoc_text",
        len(chars),
        (seq_len,),
        tuple(chars),
        task="language_model",
        scalable=False,
        description=f"{len(text)} characters of CPython's pydoc topics",
    )
    return x, y, info
