"""Feature re-ranking of the top fused hits.

Score = w · features, with features per hit: dense cosine, BM25 (normalised to the best
candidate), idf-weighted coverage of the question's content words, year match, figure cue
(a 多少/几/how-many question wants a passage with a figure), and the fused RRF score.
Weights live in the corpus's ``fitted.json`` (see :mod:`qa.profile`), fitted on the fit split of the
project's gold set with ``python -m eval fit`` (never on the test split, CMRC dev or XQuAD).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from index.textproc import NUMBER_RE, normalize

from .retrieval import HybridRetriever, QueryInfo
from .types import Hit

FEATURES = ("dense", "sent", "bm25", "coverage", "year", "figure", "fused")

_NUMBER_Q = re.compile(r"多少|(?<!哪)几[个项所家条座次年万亿]?|多大|多高|多长|多远|比例|占比|增长|增速|百分之|率|规模|how many|how much|what percentage|what share|number of|how big|how large|how long|how (?:far|old|tall|high|deep|wide|heavy)|what (?:total )?(?:area|size|scale)|\brate\b|\bratios?\b|\bgrowth\b|percentage|proportion|cost|price", re.I)
_TIME_Q = re.compile(r"何时|什么时候|哪一年|哪年|几月|哪天|日期|时间|when|what year|which year|what date", re.I)
_PERSON_Q = re.compile(r"谁|哪位|姓名|who|whom|whose", re.I)
_EXPLAIN_Q = re.compile(r"指的是|是指|什么意思|含义|意味着|为什么|为何|如何|怎样|怎么|哪些措施|什么措施|哪些举措|什么举措|措施|举措|意义|why|how (?!many|much|long|big|large)|what measures|what steps|in what way", re.I)
# English: "which" + a plural noun within three words ("which districts", "which of the projects"), not a verb
_LIST_Q = re.compile(r"哪些|哪几|有什么|包括|分别|\bwhich (?:[\w'\"“”‘’-]+ ){0,2}?[\w-]+s\b(?<!\bdoes)(?<!\bwas)(?<!\bhas)(?<!\bis)|what are|\blist\b", re.I)


# Fused (RRF) score a passage needs before its year may put it first: more than one channel found it
# (one channel alone gives at most its weight's share, about a third).
YEAR_TIER_MIN_FUSED = 0.5

_YEAR_TOKEN = re.compile(r"20\d\d年?")
_UNIT_Q = re.compile(r"(?:多少|(?<!哪)几)(?:个|万|亿)?(元|个|张|人次|人|家|所|项|条|公里|千米|米|亩|平方米|吨|台|座|辆|户|套|场|次|倍|名|件|处|栋|间|床|天|小时|分钟|千瓦|兆瓦|微克|毫克)")


def year_tier(hit: Hit) -> int:
    """2: the document is of the asked year or looks back on it; 1: the passage mentions it; 0: unknown; -1: other."""
    y = hit.features.get("year", 0.0)
    return 2 if y >= 0.8 else 1 if y > 0 else -1 if y < 0 else 0


def content_terms(info: QueryInfo) -> list[str]:
    """Question terms that carry its topic: no years (time is scored apart); none across languages."""
    return [t for t in info.tokens if not _YEAR_TOKEN.fullmatch(t)] if info.same_language else []


def requested_unit(question: str) -> str:
    """The unit a 多少/几 question asks for ("多少公里" → "公里"), or ""."""
    m = _UNIT_Q.search(normalize(question))
    return m.group(1) if m else ""


def unit_pattern(unit: str) -> re.Pattern:
    """A figure (Arabic or Chinese numerals) followed by ``unit``: 2000张, 1.3万余个, 十所."""
    return re.compile(rf"[\d一二三四五六七八九十百千万两]+\s*[万亿]?余?{re.escape(unit)}")


def question_type(question: str) -> str:
    """Coarse answer type: number, time, person, explain, list or entity."""
    q = normalize(question)
    if _TIME_Q.search(q):
        return "time"
    if _NUMBER_Q.search(q):
        return "number"
    if _PERSON_Q.search(q):
        return "person"
    if _EXPLAIN_Q.search(q):
        return "explain"
    if _LIST_Q.search(q):
        return "list"
    return "entity"


@dataclass
class RerankWeights:
    """Linear weights over FEATURES."""

    w: dict[str, float] = field(default_factory=lambda: {
        "dense": 1.0, "sent": 1.0, "bm25": 0.5, "coverage": 1.0, "year": 0.3, "figure": 0.15, "fused": 1.0,
    })
    # Cross-lingual questions (English on a Chinese collection): lexical features come from feedback
    # terms, so they get their own weights.
    w_en: dict[str, float] = field(default_factory=lambda: {
        "dense": 0.0, "sent": 0.5, "bm25": 0.0, "coverage": 0.0, "year": 0.3, "figure": 0.0, "fused": 3.0,
    })

    @classmethod
    def from_fitted(cls, data: dict | None) -> "RerankWeights":
        """Weights from fitted parameters (:func:`qa.profile.load_fitted`); the defaults for None."""
        if not data:
            return cls()
        out = cls({k: float(data["weights"].get(k, 0.0)) for k in FEATURES})
        if "weights_en" in data:
            out.w_en = {k: float(data["weights_en"].get(k, 0.0)) for k in FEATURES}
        return out

    def for_query(self, same_language: bool) -> dict[str, float]:
        """The weight set for a question in the collection's language (``w``) or a cross-lingual one."""
        return self.w if same_language else self.w_en


class Reranker:
    """Re-rank hits with a linear model over cheap, explainable features."""

    def __init__(self, retriever: HybridRetriever, weights: RerankWeights | None = None) -> None:
        self.retriever = retriever
        self.weights = weights or RerankWeights()
        self._rows = retriever.row_of

    def features(self, info: QueryInfo, hits: list[Hit], qtype: str) -> None:
        """Fill ``hit.features`` in place."""
        index = self.retriever.index
        rows = self._rows
        terms = content_terms(info)
        best_bm25 = max((h.channels["bm25"].score for h in hits if "bm25" in h.channels), default=0.0) or 1.0
        for h in hits:
            row = rows[h.passage.id]
            f = h.features
            f["dense"] = float(index.vectors[row] @ info.vector) if info.vector is not None else 0.0
            f["sent"] = h.channels["sent"].score if "sent" in h.channels else f["dense"]
            f["bm25"] = h.channels["bm25"].score / best_bm25 if "bm25" in h.channels else 0.0
            f["coverage"] = self.retriever.coverage(terms, row)
            f["figure"] = 1.0 if qtype in ("number",) and NUMBER_RE.search(h.passage.text) and re.search(r"\d", h.passage.text) else 0.0
            f.setdefault("year", 0.0)
            f.setdefault("fused", h.score)

    def rerank(self, info: QueryInfo, hits: list[Hit], qtype: str) -> list[Hit]:
        """Hits sorted by the linear score (``hit.score`` is replaced by it)."""
        if not hits:
            return hits
        self.features(info, hits, qtype)
        w = self.weights.for_query(info.same_language)
        for h in hits:
            h.score = float(sum(w.get(k, 0.0) * h.features.get(k, 0.0) for k in FEATURES))
        if info.years and any(h.features.get("year", 0.0) >= 1.0 for h in hits):
            # The question names a year that some document is about: the year decides first
            # (a 2025 target must not be answered from the 2021 report), relevance second; but only
            # among passages the channels agree on, so that a document merely dated that year (an
            # unrelated upload whose year was guessed) does not jump ahead of the one that answers.
            def tier(h: Hit) -> int:
                t = year_tier(h)
                return t if h.features.get("fused", 0.0) >= YEAR_TIER_MIN_FUSED else min(t, 0)
            return sorted(hits, key=lambda h: (-tier(h), -h.score))
        return sorted(hits, key=lambda h: -h.score)


def score_matrix(hits: list[Hit]) -> np.ndarray:
    """Feature matrix (len(hits), len(FEATURES)) for weight fitting."""
    return np.array([[h.features.get(k, 0.0) for k in FEATURES] for h in hits], dtype=np.float64)
