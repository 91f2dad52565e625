"""Extractive answering: pick the supporting sentence, extract a short answer, summarise by MMR.

Nothing is generated: every string shown is a slice of a cited passage, so offsets can be
checked and nothing can be invented.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from index.chunking import passage_sentences
from index.textproc import NUMBER_RE, has_cjk, normalize

from .rerank import content_terms, requested_unit
from .retrieval import HybridRetriever, QueryInfo
from .types import Citation, Hit

FIGURE_RE = re.compile(
    r"第\d+(?:位|名)|\d+(?:\.\d+)?%?\s*[-~—至到]\s*\d+(?:\.\d+)?%|(?:约|近|超过|超|逾)?(?:[£$€¥]\s?)?\d+(?:[.,]\d+)*\s*(?:%|‰|余?[万亿千百]?余?(?:元|个|张|人份|人次|人|家|所|项|条|公里|千米|米|亩|平方米|吨|台|座|辆|户|套|场|次|倍|名|件|处|栋|间|床|位|天|小时|分钟|千瓦|兆瓦)?)(?:以上|左右|以内)?"
    r"(?:(?<=\s)|\s)?(?:(?:million|billion|trillion|thousand|per cent|percent)\b)?"
)
_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
DATE_RE = re.compile(r"\d{4}年\d{1,2}月\d{1,2}日|\d{4}年\d{1,2}月|\d{1,2}月\d{1,2}日|\d{4}年(?:底|前|内)?|年底前|年内"
                     rf"|\d{{1,2}} {_MONTH} \d{{4}}|{_MONTH} \d{{1,2}}, \d{{4}}|{_MONTH} \d{{4}}|(?<![\d,.£$€])(?:19|20)\d\d(?![\d%]|[,.]\d)")
_CLAUSE = re.compile(r"(?:[^，,；;：:。！？!?\n]|(?<=\d)[,.](?=\d))+")  # "1,184" and "2.5" stay whole


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


def rank_sentences(info: QueryInfo, hits: list[Hit], qtype: str, retriever: HybridRetriever, top: int = 3) -> list[Sentence]:
    """Score sentences of the top hits: idf-weighted overlap with the question + passage score + type cue."""
    idf = retriever.idf
    terms = info.tokens if info.same_language else [t for t in info.tokens if any(c.isdigit() for c in t)]
    denom = sum(idf.get(t, 1.0) for t in terms) or 1.0
    best_hit = hits[0].score if hits else 1.0
    row_of = retriever.row_of
    out: list[Sentence] = []
    for rank, h in enumerate(hits[:top]):
        text = h.passage.text
        for s, e, toks, norm in retriever.passage_sentence_info(row_of[h.passage.id]):
            sent = text[s:e]
            overlap = sum(idf.get(t, 1.0) for t in terms if t in toks) / denom
            # Substring matches catch terms jieba segments differently in question and sentence.
            partial = sum(idf.get(t, 1.0) for t in terms if t not in toks and len(t) >= 2 and t in norm) / denom
            score = overlap + 0.7 * partial + 0.6 * (h.score / best_hit if best_hit else 0) - 0.05 * rank
            if info.sentence_sims is not None:
                srow = retriever.sentence_row.get((row_of[h.passage.id], s, e))
                if srow is not None:
                    # Dense similarity decides for cross-lingual questions (no lexical overlap).
                    score += (4.0 if not info.same_language else 1.0) * retriever.sentence_similarity(info, srow)
            if qtype == "number" and FIGURE_RE.search(sent) and re.search(r"\d", sent):
                score += 0.25
            if qtype == "time" and DATE_RE.search(sent):
                score += 0.25
            if len(sent) < 6:
                score -= 0.5
            out.append(Sentence(h, s, e, score, toks))
    out.sort(key=lambda x: -x.score)
    return out


def sentence_coverage(info: QueryInfo, text: str, retriever: HybridRetriever, exclude: str = "") -> float:
    """idf-weighted share of the question's topic terms that ``text`` contains (substring match).

    Args:
        info: The analysed question.
        text: A candidate sentence.
        retriever: For the corpus idf table.
        exclude: A term not to count (the requested unit, which the figure check covers).
    """
    idf, unk = retriever.idf, retriever.unknown_idf
    terms = [t for t in content_terms(info) if t != exclude]
    norm = normalize(text)
    total = sum(idf.get(t, unk) for t in terms)
    return sum(idf.get(t, unk) for t in terms if t in norm) / total if total else 1.0


def _clause_spans(sentence: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _CLAUSE.finditer(sentence)]


def _clause_weight(text: str, terms: list[str], idf: dict[str, float]) -> float:
    norm = normalize(text)
    return sum(idf.get(t, 3.0) for t in terms if t in norm)


def _in_question(candidate: str, question: str) -> bool:
    """True when a candidate figure/date is quoted from the question itself ("由22.5%提高到多少")."""
    digits = re.sub(r"[^\d.%]", "", candidate)
    q = normalize(question)
    return bool(digits) and re.search(rf"(?<![\d.]){re.escape(digits)}(?![\d.])", q) is not None


def _best_candidate(sentence: str, cands: list[re.Match], terms: list[str], idf: dict[str, float]) -> re.Match | None:
    """The candidate whose clause shares most question terms; ties go to the one right after a term."""
    if not cands:
        return None
    clauses = _clause_spans(sentence)
    norm = normalize(sentence)
    anchors = [m.end() for t in terms for m in re.finditer(re.escape(t), norm)]

    def score(m: re.Match) -> float:
        clause = next(((a, b) for a, b in clauses if a <= m.start() < b), (m.start(), m.end()))
        w = _clause_weight(sentence[clause[0]:clause[1]], terms, idf)
        before = [m.start() - a for a in anchors if a <= m.start()]
        dist = min(before) if before else 50
        return w - 0.01 * dist

    return max(cands, key=score)


def extract_short(sentence: str, info: QueryInfo, qtype: str, idf: dict[str, float] | None = None) -> tuple[str, int]:
    """The short answer inside a sentence and its offset there, or ("", -1).

    number → the figure in the clause that best matches the question (not one quoted from it);
    time → a date likewise; anything else → none (sentence/summary instead). Names and other
    what/which/who spans are the trained reader's (``qa.answerers.hybrid``): on the gold fit split its
    spans beat the word-overlap entity/name patterns that stood here (entity: 9 of 16 right against 4).
    """
    idf = idf or {}
    if qtype not in ("number", "time"):
        return "", -1
    terms = [t for t in info.tokens if len(t) >= 2 and not re.fullmatch(r"20\d\d年?", t)] if info.same_language else []
    if qtype == "number":
        cands = [m for m in FIGURE_RE.finditer(sentence)
                 if re.search(r"\d", m.group()) and not re.fullmatch(r"20\d\d年?", m.group())
                 and not _in_question(m.group(), info.text)
                 # "5G", "3岁" are not quantities; "1,327 new homes" is (the match may end in a space)
                 and not re.match(r"[A-Za-z岁号]", sentence[m.start() + len(m.group().rstrip()):][:1])]
        unit = requested_unit(info.text)
        if unit and any(m.group().rstrip("以上左右以内").endswith(unit) for m in cands):
            cands = [m for m in cands if m.group().rstrip("以上左右以内").endswith(unit)]
        m = _best_candidate(sentence, cands, terms, idf)
        if m:
            return m.group().strip(), m.start()
    if qtype == "time":
        cands = [m for m in DATE_RE.finditer(sentence) if not _in_question(m.group(), info.text)]
        m = _best_candidate(sentence, cands, terms, idf)
        if m:
            return m.group(), m.start()
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
        text=p.text, start=start, end=end, doc_start=p.start, score=hit.score, page=p.page,
    )


def not_found_message(question: str, unconfirmed: bool = False) -> str:
    """The refusal in the question's language; ``unconfirmed``: a passage was found but the figure
    read from it could not be confirmed (the user may still want to read that passage)."""
    if unconfirmed:
        if has_cjk(question):
            return "找到了相关段落，但无法确认其中哪个数字回答了这个问题，所以不给出答案。请查看下面的段落。"
        return ("A related passage was found, but which of its figures answers the question could not be "
                "confirmed, so no answer is given. Please check the passages listed below.")
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
