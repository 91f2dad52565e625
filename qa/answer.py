"""Extractive answering: pick the supporting sentence, extract a short answer, summarise by MMR.

Nothing is generated: every string shown is a slice of a cited passage, so offsets can be
checked and nothing can be invented.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from index.chunking import split_sentences
from index.textproc import NUMBER_RE, has_cjk, normalize, tokenize

from .retrieval import HybridRetriever, QueryInfo
from .types import Citation, Hit, SummarySentence

_FIGURE = re.compile(
    r"(?:约|近|超过|超|逾|达到|达)?\d+(?:[.,]\d+)*\s*(?:%|‰|余?[万亿千百]?余?(?:元|个|张|人次|人|家|所|项|条|公里|千米|米|亩|平方米|吨|台|座|辆|户|套|场|次|倍|名|件|处|栋|间|床|位|天|小时|分钟|千瓦|兆瓦)?)(?:以上|左右|以内)?"
)
_DATE = re.compile(r"\d{4}年\d{1,2}月\d{1,2}日|\d{4}年\d{1,2}月|\d{1,2}月\d{1,2}日|\d{4}年(?:底|前|内)?|年底前|年内")
_CLAUSE = re.compile(r"[^，,；;：:。！？!?\n]+")
_PROPER = re.compile(r"[\u4e00-\u9fff]{2,4}")


@dataclass
class Sentence:
    """A candidate sentence inside a hit's passage (offsets relative to the passage text)."""

    hit: Hit
    start: int
    end: int
    score: float
    tokens: frozenset[str]

    @property
    def text(self) -> str:
        return self.hit.passage.text[self.start:self.end]


def passage_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans of a passage, splitting also at line breaks (bullets, grouped lines)."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for line in text.split("\n"):
        for s, e in split_sentences(line, pos):
            # Trim leading bullets/whitespace so the span is the sentence itself.
            while s < e and text[s] in "◆□●•■ \t":
                s += 1
            if e > s:
                spans.append((s, e))
        pos += len(line) + 1
    return spans


def rank_sentences(info: QueryInfo, hits: list[Hit], qtype: str, retriever: HybridRetriever, top: int = 3) -> list[Sentence]:
    """Score sentences of the top hits: idf-weighted overlap with the question + passage score + type cue."""
    idf = retriever.idf
    terms = info.tokens if info.has_cjk else info.prf_terms + [t for t in info.tokens if any(c.isdigit() for c in t)]
    denom = sum(idf.get(t, 1.0) for t in terms) or 1.0
    best_hit = hits[0].score if hits else 1.0
    out: list[Sentence] = []
    for rank, h in enumerate(hits[:top]):
        text = h.passage.text
        for s, e in passage_sentences(text):
            sent = text[s:e]
            toks = frozenset(tokenize(sent))
            overlap = sum(idf.get(t, 1.0) for t in terms if t in toks) / denom
            # Substring matches catch terms jieba segments differently in question and sentence.
            norm = normalize(sent)
            partial = sum(idf.get(t, 1.0) for t in terms if t not in toks and len(t) >= 2 and t in norm) / denom
            score = overlap + 0.7 * partial + 0.6 * (h.score / best_hit if best_hit else 0) - 0.05 * rank
            if qtype == "number" and _FIGURE.search(sent) and re.search(r"\d", sent):
                score += 0.25
            if qtype == "time" and _DATE.search(sent):
                score += 0.25
            if len(sent) < 6:
                score -= 0.5
            out.append(Sentence(h, s, e, score, toks))
    out.sort(key=lambda x: -x.score)
    return out


def _term_positions(sent: str, terms: list[str]) -> list[int]:
    norm = normalize(sent)
    pos = []
    for t in terms:
        for m in re.finditer(re.escape(t), norm):
            pos.extend([m.start(), m.end()])
    return pos


def extract_short(sentence: str, info: QueryInfo, qtype: str) -> tuple[str, int]:
    """The short answer inside a sentence and its offset there, or ("", -1).

    number → the figure closest after the question's terms; time → a date; person → a name;
    entity → the clause that best matches the question; explain/list → none (sentence/summary).
    """
    terms = [t for t in (info.tokens if info.has_cjk else info.prf_terms) if len(t) >= 2]
    anchors = _term_positions(sentence, terms)

    def nearest(cands: list[re.Match]) -> re.Match | None:
        if not cands:
            return None
        if not anchors:
            return cands[0]
        # Figures follow their indicator in Chinese ("新增养老床位2000张"): prefer after an anchor.
        def cost(m: re.Match) -> float:
            after = [m.start() - a for a in anchors if a <= m.start()]
            before = [a - m.end() for a in anchors if a >= m.end()]
            return min([d for d in after] + [2.5 * d for d in before] or [1e9])
        return min(cands, key=cost)

    if qtype == "number":
        cands = [m for m in _FIGURE.finditer(sentence) if re.search(r"\d", m.group()) and not re.fullmatch(r"20\d\d年?", m.group())]
        m = nearest(cands)
        if m:
            return m.group().strip(), m.start()
    if qtype == "time":
        m = nearest(list(_DATE.finditer(sentence)))
        if m:
            return m.group(), m.start()
    if qtype == "person":
        import jieba.posseg as pseg

        pos = 0
        for word, flag in pseg.cut(sentence):
            if flag == "nr" and len(word) >= 2 and word not in info.text:
                return word, sentence.find(word, pos)
            pos += len(word)
    if qtype in ("entity", "person"):
        best, best_score = None, 0.0
        qn = normalize(info.text)
        for m in _CLAUSE.finditer(sentence):
            clause = m.group().strip()
            if not clause or len(clause) > 30:
                continue
            c_tokens = set(tokenize(clause))
            new = [t for t in c_tokens if t not in qn]
            shared = len(c_tokens) - len(new)
            if new and shared and shared > best_score:
                best, best_score = m, shared
        if best is not None:
            return best.group().strip(), best.start() + (len(best.group()) - len(best.group().lstrip()))
    return "", -1


def mmr_summary(sentences: list[Sentence], k: int = 3, lam: float = 0.7) -> list[Sentence]:
    """Up to k sentences by maximal marginal relevance (relevance vs token overlap with those chosen)."""
    chosen: list[Sentence] = []
    pool = [s for s in sentences if len(s.text) >= 8]
    top = max((s.score for s in pool), default=1.0) or 1.0
    while pool and len(chosen) < k:
        def mmr(s: Sentence) -> float:
            sim = max((len(s.tokens & c.tokens) / (len(s.tokens | c.tokens) or 1) for c in chosen), default=0.0)
            return lam * s.score / top - (1 - lam) * sim
        best = max(pool, key=mmr)
        if chosen and best.score < 0.5 * top:
            break
        chosen.append(best)
        pool.remove(best)
    # Keep document order within a passage so the summary reads naturally.
    return chosen


def make_citation(n: int, hit: Hit, start: int, end: int) -> Citation:
    """Citation of ``hit``'s passage with the supporting span [start, end) of its text."""
    p = hit.passage
    return Citation(
        n=n, passage_id=p.id, doc_id=p.doc_id, title=p.title, date=p.date, section=p.section,
        text=p.text, start=start, end=end, doc_start=p.start, score=hit.score,
    )


def not_found_message(question: str) -> str:
    """The refusal in the question's language."""
    if has_cjk(question):
        return "资料中没有找到这个问题的答案。下面是最相关的段落，供参考。"
    return "The documents don't say. The closest passages are listed below as related reading."


def sentence_of(text: str, pos: int) -> tuple[int, int]:
    """Span of the sentence of ``text`` containing offset ``pos``."""
    for s, e in passage_sentences(text):
        if s <= pos < e:
            return s, e
    return 0, len(text)


def short_offsets(citation: Citation, short: str) -> int:
    """Offset of the short answer inside the cited passage text (-1 if absent)."""
    return citation.text.find(short, citation.start) if short else -1


__all__ = [
    "Sentence", "rank_sentences", "extract_short", "mmr_summary", "make_citation",
    "not_found_message", "passage_sentences", "sentence_of", "short_offsets", "NUMBER_RE",
]
