"""Near-duplicate guard: a candidate too close to a trace already chosen is skipped.

Two tests, either one rejects: the cosine similarity of the (unit) embeddings is at least the
threshold (0.97 by default: paraphrases with the same wording and placeholders, not merely the
same intent), or the normalised texts are identical (NFKC, case-folded, every run of
non-alphanumerics read as one space). A rejected candidate is replaced by the next one of its
stratum; the count of distinct rejected traces is reported.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalize_text(text: str | None) -> str:
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text or "").casefold()).strip()


class DuplicateGuard:
    """Tracks, for every row, its highest cosine similarity to any chosen trace (``closeness``):
    the duplicate test reads it, and the pools use it to offer the most novel candidate."""

    def __init__(self, vectors: np.ndarray | None, texts: list[str] | None, threshold: float):
        self._vectors = vectors
        self._threshold = threshold
        self._normalized = None if texts is None else [normalize_text(t) for t in texts]
        self._chosen_texts: set[str] = set()
        n = len(vectors) if vectors is not None else 0
        self.closeness = np.full(n, -1.0, dtype=np.float32) if vectors is not None else None
        # Zero rows (no text to embed) are offered after every embedded candidate of a bucket:
        # a trace without payload cannot be read by an annotator, and has no novelty to judge.
        self._no_vector = None if vectors is None else ~np.any(vectors != 0, axis=1)
        self.rejected: set[int] = set()

    def novelty_order(self, rows: list[int]) -> np.ndarray | None:
        """Sort key for candidates, most novel first; None without embeddings."""
        if self.closeness is None:
            return None
        return np.where(self._no_vector[rows], np.inf, self.closeness[rows])

    def is_duplicate(self, row: int) -> bool:
        if self._normalized is not None:
            text = self._normalized[row]
            # An empty text (metadata-only trace) says nothing about duplication.
            if text and text in self._chosen_texts:
                self.rejected.add(row)
                return True
        if self.closeness is not None and self.closeness[row] >= self._threshold:
            self.rejected.add(row)
            return True
        return False

    def add(self, row: int) -> None:
        if self.closeness is not None:
            np.maximum(self.closeness, self._vectors @ self._vectors[row], out=self.closeness)
        if self._normalized is not None and self._normalized[row]:
            self._chosen_texts.add(self._normalized[row])
