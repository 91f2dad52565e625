"""A deterministic, model-free embedder for fast tests of index mechanics (not of retrieval quality)."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from index.embed import Embedder


class FakeEmbedder(Embedder):
    """Hash-of-character-bigrams vectors; counts how many texts it embedded."""

    def __init__(self, model_id: str = "fake-bigram-64", dim: int = 64, delay: float = 0.0,
                 marker: Path | None = None) -> None:
        super().__init__(model=model_id)
        self._dim = dim
        self.delay = delay
        self.marker = marker
        self.embedded = 0

    @property
    def weights_sha256(self) -> str:
        return hashlib.sha256(self.model_name.encode()).hexdigest()

    @property
    def dim(self) -> int:
        return self._dim

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self._dim, np.float32)
        for i in range(len(text) - 1):
            h = int.from_bytes(hashlib.md5(text[i:i + 2].encode()).digest()[:4], "little")
            v[h % self._dim] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def _encode(self, texts, prefix, batch_size, progress):
        out = []
        for t in texts:
            if self.marker is not None:
                self.marker.write_text(str(self.embedded))
            if self.delay:
                time.sleep(self.delay)
            out.append(self._vec(t))
            self.embedded += 1
        return np.array(out, np.float32).reshape(len(texts), self._dim)
