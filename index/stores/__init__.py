"""Search backends behind small base classes; one backend per file."""
from __future__ import annotations

import os
from pathlib import Path

from .base import (
    Filter,
    LexicalStore,
    PassageRecord,
    PassageStore,
    SearchResults,
    StoreError,
    VectorStore,
)
from .bm25_stats import BM25Stats
from .bm25_store import BM25Store
from .faiss_store import FaissStore
from .memory_store import MemoryPassageStore

__all__ = [
    "BM25Stats",
    "BM25Store",
    "FaissStore",
    "Filter",
    "LexicalStore",
    "MemoryPassageStore",
    "PassageRecord",
    "PassageStore",
    "SearchResults",
    "StoreError",
    "VectorStore",
    "open_passage_store",
]


def open_passage_store(spec: str | None = None, model: str = "", dim: int | None = None, **kwargs) -> PassageStore:
    """Open the PassageStore named by a configuration string.

    Args:
        spec: ``memory`` (in process), ``memory:DIR`` (in process, persisted in DIR),
            ``milvus:./wenda.db`` (embedded milvus-lite) or ``milvus://host:19530`` (server);
            None reads ``WENDA_STORE`` (default ``memory``).
        model: Embedding model id the store must have been built with.
        dim: Expected vector dimension.
        **kwargs: Backend options (e.g. ``name``, ``index_type``, ``timeout`` for Milvus).
    """
    spec = spec or os.environ.get("WENDA_STORE") or "memory"
    if spec == "memory" or spec.startswith("memory:"):
        directory = spec[len("memory:"):] or None
        return MemoryPassageStore(model, dim, Path(directory) if directory else None, **kwargs)
    if spec.startswith("milvus:"):
        from .milvus_store import MilvusPassageStore  # pymilvus only when asked for

        return MilvusPassageStore(spec, model, dim, **kwargs)
    raise StoreError(f"{spec}: unknown store (memory, memory:DIR, milvus:./file.db, milvus://host:port)")
