"""The default PassageStore: read-only views on an index directory's FAISS, bm25s and sentence files.

The builder writes those files (``index/builder.py``); this adapter only searches them, so the
default path keeps the in-process speed and exact scores it had before the seam existed. Filters
become boolean row masks pushed down into each search (k stays small under a filter).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import Filter, PassageRecord, PassageStore, SearchResults, SparseWeights
from .bm25_store import BM25Store
from .faiss_store import FaissStore


class LocalPassageStore(PassageStore):
    """Search over the files :func:`index.builder.load_index` already holds in memory.

    Args:
        ids: Passage ids, row i = passage i of the catalog.
        doc_ids: Document id of each row.
        years: Year of each row (0 when unknown).
        faiss: Passage vectors' FAISS index (row i = passage i).
        bm25: bm25s index over the same rows.
        sentence_rows: Passage row of each sentence vector.
        sentence_vectors: (m, dim) sentence embeddings.
        model: Embedding model id.
    """

    kind = "local"

    def __init__(self, ids: Sequence[str], doc_ids: Sequence[str], years: Sequence[int], faiss: FaissStore, bm25: BM25Store,
                 sentence_rows: np.ndarray, sentence_vectors: np.ndarray, model: str = "") -> None:
        super().__init__(model, bm25.k1, bm25.b)
        self.ids = list(ids)
        self._doc_ids = np.asarray(list(doc_ids), dtype=object)
        self._years = np.asarray(list(years), dtype=np.int64)
        self.faiss, self.bm25 = faiss, bm25
        self._sent_rows = np.asarray(sentence_rows, np.int64)
        self._sent_vectors = sentence_vectors
        self.dim = faiss.dim or None

    def mask(self, where: Filter | None) -> np.ndarray | None:
        """Boolean row mask of a filter (None: every row)."""
        return None if where is None else where.mask(self._doc_ids, self._years)

    def _results(self, rows_per_query: list[np.ndarray], scores_per_query: list[np.ndarray]) -> SearchResults:
        ids = self.ids
        return SearchResults([[ids[r] for r in np.asarray(rows).tolist()] for rows in rows_per_query],
                             [np.asarray(s, np.float32) for s in scores_per_query])

    # ---- reads ---------------------------------------------------------------------------------
    def count(self) -> int:
        return len(self.ids)

    def _search(self, queries: np.ndarray, k: int, where: Filter | None) -> SearchResults:
        scores, rows = self.faiss.search(queries, k, allowed=self.mask(where))
        keep = [r >= 0 for r in rows]
        return self._results([r[m] for r, m in zip(rows, keep)], [s[m] for s, m in zip(scores, keep)])

    def _sentence_search(self, queries: np.ndarray, k: int, where: Filter | None) -> SearchResults:
        """Passages by their best sentence: one matrix product over all sentence vectors.

        ``eval channels`` measured it faster than a single-query FAISS flat search of the same
        vectors (BLAS gemv vs faiss's per-query path); the scatter-max and top-k cost less than
        the product itself.
        """
        allowed = self.mask(where)
        rows_out, scores_out = [], []
        sims = self._sent_vectors @ queries.T
        for j in range(len(queries)):
            best = np.full(len(self.ids), -np.inf, np.float32)
            np.maximum.at(best, self._sent_rows, sims[:, j])
            if allowed is not None:
                best[~allowed] = -np.inf
            kk = min(k, len(best))
            if kk == 0:
                rows_out.append(np.zeros(0, np.int64))
                scores_out.append(np.zeros(0, np.float32))
                continue
            top = np.argpartition(-best, kk - 1)[:kk]
            top = top[np.argsort(-best[top], kind="stable")]
            top = top[np.isfinite(best[top])]
            rows_out.append(top)
            scores_out.append(best[top])
        return self._results(rows_out, scores_out)

    def bm25_search(self, query_tokens: Sequence[str], k: int, where: Filter | None = None) -> SearchResults:
        """bm25s top-k (the lucene score, the scale :meth:`PassageStore.bm25_search` returns)."""
        if k <= 0 or (where is not None and where.matches_nothing):
            return SearchResults.empty(1)
        scores, rows = self.bm25.search(list(query_tokens), k, allowed=self.mask(where))
        return self._results([rows], [scores])

    def _lexical(self, queries: list[dict[int, float]], k: int, where: Filter | None) -> SearchResults:
        raise NotImplementedError("the local store scores BM25 from tokens (bm25_search), not sparse weights")

    def lexical_search(self, weights: SparseWeights | Sequence[SparseWeights], k: int, where: Filter | None = None) -> SearchResults:
        raise NotImplementedError("the local store scores BM25 from tokens (bm25_search), not sparse weights")

    # ---- writes: the builder rewrites the index directory instead ----------------------------------
    def _read_only(self, *_args, **_kwargs):
        raise NotImplementedError("the local store is read-only: index/builder.py rewrites the index directory")

    def upsert(self, records: Sequence[PassageRecord]) -> int:
        return self._read_only()

    def delete(self, ids: Sequence[str] | None = None, doc_ids: Sequence[str] | None = None) -> int:
        return self._read_only()

    _write = _fetch_tf = _fetch_tf_of_docs = _remove = _save_stats = stage = promote = _read_only
