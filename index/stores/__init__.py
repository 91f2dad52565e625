"""Search backends behind small base classes; one backend per file."""
from .base import LexicalStore, VectorStore
from .bm25_store import BM25Store
from .faiss_store import FaissStore

__all__ = ["VectorStore", "LexicalStore", "FaissStore", "BM25Store"]
