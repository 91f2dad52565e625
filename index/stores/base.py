"""Base classes for search backends (the seam for external engines such as Milvus, Qdrant or OpenSearch).

Two generations of the seam live here side by side:

* ``VectorStore`` / ``LexicalStore`` (``index``, ``search``, ``save``, ``load``): rows are passage
  positions (0..n-1) in ``passages.jsonl``. The files ``index/builder.py`` writes into every index
  directory (FAISS, bm25s), searched through ``LocalPassageStore``.
* ``PassageStore`` (what ``qa/retrieval.py`` searches): stable string passage ids, incremental ``upsert``/``delete``, top-k ``search``
  and ``lexical_search`` with a :class:`Filter` on doc_id/year, ``count``, an atomic switch to a
  new version (``stage``/``promote``) and the BM25 statistics (:class:`BM25Stats`) kept current on
  every write. BM25 travels as client-side sparse vectors: query weights are idf × query count,
  document weights are the saturated term frequency, so their inner product is the BM25 score
  over Wenda's own jieba tokens (docs/scaling.md, issue 15).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bm25_stats import BM25Stats, term_freqs


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
    def load(cls, directory: Path) -> VectorStore:
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
    def load(cls, directory: Path) -> LexicalStore:
        """Read a store written by :meth:`save`."""


# --------------------------------------------------------------------------------------------------
# PassageStore: stable ids, incremental writes, filters, versions, BM25 statistics.
# --------------------------------------------------------------------------------------------------


SparseWeights = Mapping[str | int, float]
"""Sparse weights ``{token or token_id: weight}``."""


class StoreError(RuntimeError):
    """A store cannot serve: unreachable, built with another model/dimension, or corrupt (one line)."""


@dataclass(frozen=True)
class Filter:
    """Restriction of a search to some documents and/or years; ``None`` means no restriction.

    An empty tuple matches nothing.
    """

    doc_ids: tuple[str, ...] | None = None
    years: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.doc_ids is not None:
            object.__setattr__(self, "doc_ids", tuple(str(d) for d in self.doc_ids))
        if self.years is not None:
            object.__setattr__(self, "years", tuple(int(y) for y in self.years))

    @property
    def matches_nothing(self) -> bool:
        """True when a given list is empty."""
        return self.doc_ids == () or self.years == ()

    def matches(self, doc_id: str, year: int) -> bool:
        """Whether a passage of ``doc_id`` and ``year`` passes the filter."""
        return (self.doc_ids is None or doc_id in self.doc_ids) and (self.years is None or year in self.years)

    def mask(self, doc_ids: np.ndarray, years: np.ndarray) -> np.ndarray | None:
        """Boolean mask over rows with these doc ids (object array) and years (int64); None when nothing is restricted."""
        if self.doc_ids is None and self.years is None:
            return None
        ok = np.ones(len(doc_ids), bool)
        if self.doc_ids is not None:
            ok &= np.isin(doc_ids, np.asarray(self.doc_ids, dtype=object))
        if self.years is not None:
            ok &= np.isin(years, np.asarray(self.years, np.int64))
        return ok


@dataclass
class PassageRecord:
    """One passage as written to a :class:`PassageStore`.

    Attributes:
        id: Stable passage id (``Passage.id``).
        doc_id: Document id (filterable).
        year: Year of the passage's document (filterable; 0 when unknown).
        vector: Passage embedding (dim,), L2-normalised float32.
        tokens: Search tokens of the passage; the store updates its BM25 statistics from them and
            derives the document's BM25 weights (unless ``lexical`` is given).
        lexical: Explicit sparse weights ``{token or token_id: weight}``, used as given (string keys
            get the store's token ids, integer keys are taken as those ids).
        sentence_vectors: Optional (n_sentences, dim) sentence embeddings of the passage.
    """

    id: str
    doc_id: str
    year: int
    vector: np.ndarray
    tokens: list[str] | None = None
    lexical: SparseWeights | None = None
    sentence_vectors: np.ndarray | None = None


@dataclass(frozen=True)
class SearchResults:
    """Top-k hits per query, best first (like bm25s' ``Results``, with passage ids).

    Attributes:
        ids: Passage ids per query (lists may be shorter than k under a filter).
        scores: float32 scores per query, aligned with ``ids``.
    """

    ids: list[list[str]]
    scores: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls, n_queries: int) -> SearchResults:
        """No hits for each of ``n_queries`` queries."""
        return cls([[] for _ in range(n_queries)], [np.zeros(0, np.float32) for _ in range(n_queries)])


class PassageStore(ABC):
    """Passages keyed by stable ids: dense and lexical (sparse) search with doc/year filters.

    Subclasses implement the storage primitives (``_write``, ``_fetch_tf``, ``_remove``,
    ``_search``, ``_lexical``, ``_save_stats``, ``count``, ``stage``, ``promote``); the BM25
    bookkeeping of ``upsert``/``delete`` is shared here so all backends agree.

    Args:
        model: Embedding model id the vectors come from (checked when a store is reopened).
        k1: BM25 term-frequency saturation.
        b: BM25 length normalisation.
    """

    kind: str = "base"

    def __init__(self, model: str = "", k1: float = 1.2, b: float = 0.75) -> None:
        self.model = model
        self.stats = BM25Stats(k1, b)
        self.dim: int | None = None

    # ---- shared verbs -------------------------------------------------------------------------
    def upsert(self, records: Sequence[PassageRecord]) -> int:
        """Insert or replace passages (by id); BM25 statistics follow. Returns the number written.

        Document weights use the statistics after the whole batch, so upsert a full build in one
        call (backends chunk the writes). Later upserts leave earlier passages' weights at the avgdl
        of their own upsert; idf is computed at query time and always current. A rebuild through
        :meth:`stage`/:meth:`promote` refreshes every weight.
        """
        if not records:
            return 0
        ids = [r.id for r in records]
        if len(set(ids)) != len(ids):
            raise ValueError("upsert() got the same passage id twice in one batch")
        dims = {int(np.asarray(r.vector).shape[-1]) for r in records}
        if len(dims) != 1:
            raise ValueError(f"vectors of different dimensions in one batch: {sorted(dims)}")
        self._ensure_dim(dims.pop())
        old = self._fetch_tf(ids)
        for tf in old.values():
            if tf is not None:
                self.stats.remove(tf)
        tfs = [term_freqs(r.tokens) if r.tokens is not None else None for r in records]
        for tf in tfs:
            if tf is not None:
                self.stats.add(tf)
        sparse = []
        for r, tf in zip(records, tfs):
            w = r.lexical if r.lexical is not None else (self.stats.doc_weights(tf) if tf else {})
            sparse.append(self._to_sparse(w, assign=True))
        self._write(records, sparse, tfs, set(old))
        self._save_stats()
        return len(records)

    def delete(self, ids: Sequence[str] | None = None, doc_ids: Sequence[str] | None = None) -> int:
        """Remove passages by id and/or by document; BM25 statistics follow. Returns the number removed."""
        if ids is None and doc_ids is None:
            raise ValueError("delete() needs ids or doc_ids")
        found = self._fetch_tf(list(ids or []))
        if doc_ids:
            found.update(self._fetch_tf_of_docs(list(doc_ids)))
        for tf in found.values():
            if tf is not None:
                self.stats.remove(tf)
        n = self._remove(list(found)) if found else 0
        self._save_stats()
        return n

    def search(self, vectors: np.ndarray, k: int, where: Filter | None = None) -> SearchResults:
        """Top-k passages per query vector by inner product."""
        q = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        if k <= 0 or (where is not None and where.matches_nothing) or self.dim is None:
            return SearchResults.empty(len(q))
        if q.shape[1] != self.dim:
            raise StoreError(f"query vectors have dimension {q.shape[1]}, the store holds {self.dim}")
        return self._search(q, k, where)

    def lexical_search(
        self, weights: SparseWeights | Sequence[SparseWeights], k: int, where: Filter | None = None
    ) -> SearchResults:
        """Top-k passages per sparse query (``{token or token_id: weight}``) by inner product (> 0 only)."""
        queries = [weights] if isinstance(weights, Mapping) else list(weights)
        if k <= 0 or (where is not None and where.matches_nothing):
            return SearchResults.empty(len(queries))
        return self._lexical([self._to_sparse(w, assign=False) for w in queries], k, where)

    def bm25_search(self, query_tokens: Sequence[str], k: int, where: Filter | None = None) -> SearchResults:
        """BM25 top-k for one tokenised query (:meth:`BM25Stats.query_weights` + :meth:`lexical_search`).

        Scores are on bm25s' "lucene" scale (the sparse inner product / (k1 + 1)), so every store
        reports the BM25 score Wenda has always shown.
        """
        res = self.lexical_search(self.stats.query_weights(query_tokens), k, where)
        scale = np.float32(1.0 / (self.stats.k1 + 1.0))
        return SearchResults(res.ids, [s * scale for s in res.scores])

    def sentence_search(self, vectors: np.ndarray, k: int, where: Filter | None = None) -> SearchResults:
        """Top-k passages per query by their best sentence vector (passages without sentences never match)."""
        q = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        if k <= 0 or (where is not None and where.matches_nothing) or self.dim is None:
            return SearchResults.empty(len(q))
        if q.shape[1] != self.dim:
            raise StoreError(f"query vectors have dimension {q.shape[1]}, the store holds {self.dim}")
        return self._sentence_search(q, k, where)

    def _to_sparse(self, weights: SparseWeights, assign: bool) -> dict[int, float]:
        """Map token keys to sparse dimensions (unknown tokens dropped unless ``assign``); zeros dropped."""
        out: dict[int, float] = {}
        for key, w in weights.items():
            if not w:
                continue
            if isinstance(key, str):
                t = self.stats.term_id(key) if assign else self.stats.tid.get(key)
                if t is None:
                    continue
            else:
                t = int(key)
            out[t] = out.get(t, 0.0) + float(w)
        return out

    def _ensure_dim(self, dim: int) -> None:
        """Accept the first dimension, refuse any other."""
        if self.dim is None:
            self.dim = dim
        elif dim != self.dim:
            raise StoreError(f"vectors have dimension {dim}, the store holds {self.dim} (model {self.model!r})")

    def close(self) -> None:
        """Release connections (no-op by default)."""

    # ---- backend primitives ------------------------------------------------------------------
    @abstractmethod
    def count(self) -> int:
        """Number of passages held."""

    @abstractmethod
    def _write(self, records: Sequence[PassageRecord], sparse: list[dict[int, float]], tfs: list[dict[str, int] | None],
               existing: set[str]) -> None:
        """Store the records with their sparse weights and term frequencies (replace by id; ``existing`` ids are held)."""

    @abstractmethod
    def _fetch_tf(self, ids: list[str]) -> dict[str, dict[str, int] | None]:
        """Term frequencies of those ids that exist (None when stored without tokens)."""

    @abstractmethod
    def _fetch_tf_of_docs(self, doc_ids: list[str]) -> dict[str, dict[str, int] | None]:
        """Like :meth:`_fetch_tf` for every passage of the given documents."""

    @abstractmethod
    def _remove(self, ids: list[str]) -> int:
        """Delete the given (existing) ids; return how many were removed."""

    @abstractmethod
    def _search(self, queries: np.ndarray, k: int, where: Filter | None) -> SearchResults:
        """Dense top-k; arguments already validated."""

    @abstractmethod
    def _sentence_search(self, queries: np.ndarray, k: int, where: Filter | None) -> SearchResults:
        """Best-sentence top-k passages; arguments already validated."""

    @abstractmethod
    def _lexical(self, queries: list[dict[int, float]], k: int, where: Filter | None) -> SearchResults:
        """Sparse inner-product top-k (scores > 0 only); arguments already validated."""

    @abstractmethod
    def _save_stats(self) -> None:
        """Persist the changed part of :attr:`stats` (``stats.dirty``) and clear it."""

    @abstractmethod
    def stage(self) -> PassageStore:
        """An empty new version of this store, written to but invisible until :meth:`promote`."""

    @abstractmethod
    def promote(self, staged: PassageStore, drop_old: bool = True) -> None:
        """Atomically make ``staged`` (from :meth:`stage`) the version this store serves."""
