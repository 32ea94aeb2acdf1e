"""Words to token ids: a lower-case word tokenizer and a vocabulary built on a training split.

Id 0 is padding and id 1 stands for every word outside the vocabulary; the other ids go to
the training split's most frequent words, ties broken alphabetically, so the same texts
always give the same vocabulary.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

PAD, UNKNOWN = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_MARKUP = re.compile(r"<[^>]*>")  # IMDB reviews hold "<br />" line breaks


def tokenize(text: str | bytes) -> list[str]:
    """Lower-case words of ``text`` (markup tags dropped): "Don't<br />stop!" -> ["don't",
    "stop"]."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return _WORD.findall(_MARKUP.sub(" ", str(text).lower()))


@dataclass(frozen=True)
class Vocabulary:
    """``tokens[i]`` is the word of id ``i``; ``tokens[0]`` is padding, ``tokens[1]`` unknown."""

    tokens: tuple[str, ...]

    @classmethod
    def build(cls, texts: Iterable, size: int = 20000, min_count: int = 1) -> Vocabulary:
        """The ``size - 2`` most frequent words of ``texts`` seen at least ``min_count`` times."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 3:
            raise ValueError(f"vocabulary size: expected an int >= 3, got {size!r}")
        counts = Counter(word for text in texts for word in tokenize(text))
        kept = (w for w, c in counts.items() if c >= min_count)
        ranked = sorted(kept, key=lambda w: (-counts[w], w))
        return cls((PAD, UNKNOWN, *ranked[: size - 2]))

    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        shown = ", ".join(map(repr, self.tokens[:5]))
        return f"Vocabulary({len(self)} ids: {shown}{', ...' if len(self) > 5 else ''})"

    @functools.cached_property
    def ids(self) -> dict[str, int]:
        """{word: id}, built on first use."""
        return {w: i for i, w in enumerate(self.tokens)}

    def encode(self, texts: Iterable, max_len: int) -> np.ndarray:
        """(N, max_len) int32 ids of each text's first ``max_len`` words, 0-padded at the end."""
        texts = list(texts)
        out = np.zeros((len(texts), max_len), np.int32)
        ids = self.ids
        for row, text in enumerate(texts):
            words = tokenize(text)[:max_len]
            out[row, : len(words)] = [ids.get(w, 1) for w in words]
        return out

    def decode(self, ids) -> str:
        """The words of ``ids`` (padding left out), joined by spaces."""
        return " ".join(self.tokens[i] for i in np.asarray(ids).ravel() if i != 0)
