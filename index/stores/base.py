"""Base classes for search backends (the seam for external engines such as Qdrant or OpenSearch).

Every backend speaks the same verbs: ``index``, ``search``, ``save``, ``load``. Rows are
passage positions (0..n-1) in ``passages.jsonl``; the caller maps them to passages.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np


class VectorStore(ABC):
    """Nearest-neighbour search over L2-normalised vectors by inner product."""

    kind: str = "base"

    @abstractmethod
    def index(self, vectors: np.ndarray) -> None:
        """Replace the store's content with ``vectors`` (n, dim) float32, row i = passage i."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows per query: (scores (q, k), rows (q, k)); rows are -1 where fewer exist.

        ``allowed`` is an optional boolean mask (length ``size``): only those rows may be returned
        (document/year filters are pushed down, so k stays small under a filter).
        """

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write the store's files into ``directory``."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path) -> "VectorStore":
        """Read a store written by :meth:`save`."""

    @property
    @abstractmethod
    def size(self) -> int:
        """Number of vectors held."""


class LexicalStore(ABC):
    """Keyword search over tokenised passages."""

    @abstractmethod
    def index(self, corpus_tokens: list[list[str]]) -> None:
        """Replace the content with tokenised passages, row i = passage i."""

    @abstractmethod
    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """Score of every passage for the query (length n), 0 where no term matches."""

    def search(self, query_tokens: list[str], k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, rows) with positive score, optionally only among ``allowed`` rows (bool mask)."""
        s = self.scores(query_tokens)
        if allowed is not None and s.size:
            s = np.where(allowed, s, 0.0).astype(s.dtype, copy=False)
        if s.size == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        k = min(k, s.size)
        rows = np.argpartition(-s, k - 1)[:k]
        rows = rows[np.argsort(-s[rows], kind="stable")]
        rows = rows[s[rows] > 0]
        return s[rows].astype(np.float32), rows.astype(np.int64)

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write the store's files into ``directory``."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path) -> "LexicalStore":
        """Read a store written by :meth:`save`."""
