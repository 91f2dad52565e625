"""In-process PassageStore on numpy: exact inner product, the reference (brute-force truth) and the default."""
from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import (
    Filter,
    PassageRecord,
    PassageStore,
    SearchResults,
    StoreError,
)
from .bm25_stats import BM25Stats

log = logging.getLogger(__name__)

STORE_DIR = "passage_store"
FORMAT = 1


@dataclass
class _Row:
    doc_id: str
    year: int
    vector: np.ndarray
    sparse: dict[int, float]
    tf: dict[str, int] | None
    sentences: np.ndarray | None


@dataclass
class _Matrices:
    """Dense views of the rows, rebuilt after each write."""

    ids: list[str]
    doc_ids: np.ndarray
    years: np.ndarray
    vectors: np.ndarray
    sparse: object  # scipy.sparse.csr_matrix (n, n_terms)
    sent_vectors: np.ndarray
    sent_starts: np.ndarray  # first sentence row of each passage that has sentences
    sent_rows: np.ndarray  # passage row of each entry of sent_starts


def _top(scores: np.ndarray, k: int, positive: bool = False) -> np.ndarray:
    """Rows of the k best finite scores, best first (ties: lower row first)."""
    ok = np.isfinite(scores) & (scores > 0 if positive else True)
    rows = np.flatnonzero(ok)
    if rows.size > k:
        part = np.argpartition(-scores[rows], k - 1)[:k]
        kth = scores[rows[part]].min()
        rows = rows[scores[rows] >= kth]  # keep every tie at the boundary, then cut after sorting
    rows = rows[np.lexsort((rows, -scores[rows]))]
    return rows[:k]


class MemoryPassageStore(PassageStore):
    """PassageStore held in this process; optionally persisted in ``directory/passage_store``.

    Args:
        model: Embedding model id (checked against a persisted store).
        dim: Expected vector dimension (None: taken from the first upsert or the persisted store).
        directory: Where to persist after every write (None: memory only).
        k1: BM25 term-frequency saturation.
        b: BM25 length normalisation.
    """

    kind = "memory"

    def __init__(
        self, model: str = "", dim: int | None = None, directory: Path | str | None = None, k1: float = 1.2, b: float = 0.75
    ) -> None:
        super().__init__(model, k1, b)
        self.dim = dim
        self.directory = Path(directory) if directory is not None else None
        self._rows: dict[str, _Row] = {}
        self._mats: _Matrices | None = None
        if self.directory is not None and (self.directory / STORE_DIR / "store.json").exists():
            self._load(self.directory / STORE_DIR, dim)

    # ---- reads ---------------------------------------------------------------------------------
    def count(self) -> int:
        return len(self._rows)

    def _matrices(self) -> _Matrices:
        if self._mats is None:
            from scipy.sparse import csr_matrix

            ids = list(self._rows)
            rows = list(self._rows.values())
            dim = self.dim or 0
            vectors = np.stack([r.vector for r in rows]) if rows else np.zeros((0, dim), np.float32)
            indptr, indices, data = [0], [], []
            for r in rows:
                indices.extend(r.sparse)
                data.extend(r.sparse.values())
                indptr.append(len(indices))
            n_terms = max(len(self.stats.tid), max(indices, default=-1) + 1)
            sparse = csr_matrix((np.asarray(data, np.float32), np.asarray(indices, np.int64), np.asarray(indptr)), shape=(len(rows), n_terms))
            blocks, starts, owners, at = [], [], [], 0
            for i, r in enumerate(rows):
                if r.sentences is not None and len(r.sentences):
                    blocks.append(r.sentences)
                    starts.append(at)
                    owners.append(i)
                    at += len(r.sentences)
            self._mats = _Matrices(
                ids,
                np.asarray([r.doc_id for r in rows], dtype=object),
                np.asarray([r.year for r in rows], dtype=np.int64),
                np.ascontiguousarray(vectors, dtype=np.float32),
                sparse,
                np.concatenate(blocks).astype(np.float32) if blocks else np.zeros((0, dim), np.float32),
                np.asarray(starts, np.int64),
                np.asarray(owners, np.int64),
            )
        return self._mats

    def _mask(self, m: _Matrices, where: Filter | None) -> np.ndarray | None:
        return None if where is None else where.mask(m.doc_ids, m.years)

    def _results(self, m: _Matrices, scores: np.ndarray, k: int, where: Filter | None, positive: bool) -> SearchResults:
        """Top-k per column of ``scores`` (n_rows, n_queries)."""
        mask = self._mask(m, where)
        if mask is not None:
            scores = np.where(mask[:, None], scores, -np.inf)
        ids, out = [], []
        for j in range(scores.shape[1]):
            rows = _top(scores[:, j], k, positive)
            ids.append([m.ids[r] for r in rows])
            out.append(scores[rows, j].astype(np.float32))
        return SearchResults(ids, out)

    def _search(self, queries: np.ndarray, k: int, where: Filter | None) -> SearchResults:
        m = self._matrices()
        return self._results(m, m.vectors @ queries.T, k, where, positive=False)

    def _sentence_search(self, queries: np.ndarray, k: int, where: Filter | None) -> SearchResults:
        m = self._matrices()
        best = np.full((len(m.ids), len(queries)), -np.inf, np.float32)
        if len(m.sent_starts):
            best[m.sent_rows] = np.maximum.reduceat(m.sent_vectors @ queries.T, m.sent_starts, axis=0)
        return self._results(m, best, k, where, positive=False)

    def _lexical(self, queries: list[dict[int, float]], k: int, where: Filter | None) -> SearchResults:
        m = self._matrices()
        q = np.zeros((m.sparse.shape[1], len(queries)), np.float32)
        for j, w in enumerate(queries):
            for t, v in w.items():
                if 0 <= t < q.shape[0]:
                    q[t, j] = v
        return self._results(m, np.asarray(m.sparse @ q), k, where, positive=True)

    # ---- writes --------------------------------------------------------------------------------
    def _fetch_tf(self, ids: list[str]) -> dict[str, dict[str, int] | None]:
        return {i: self._rows[i].tf for i in ids if i in self._rows}

    def _fetch_tf_of_docs(self, doc_ids: list[str]) -> dict[str, dict[str, int] | None]:
        docs = set(doc_ids)
        return {i: r.tf for i, r in self._rows.items() if r.doc_id in docs}

    def _write(self, records: Sequence[PassageRecord], sparse: list[dict[int, float]], tfs: list[dict[str, int] | None],
               existing: set[str]) -> None:
        for r, sp, tf in zip(records, sparse, tfs):
            sent = None if r.sentence_vectors is None else np.asarray(r.sentence_vectors, np.float32).reshape(-1, self.dim)
            self._rows.pop(r.id, None)  # a replaced passage moves to the end, as in an append-only engine
            self._rows[r.id] = _Row(str(r.doc_id), int(r.year), np.asarray(r.vector, np.float32).reshape(-1), sp, tf, sent)
        self._mats = None

    def _remove(self, ids: list[str]) -> int:
        n = sum(self._rows.pop(i, None) is not None for i in ids)
        self._mats = None
        return n

    def _save_stats(self) -> None:
        self.stats.dirty.clear()
        if self.directory is not None:
            self.save()

    # ---- versions and persistence ------------------------------------------------------------------
    def stage(self) -> MemoryPassageStore:
        return MemoryPassageStore(self.model, None, None, self.stats.k1, self.stats.b)

    def promote(self, staged: PassageStore, drop_old: bool = True) -> None:
        if not isinstance(staged, MemoryPassageStore):
            raise TypeError("promote() needs a store from this store's stage()")
        self._rows, self.stats, self._mats = staged._rows, staged.stats, None
        self.dim = staged.dim or self.dim
        if self.directory is not None:
            self.save()

    def save(self, directory: Path | str | None = None) -> None:
        """Write the store to ``directory/passage_store`` (default: its own directory), replacing it whole."""
        root = Path(directory) if directory is not None else self.directory
        if root is None:
            raise ValueError("save() needs a directory")
        final, tmp, old = root / STORE_DIR, root / (STORE_DIR + ".new"), root / (STORE_DIR + ".old")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        rows = list(self._rows.items())
        meta = {
            "format": FORMAT,
            "model": self.model,
            "dim": self.dim,
            "stats": self.stats.to_dict(),
            "rows": [
                {"id": i, "doc_id": r.doc_id, "year": r.year, "t": list(r.sparse), "w": list(r.sparse.values()), "tf": r.tf,
                 "n_sent": None if r.sentences is None else len(r.sentences)}
                for i, r in rows
            ],
        }
        dim = self.dim or 0
        np.save(tmp / "vectors.npy", np.stack([r.vector for _, r in rows]) if rows else np.zeros((0, dim), np.float32))
        sent = [r.sentences for _, r in rows if r.sentences is not None]
        np.save(tmp / "sentences.npy", np.concatenate(sent) if sent else np.zeros((0, dim), np.float32))
        (tmp / "store.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)

    def _load(self, src: Path, dim: int | None) -> None:
        try:
            meta = json.loads((src / "store.json").read_text(encoding="utf-8"))
            vectors = np.load(src / "vectors.npy", allow_pickle=False)
            sentences = np.load(src / "sentences.npy", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise StoreError(f"passage store in {src} is missing or corrupt ({exc})") from exc
        if (self.model and meta["model"] != self.model) or (dim is not None and meta["dim"] not in (None, dim)):
            raise StoreError(
                f"passage store in {src} was built with model {meta['model']!r} (dim {meta['dim']}), "
                f"not {self.model!r} (dim {dim}); rebuild the index"
            )
        self.model, self.dim = meta["model"] or self.model, meta["dim"]
        self.stats = BM25Stats.from_dict(meta["stats"])
        at = 0
        for i, row in enumerate(meta["rows"]):
            n_sent = row["n_sent"]
            sent = None if n_sent is None else sentences[at : at + n_sent]
            at += n_sent or 0
            self._rows[row["id"]] = _Row(row["doc_id"], row["year"], vectors[i], dict(zip(row["t"], row["w"])), row["tf"], sent)
        log.info("loaded %d passages from %s", len(self._rows), src)
