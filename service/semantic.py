"""A semantic view of questions: sentences as weighted averages of word vectors.

Pure Python and numpy (no Flask). The matcher's other views compare characters and words
literally, so a citizen who says 掏钱 where the knowledge says 收费, or 对簿公堂 where it says
行政诉讼, shares nothing with the entry that answers. Word vectors trained on a large
general corpus place such words near each other. Here a text is the smooth-inverse-
frequency weighted mean of its words' vectors (common words count little), and two texts
are as close as the cosine of their means.

The vectors are the word2vec vectors (125,796 words, 100 dimensions, trained on Chinese
Wikipedia) that the ``synonyms`` package (MIT licence) ships as ``data/words.vector``; the
package is a dependency for this file only and its code is never imported. They are read
once per process (about 0.6 s), only the words the tokenizer can produce (jieba's dictionary
words and single characters), and kept as float16.
"""
from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

# Smooth inverse frequency: a word of corpus probability p weighs SIF_A / (SIF_A + p).
SIF_A = 1e-3
# A word the vectors do not hold is read through its characters, which count for less.
CHAR_FALLBACK_WEIGHT = 0.5

_LOCK = threading.Lock()
_LOADED: dict[str, "WordVectors"] = {}


def vectors_file() -> Path | None:
    """Where the installed ``synonyms`` distribution keeps its word vectors (not imported)."""
    spec = importlib.util.find_spec("synonyms")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / "words.vector"
        if path.is_file():
            return path
    return None


class WordVectors:
    """Unit-length word vectors by word."""

    def __init__(self, words: Sequence[str], matrix: np.ndarray):
        self.row = {w: i for i, w in enumerate(words)}
        self.matrix = matrix
        self.dim = int(matrix.shape[1]) if matrix.ndim == 2 else 0

    @classmethod
    def read(cls, path: Path, keep: Callable[[str], bool] | None = None) -> "WordVectors":
        """Parse a word2vec binary file (a header line, then ``word vector`` records), read
        in chunks and straight into float16 rows, keeping the words ``keep`` accepts (the
        ones the tokenizer can produce), so reading costs little more than what is kept."""
        with path.open("rb") as fh:
            count, dim = (int(x) for x in fh.readline().split())
            size = 4 * dim
            words: list[str] = []
            matrix = np.empty((count, dim), dtype=np.float16)
            buf, pos = b"", 0
            for _ in range(count):
                while True:
                    space = buf.find(b" ", pos)
                    if space != -1 and len(buf) >= space + 1 + size:
                        break
                    chunk = fh.read(1 << 20)
                    if not chunk:
                        raise ValueError(f"{path}: truncated word vectors")
                    buf, pos = buf[pos:] + chunk, 0
                word = buf[pos:space].decode("utf-8", "replace").strip()
                if word and (keep is None or keep(word)):
                    vec = np.frombuffer(buf, dtype=np.float32, count=dim, offset=space + 1)
                    norm = float(np.sqrt(vec @ vec))
                    matrix[len(words)] = vec / norm if norm > 0 else vec
                    words.append(word)
                pos = space + 1 + size
        return cls(words, matrix[:len(words)].copy())

    def get(self, word: str) -> np.ndarray | None:
        i = self.row.get(word)
        return None if i is None else self.matrix[i].astype(np.float32)


def adopt_vectors(words: Sequence[str], matrix: np.ndarray) -> None:
    """Use these as the process's word vectors (read from an index snapshot), unless some
    were read already."""
    path = vectors_file()
    if path is not None:
        with _LOCK:
            _LOADED.setdefault(str(path), WordVectors(words, matrix))


def shared_vectors(keep: Callable[[str], bool] | None = None) -> WordVectors | None:
    """The process's word vectors, read on first use (with the first caller's ``keep``);
    None if the package is missing."""
    path = vectors_file()
    if path is None:
        return None
    key = str(path)
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = WordVectors.read(path, keep)
        return _LOADED[key]


class SentenceEncoder:
    """Texts (as tokens) to unit vectors; ``probability(word)`` is its corpus frequency."""

    def __init__(self, vectors: WordVectors, probability: Callable[[str], float | None],
                 ignore: Iterable[str] = ()):
        self.vectors = vectors
        self.probability = probability
        self.ignore = frozenset(ignore)
        self._cache: dict[str, tuple[np.ndarray, float] | None] = {}

    def _word(self, token: str) -> tuple[np.ndarray, float] | None:
        hit = self._cache.get(token, False)
        if hit is not False:
            return hit  # type: ignore[return-value]
        result: tuple[np.ndarray, float] | None = None
        if token not in self.ignore and not token.isdigit():
            vec = self.vectors.get(token)
            scale = 1.0
            if vec is None and len(token) > 1:
                parts = [v for v in (self.vectors.get(ch) for ch in token) if v is not None]
                if parts:
                    vec = np.mean(parts, axis=0)
                    scale = CHAR_FALLBACK_WEIGHT
            if vec is not None:
                p = self.probability(token)
                weight = SIF_A / (SIF_A + p) if p else 1.0
                result = (vec, weight * scale)
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[token] = result
        return result

    def encode(self, tokens: Iterable[str]) -> np.ndarray | None:
        """The unit-length weighted mean of the tokens' vectors, or None if none is known."""
        total = None
        for tok in tokens:
            hit = self._word(tok)
            if hit is None:
                continue
            total = hit[0] * hit[1] if total is None else total + hit[0] * hit[1]
        if total is None:
            return None
        norm = float(np.linalg.norm(total))
        return total / norm if norm > 0 else None

    def encode_many(self, texts: Iterable[Iterable[str]]) -> np.ndarray:
        """One row per text (zeros where no word is known)."""
        rows = [self.encode(t) for t in texts]
        out = np.zeros((len(rows), self.vectors.dim), dtype=np.float32)
        for i, r in enumerate(rows):
            if r is not None:
                out[i] = r
        return out


def corpus_probability(freq: dict[str, int], total: float) -> Callable[[str], float | None]:
    """A word's probability in jieba's corpus counts (None if it has none)."""
    def probability(word: str) -> float | None:
        f = freq.get(word)
        return f / total if f else None
    return probability


def best_similarity(query: np.ndarray | None, rows: np.ndarray) -> float:
    """The highest cosine between a query vector and the rows (0 without a query)."""
    if query is None or rows.size == 0:
        return 0.0
    return max(0.0, float(np.max(rows @ query)))


__all__ = ["WordVectors", "SentenceEncoder", "shared_vectors", "vectors_file", "corpus_probability",
           "best_similarity"]
