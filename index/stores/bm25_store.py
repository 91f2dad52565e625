"""BM25 backend (bm25s) over jieba tokens; saved as bm25s' JSON/NumPy files, no pickle."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .base import LexicalStore

log = logging.getLogger(__name__)

BM25_DIR = "bm25"


class BM25Store(LexicalStore):
    """Okapi BM25 with bm25s.

    Args:
        k1: Term-frequency saturation.
        b: Length normalisation.
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._bm25 = None
        self._vocab: dict[str, int] = {}
        self._n = 0

    def index(self, corpus_tokens: list[list[str]]) -> None:
        import bm25s

        self._n = len(corpus_tokens)
        vocab: dict[str, int] = {}
        ids = [[vocab.setdefault(t, len(vocab)) for t in doc] for doc in corpus_tokens]
        # bm25s needs at least one token overall; an empty corpus keeps an empty scorer.
        if not vocab:
            self._bm25, self._vocab = None, {}
            return
        model = bm25s.BM25(k1=self.k1, b=self.b)
        model.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
        self._bm25, self._vocab = model, vocab

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        if self._bm25 is None:
            return np.zeros(self._n, np.float32)
        ids = [self._vocab[t] for t in query_tokens if t in self._vocab]
        if not ids:
            return np.zeros(self._n, np.float32)
        return np.asarray(self._bm25.get_scores(ids), dtype=np.float32)

    @property
    def size(self) -> int:
        return self._n

    def save(self, directory: Path) -> None:
        import json

        out = Path(directory) / BM25_DIR
        out.mkdir(parents=True, exist_ok=True)
        if self._bm25 is not None:
            self._bm25.save(str(out))
        (out / "wenda_vocab.json").write_text(
            json.dumps({"n": self._n, "k1": self.k1, "b": self.b, "vocab": self._vocab}, ensure_ascii=False),
            encoding="utf-8",
        )

    @classmethod
    def load(cls, directory: Path) -> BM25Store:
        import json

        import bm25s

        src = Path(directory) / BM25_DIR
        try:
            meta = json.loads((src / "wenda_vocab.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"BM25 index in {src} is missing or corrupt ({exc})") from exc
        store = cls(k1=meta["k1"], b=meta["b"])
        store._n, store._vocab = int(meta["n"]), meta["vocab"]
        if store._vocab:
            try:
                store._bm25 = bm25s.BM25.load(str(src), mmap=False)
            except (OSError, ValueError, KeyError) as exc:
                raise ValueError(f"BM25 index in {src} is missing or corrupt ({exc})") from exc
        return store
