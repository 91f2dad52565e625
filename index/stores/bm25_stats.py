"""BM25 corpus statistics kept current on every store write, so BM25 can travel as sparse vectors
(query weights idf × count, document weights saturated tf; their inner product is the BM25 score)."""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


def term_freqs(tokens: Iterable[str]) -> dict[str, int]:
    """Term frequencies of a token list."""
    return dict(Counter(tokens))


@dataclass
class BM25Stats:
    """Corpus statistics for BM25 as sparse vectors (Lucene idf, Robertson tf saturation).

    ``score(q, d) = Σ_t idf(t)·qtf(t) × tf(t,d)·(k1+1) / (tf(t,d) + k1·(1 − b + b·dl/avgdl))``,
    that is bm25s' "lucene" score × (k1+1). Token ids (``tid``) are assigned on first sight and
    never reused, so sparse vectors stay valid while the vocabulary grows.
    """

    k1: float = 1.2
    b: float = 0.75
    n: int = 0
    total_dl: int = 0
    df: dict[str, int] = field(default_factory=dict)
    tid: dict[str, int] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set, repr=False)

    @property
    def avgdl(self) -> float:
        """Mean passage length in tokens (1.0 for an empty corpus)."""
        return self.total_dl / self.n if self.n and self.total_dl else 1.0

    def term_id(self, token: str) -> int:
        """Sparse dimension of ``token``, assigned if new."""
        t = self.tid.get(token)
        if t is None:
            t = self.tid[token] = len(self.tid)
            self.dirty.add(token)
        return t

    def idf(self, token: str) -> float:
        """Lucene idf ``log(1 + (N − df + 0.5)/(df + 0.5))``; 0 for unseen tokens."""
        df = self.df.get(token, 0)
        return math.log(1.0 + (self.n - df + 0.5) / (df + 0.5)) if df > 0 else 0.0

    def add(self, tf: Mapping[str, int]) -> None:
        """Count one passage with term frequencies ``tf`` in."""
        self.n += 1
        self.total_dl += sum(tf.values())
        for t in tf:
            self.term_id(t)
            self.df[t] = self.df.get(t, 0) + 1
            self.dirty.add(t)

    def remove(self, tf: Mapping[str, int]) -> None:
        """Count one passage with term frequencies ``tf`` out."""
        self.n = max(0, self.n - 1)
        self.total_dl = max(0, self.total_dl - sum(tf.values()))
        for t in tf:
            self.df[t] = max(0, self.df.get(t, 0) - 1)
            self.dirty.add(t)

    def query_weights(self, tokens: Iterable[str]) -> dict[str, float]:
        """BM25 query weights ``{token: idf × count}`` (unknown tokens dropped)."""
        out: dict[str, float] = {}
        for t, c in Counter(tokens).items():
            w = self.idf(t)
            if w > 0:
                out[t] = w * c
        return out

    def doc_weights(self, tokens: Iterable[str] | Mapping[str, int]) -> dict[str, float]:
        """Saturated-tf document weights ``{token: tf(k1+1)/(tf + k1(1 − b + b·dl/avgdl))}``."""
        tf = tokens if isinstance(tokens, Mapping) else term_freqs(tokens)
        dl = sum(tf.values())
        norm = self.k1 * (1.0 - self.b + self.b * dl / self.avgdl)
        return {t: c * (self.k1 + 1.0) / (c + norm) for t, c in tf.items()}

    def to_dict(self) -> dict:
        """JSON-ready form (``dirty`` excluded)."""
        return {"k1": self.k1, "b": self.b, "n": self.n, "total_dl": self.total_dl, "df": self.df, "tid": self.tid}

    @classmethod
    def from_dict(cls, d: Mapping) -> BM25Stats:
        """Inverse of :meth:`to_dict`."""
        return cls(float(d["k1"]), float(d["b"]), int(d["n"]), int(d["total_dl"]), dict(d["df"]), dict(d["tid"]))
