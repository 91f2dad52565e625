"""FAISS backend: exact inner product (flat) for small corpora, HNSW above a size threshold."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .base import VectorStore

log = logging.getLogger(__name__)

FAISS_FILE = "faiss.index"
# Chosen from `python -m eval scale` (docs/scaling.md): flat search is exact, free to build and
# ≈12 ms at 50k, cheaper than an HNSW rebuild on every upload; HNSW (M=32, efC=200) above.
HNSW_THRESHOLD = 200_000


class FaissStore(VectorStore):
    """Inner-product search over normalised vectors with faiss.

    Args:
        kind: "flat", "hnsw" or "auto" (flat below ``HNSW_THRESHOLD`` vectors, HNSW above).
        hnsw_m: HNSW graph degree.
        ef_search: HNSW search breadth.
    """

    def __init__(self, kind: str = "auto", hnsw_m: int = 32, ef_search: int = 128) -> None:
        if kind not in ("auto", "flat", "hnsw"):
            raise ValueError(f"index kind {kind!r} is not one of 'auto', 'flat', 'hnsw'")
        self.kind = kind
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self._index = None

    def index(self, vectors: np.ndarray) -> None:
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError(f"vectors must be 2-d (n, dim), got shape {vectors.shape}")
        kind = self.kind
        if kind == "auto":
            kind = "hnsw" if len(vectors) >= HNSW_THRESHOLD else "flat"
        dim = vectors.shape[1]
        if kind == "flat":
            idx = faiss.IndexFlatIP(dim)
        else:
            idx = faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            idx.hnsw.efConstruction = 200
            idx.hnsw.efSearch = self.ef_search
        if len(vectors):
            idx.add(vectors)
        self.kind = kind
        self._index = idx

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        if self._index is None:
            raise RuntimeError("the store is empty: call index() or load() first")
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if self._index.ntotal == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        k = max(1, min(k, self._index.ntotal))
        if allowed is None:
            return self._index.search(queries, k)
        allowed = np.asarray(allowed, dtype=bool)
        if allowed.shape != (self._index.ntotal,):
            raise ValueError(f"allowed mask has shape {allowed.shape}, expected ({self._index.ntotal},)")
        # faiss filters inside the search (flat: exact; HNSW: the graph walk skips other rows).
        bits = np.packbits(allowed, bitorder="little")  # kept referenced until the search returns
        sel = faiss.IDSelectorBitmap(allowed.size, faiss.swig_ptr(bits))
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(sel=sel, efSearch=max(self.ef_search, k))
        else:
            params = faiss.SearchParameters(sel=sel)
        scores, rows = self._index.search(queries, k, params=params)
        del bits
        return scores, rows

    @property
    def size(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return 0 if self._index is None else int(self._index.d)

    def save(self, directory: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(Path(directory) / FAISS_FILE))

    @classmethod
    def load(cls, directory: Path) -> FaissStore:
        import faiss

        path = Path(directory) / FAISS_FILE
        try:
            idx = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise ValueError(f"{path} is unreadable or truncated ({str(exc).splitlines()[0]})") from exc
        store = cls("hnsw" if "HNSW" in type(idx).__name__ else "flat")
        store._index = idx
        return store
