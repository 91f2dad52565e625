"""Check a generated answer sentence by sentence against the passages it was generated from.

For every sentence of the generated text:

1. the passage it cites (``[n]``), or the best-matching passage when it cites none, is chosen;
2. its *facts* are extracted: numbers (full/half width, thousands separators, 万/亿/千 multipliers
   and Chinese numerals normalised, so 两千 = 2千 = 0.2万 = 2,000 = 2000), dates (2025年3月) and
   named entities (quoted terms “…” 《…》 and jieba proper nouns);
3. every number and date must occur in that passage (text, title or date) — otherwise the sentence
   is **removed** (a wrong figure is the one error we must never show); every entity must occur
   there too (or in the question) and the sentence's embedding similarity to the passage's best
   sentence must reach :data:`DEFAULT_THRESHOLD` — otherwise the sentence is **flagged**.

A sentence citing the wrong passage but fully supported by another one is re-attributed to it.
Each kept or flagged sentence gets a :class:`~qa.types.Citation` whose ``start``/``end`` mark the
supporting sentence in the passage, exactly like the extractive answer's citations.

Threshold calibration (``python -m eval.llm_mode calibrate``, see docs/llm.md): for each answerable
gold question a declarative claim is built (the question with its question word replaced by the
gold answer); its similarity to the best sentence of the gold evidence passage is a positive, its
similarity to the best sentence of the highest-ranked retrieved passage *without* the evidence is a
negative. The threshold keeps ≥ 95 % of the positives (their 5th percentile, rounded down to 0.01),
separately for Chinese claims and for English ones (:data:`DEFAULT_THRESHOLD_EN`, cross-lingual).
"""
from __future__ import annotations

import logging
import math
import re
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from index.chunking import passage_sentences
from index.textproc import has_cjk, normalize

from .answer import make_citation
from .types import Citation, Hit

log = logging.getLogger(__name__)

# Calibrated on the Taiyuan gold set with multilingual-e5-small (``python -m eval.llm_mode calibrate``):
# Chinese claims (n=128): positives median 0.932, p5 0.90 (kept 95.3 %); wrong-passage negatives
# median 0.900 (similarity alone rejects 50 %; with the fact checks the verifier keeps 93.8 % of
# gold claims and rejects 82.8 % of wrong-passage ones).
DEFAULT_THRESHOLD = 0.90
# English claims (n=18) are matched across languages and score lower: positives median 0.822,
# p5 0.79; the whole check keeps 94.4 % of gold claims and rejects 72.2 % of wrong-passage ones.
DEFAULT_THRESHOLD_EN = 0.79

KEEP, FLAG, REMOVE = "keep", "flag", "remove"
# Claims with fewer Chinese characters + English words than this are embedded with the question.
SHORT_CLAIM = 10

# --------------------------------------------------------------------------- numbers
_CN_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}
_CN_BIG = {"万": 10_000, "亿": 100_000_000}
_MULT = {"十": 10, "百": 100, "千": 1e3, "万": 1e4, "亿": 1e8, "十万": 1e5, "百万": 1e6, "千万": 1e7,
         "十亿": 1e9, "百亿": 1e10, "千亿": 1e11, "万亿": 1e12,
         "thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d])")
_ARABIC = re.compile(
    r"(?<![\d.])(\d+(?:\.\d+)?)\s*(十万|百万|千万|十亿|百亿|千亿|万亿|[十百千万亿](?![万亿])|(?:thousand|million|billion|trillion)\b)?",
    re.I,
)
_CN_RUN = re.compile(r"[零〇一二两三四五六七八九十百千万亿]+")
_DATE = re.compile(r"(?<!\d)(\d{4})\s*年(?:\s*(\d{1,2})\s*月(?:\s*(\d{1,2})\s*日)?)?|(?<![\d年])(\d{1,2})\s*月(?:\s*(\d{1,2})\s*[日号])?")


def _fold(text: str) -> str:
    """Full → half width (NFKC) with ASCII thousands separators removed (2,000 → 2000)."""
    text = _THOUSANDS.sub(lambda m: m.group().replace(",", ""), text)
    return unicodedata.normalize("NFKC", text)


def chinese_to_number(run: str) -> float | None:
    """Value of a Chinese numeral (两千 → 2000, 一万二千 → 12000, 二〇二五 → 2025), None if it is not one.

    Digit-only runs are read positionally when they have three or more characters (years); runs
    like 十三五 (a plan name: two digits in a row after a unit) are not numbers.
    """
    if not run:
        return None
    if all(c in _CN_DIGIT for c in run):
        if len(run) == 1:
            return float(_CN_DIGIT[run])
        if len(run) >= 3 or any(c in "〇零" for c in run):
            return float("".join(str(_CN_DIGIT[c]) for c in run))
        return None
    total, section, digit = 0.0, 0.0, None
    for c in run:
        if c in "零〇":
            digit = None
        elif c in _CN_DIGIT:
            if digit is not None:
                return None
            digit = _CN_DIGIT[c]
        elif c in _CN_UNIT:
            section += (digit if digit is not None else 1) * _CN_UNIT[c]
            digit = None
        else:  # 万 / 亿
            section += digit or 0
            digit = None
            if section == 0 and total == 0:
                return None
            if c == "亿":
                total = (total + section) * _CN_BIG[c]
            else:
                total += (section or 1) * _CN_BIG[c]
            section = 0.0
    return total + section + (digit or 0)


def extract_numbers(text: str, liberal: bool = False) -> list[tuple[float, str]]:
    """Numbers of a text as (value, surface) pairs, normalised (see the module docstring).

    Args:
        text: Any text.
        liberal: Also read single Chinese digits (三个, 第三) and bare multipliers; used for the
            passage side, where reading too much only makes the check more lenient.
    """
    text = _fold(text)
    out: list[tuple[float, str]] = []
    masked = list(text)
    for m in _ARABIC.finditer(text):
        value = float(m.group(1))
        mult = (m.group(2) or "").lower()
        if mult:
            value *= _MULT[mult]
        out.append((value, m.group().strip()))
        for i in range(m.start(), m.end()):
            masked[i] = " "
    rest = "".join(masked)
    if liberal:
        # Plan names: 十三五 is the 13th Five-Year Plan ("the 13th Five-Year Plan" → 13).
        out.extend((float(10 + _CN_DIGIT[m.group(1)]), m.group()) for m in re.finditer(r"十([一二三四五六七八九])五", rest))
    for m in _CN_RUN.finditer(rest):
        run = m.group()
        has_digit = any(c in _CN_DIGIT for c in run)
        before = rest[m.start() - 1] if m.start() else ""
        if not liberal and not (has_digit and (len(run) >= 2 or before == "第")):
            continue
        if liberal and not has_digit and len(run) == 1:
            continue
        value = chinese_to_number(run)
        if value is not None:
            out.append((value, run))
    return out


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


# --------------------------------------------------------------------------- entities
_QUOTED = re.compile(r"[“\"「『《]([^“”\"「」『』《》]{2,40})[”\"」』》]")
_PROPER = ("nr", "nrfg", "nrt", "ns", "nt")  # not nz: jieba tags common compounds (体育锻炼) so


def extract_entities(text: str) -> list[str]:
    """Quoted terms and jieba proper nouns (people, places, organisations) of a Chinese text."""
    out = [m.group(1).strip() for m in _QUOTED.finditer(text)]
    if has_cjk(text):
        import jieba.posseg as pseg

        from index.textproc import ensure_jieba

        ensure_jieba()
        plain = _QUOTED.sub(" ", text)
        for word, flag in pseg.cut(plain):
            # jieba's HMM tags unknown 4-character words as names (体育锻炼/nr): names have 2-3 characters.
            if flag in _PROPER and len(word) >= 2 and has_cjk(word) and not (flag.startswith("nr") and len(word) > 3):
                out.append(word)
    seen: set[str] = set()
    return [e for e in out if not (e in seen or seen.add(e))]


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", normalize(text))


# --------------------------------------------------------------------------- splitting
# [1], [1,2], 【2】, [1-3], and what small models make of the prompt's wording: [编号1], [资料2].
_MARKER = re.compile(r"[\[【]\s*(?:编号|资料)?\s*(\d{1,2}(?:\s*[,，、\-–]\s*\d{1,2})*)\s*[\]】]")
_MARKERS_AT = re.compile(r"(?:\s*[\[【]\s*(?:编号|资料)?\s*(?:\d{1,2}(?:\s*[,，、\-–]\s*\d{1,2})*)?\s*[\]】])+")
_TERMINAL = "。！？!?；;\n"
_CLOSERS = "。！？!?；;”’\"）)】"
_ENUM = re.compile(r"^\s*(?:\d{1,2}[.、)）]\s*|[（(]\d{1,2}[)）]\s*|[-*•·]\s+)")
NO_ANSWER_RE = re.compile(r"(资料|文档|材料)[中里]?(没有|未)(找到|提到|提及|涉及|包含)|not (?:mentioned|found|stated)|don't say|does not say", re.I)


def split_generated(text: str) -> list[str]:
    """Sentences of a generated answer, each keeping the ``[n]`` markers that follow its end."""
    pieces: list[str] = []
    start, i, n = 0, 0, len(text)
    while i < n:
        ch = text[i]
        end = ch in _TERMINAL or (ch == "." and (i + 1 == n or text[i + 1].isspace())
                                  and not re.fullmatch(r"\s*\d{1,2}", text[start:i]))  # "1. " is a bullet
        if not end:
            i += 1
            continue
        j = i + 1
        while j < n and text[j] in _CLOSERS:
            j += 1
        m = _MARKERS_AT.match(text, j)
        if m:
            j = m.end()
            while j < n and text[j] in _CLOSERS:
                j += 1
        pieces.append(text[start:j])
        start = i = j
    if start < n:
        pieces.append(text[start:])
    out: list[str] = []
    carry = ""
    for p in pieces:
        p = carry + _ENUM.sub("", p.strip()) if carry else p.strip()
        carry = ""
        if not p:
            continue
        if p.rstrip().endswith(("：", ":")) and not _MARKER.search(p):
            carry = p  # "答案如下：" introduces the next line
            continue
        out.append(p)
    if carry:
        out.append(carry.strip())
    return out


def cited_numbers(sentence: str) -> list[int]:
    """The passage numbers a sentence cites: [1], [1,2], 【2】, [1-3]."""
    out: list[int] = []
    for m in _MARKER.finditer(sentence):
        for part in re.split(r"\s*[,，、]\s*", m.group(1)):
            if re.search(r"[\-–]", part):
                a, b = (int(x) for x in re.split(r"\s*[\-–]\s*", part)[:2])
                out.extend(range(a, b + 1) if 0 < b - a < 10 else [a, b])
            elif part.strip().isdigit():
                out.append(int(part))
    return list(dict.fromkeys(out))


_OTHER_BRACKETS = re.compile(r"[\[【][^\]】]{0,40}[\]】]")


def strip_markers(sentence: str) -> str:
    """The claim of a sentence: citation markers, other [bracketed notes] and list bullets removed."""
    text = _OTHER_BRACKETS.sub("", _MARKER.sub("", sentence))
    text = _ENUM.sub("", text)
    return re.sub(r"\s+([，。；！？,.;!?])", r"\1", text).strip()


# --------------------------------------------------------------------------- results
@dataclass
class VerifiedSentence:
    """One generated sentence and what the check found.

    Attributes:
        text: The claim as shown (citation markers removed).
        raw: The sentence as generated.
        supported: True when every fact is in the passage and the similarity clears the threshold.
        action: "keep" (supported), "flag" (shown marked as unverified) or "remove" (wrong number/date).
        citation: ``Citation.n`` in :attr:`Verification.citations` (None when removed).
        passage: 1-based index into the passages given of the passage checked against.
        cited: The passage numbers the sentence cited.
        start: Offset of the supporting sentence in that passage's text (-1 when none).
        end: Its end offset.
        similarity: Embedding similarity to that passage's best sentence.
        reason: "supported" or what is missing / too weak, human-readable.
        missing: Facts not found in the passage.
    """

    text: str
    raw: str
    supported: bool
    action: str
    citation: int | None = None
    passage: int | None = None
    cited: list[int] = field(default_factory=list)
    start: int = -1
    end: int = -1
    similarity: float = 0.0
    reason: str = ""
    missing: list[str] = field(default_factory=list)


@dataclass
class Verification:
    """The checked answer: per-sentence verdicts and the citations of those shown.

    Attributes:
        sentences: All sentences in order (kept, flagged and removed).
        citations: Citations of kept and flagged sentences, numbered from 1 in order of use.
        threshold: Similarity threshold applied.
        no_answer: The model said the passages hold no answer.
    """

    sentences: list[VerifiedSentence] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    threshold: float = DEFAULT_THRESHOLD
    no_answer: bool = False

    @property
    def kept(self) -> list[VerifiedSentence]:
        """Supported sentences."""
        return [s for s in self.sentences if s.action == KEEP]

    @property
    def flagged(self) -> list[VerifiedSentence]:
        """Sentences shown marked as unverified."""
        return [s for s in self.sentences if s.action == FLAG]

    @property
    def removed(self) -> list[VerifiedSentence]:
        """Sentences dropped (a number or date not in the passage)."""
        return [s for s in self.sentences if s.action == REMOVE]

    @property
    def shown(self) -> list[VerifiedSentence]:
        """Kept and flagged sentences, in order."""
        return [s for s in self.sentences if s.action != REMOVE]

    @property
    def supported_rate(self) -> float | None:
        """Share of sentences that passed (None when there are none)."""
        return sum(s.supported for s in self.sentences) / len(self.sentences) if self.sentences else None


# --------------------------------------------------------------------------- verifier
@dataclass
class _Facts:
    numbers: list[tuple[float, str]]
    dates: list[tuple[str, int | None, int | None, int | None]]  # surface, year, month, day
    entities: list[str]


@dataclass
class _Check:
    index: int  # 0-based passage index
    missing_hard: list[str]
    missing_soft: list[str]
    similarity: float
    start: int
    end: int

    def key(self, threshold: float) -> tuple:
        return (len(self.missing_hard), len(self.missing_soft) + (self.similarity < threshold), -self.similarity)


class Verifier:
    """Sentence-level support check of generated answers (thread-safe).

    Args:
        embedder: An :class:`index.embed.Embedder` (``assistant.embedder``).
        threshold: Minimum similarity of a sentence to its passage's best sentence.
        cache_size: Passages whose sentence vectors are kept between calls.
    """

    def __init__(self, embedder: Any, threshold: float = DEFAULT_THRESHOLD, cache_size: int = 512,
                 threshold_en: float = DEFAULT_THRESHOLD_EN) -> None:
        self.embedder = embedder
        self.threshold = threshold
        self.threshold_en = threshold_en
        self.cache_size = cache_size
        self._cache: OrderedDict[str, tuple[list[tuple[int, int]], np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    # -------------------------------------------------------------- passages
    def _sentence_vectors(self, passages: Sequence[Any]) -> list[tuple[list[tuple[int, int]], np.ndarray]]:
        """(sentence spans, L2-normalised vectors) of each passage, cached by passage text."""
        out: list[Any] = [None] * len(passages)
        todo: list[tuple[int, list[tuple[int, int]]]] = []
        with self._lock:
            for i, p in enumerate(passages):
                hit = self._cache.get(p.text)
                if hit is not None:
                    self._cache.move_to_end(p.text)
                    out[i] = hit
                else:
                    spans = [(s, e) for s, e in passage_sentences(p.text) if p.text[s:e].strip()] or [(0, len(p.text))]
                    todo.append((i, spans))
        if todo:
            texts = [passages[i].text[s:e] for i, spans in todo for s, e in spans]
            vecs = self.embedder.encode_passages(texts)
            pos = 0
            with self._lock:
                for i, spans in todo:
                    entry = (spans, vecs[pos:pos + len(spans)])
                    pos += len(spans)
                    out[i] = entry
                    self._cache[passages[i].text] = entry
                    while len(self._cache) > self.cache_size:
                        self._cache.popitem(last=False)
        return out

    @staticmethod
    def _context(p: Any) -> tuple[str, str, list[float], list[float]]:
        """(squashed text, squashed metadata, numbers in the text, numbers in text+metadata)."""
        meta = " ".join(str(x) for x in (getattr(p, "title", ""), getattr(p, "date", ""),
                                         getattr(p, "section", ""), getattr(p, "year", "") or "") if x)
        text_nums = [v for v, _ in extract_numbers(p.text, liberal=True)]
        meta_nums = [v for v, _ in extract_numbers(meta, liberal=True)]
        return _squash(_fold(p.text)), _squash(_fold(meta)), text_nums, text_nums + meta_nums

    # -------------------------------------------------------------- facts
    @staticmethod
    def facts(claim: str) -> _Facts:
        """Numbers (outside dates), dates and entities of a claim."""
        folded = _fold(claim)
        dates = []
        spans = []
        for m in _DATE.finditer(folded):
            if m.group(1):
                y, mo, d = int(m.group(1)), m.group(2), m.group(3)
            else:
                y, mo, d = None, m.group(4), m.group(5)
            dates.append((m.group().strip(), y, int(mo) if mo else None, int(d) if d else None))
            spans.append((m.start(), m.end()))
        rest = list(folded)
        for s, e in spans:
            for i in range(s, e):
                rest[i] = " "
        numbers = []
        for value, surface in extract_numbers("".join(rest)):
            if re.fullmatch(r"(?:19|20)\d\d", surface):
                dates.append((surface, int(value), None, None))  # a bare year ("in 2021") is a date
            else:
                numbers.append((value, surface))
        return _Facts(numbers=numbers, dates=dates, entities=extract_entities(claim))

    def _check_facts(self, facts: _Facts, ctx: tuple[str, str, list[float], list[float]],
                     question: str) -> tuple[list[str], list[str]]:
        text, meta, text_nums, all_nums = ctx
        q = _squash(_fold(question))
        hard: list[str] = []
        for value, surface in facts.numbers:
            if not any(_same(value, v) for v in all_nums):
                hard.append(surface)
        for surface, y, mo, d in facts.dates:
            if _squash(surface) in q:
                continue  # the question's own date ("2021年太原…"): retrieval already picked documents by it
            ok = y is None or any(_same(y, v) for v in all_nums)
            if ok and mo is not None:
                pat = rf"(?<!\d)0?{mo}月" + (rf"0?{d}[日号]" if d is not None else "")
                ok = re.search(pat, text) is not None or re.search(pat, meta) is not None
            if not ok:
                hard.append(surface)
        soft: list[str] = []
        for ent in facts.entities:
            e = _squash(_fold(ent))
            if e and e not in text and e not in meta and e not in q:
                soft.append(ent)
        return hard, soft

    @staticmethod
    def _embedding_text(claim: str, question: str) -> str:
        words = len(re.findall(r"[\u3400-\u9fff]", claim)) + len(re.findall(r"[A-Za-z]+", claim))
        return f"{question.strip()} {claim}" if question and words < SHORT_CLAIM else claim

    def threshold_for(self, claim: str) -> float:
        """The similarity threshold of a claim (lower across languages: English claims, Chinese passages)."""
        cjk = len(re.findall(r"[\u3400-\u9fff]", claim))
        latin = len(re.findall(r"[A-Za-z]", claim))
        return self.threshold if cjk >= latin / 4 else self.threshold_en

    @staticmethod
    def _passes(check: _Check, threshold: float) -> bool:
        return not check.missing_hard and not check.missing_soft and check.similarity >= threshold

    # -------------------------------------------------------------- main
    def verify(self, answer: str, passages: Sequence[Hit | Any], question: str = "") -> Verification:
        """Check every sentence of ``answer`` against ``passages`` (numbered [1]..[n] in this order).

        Args:
            answer: The generated text, with ``[n]`` markers.
            passages: The Hits (or Passages) the prompt showed, in prompt order.
            question: The question (entities it names need not be in the passage).
        """
        hits = [p if isinstance(p, Hit) else Hit(passage=p, score=0.0) for p in passages]
        plist = [h.passage for h in hits]
        result = Verification(threshold=self.threshold)
        raw_sentences = split_generated(answer or "")
        items = []
        for raw in raw_sentences:
            claim = strip_markers(raw)
            if sum(ch.isalnum() for ch in claim) < 2:
                continue
            if NO_ANSWER_RE.search(claim) and not extract_numbers(claim):
                result.no_answer = True
                continue
            items.append((raw, claim))
        if not items or not plist:
            result.sentences = [VerifiedSentence(text=c, raw=r, supported=False, action=FLAG,
                                                 reason="no passage to check against") for r, c in items]
            return result
        # A bare answer ("2020年5月12日", "贾连喜") means the question completed: embed it with the question.
        claim_vecs = self.embedder.encode_queries([self._embedding_text(c, question) for _, c in items])
        sent_vecs = self._sentence_vectors(plist)
        contexts = [self._context(p) for p in plist]
        cite_of: dict[tuple[int, int, int], int] = {}

        for (raw, claim), qv in zip(items, claim_vecs):
            facts = self.facts(claim)
            th = self.threshold_for(self._embedding_text(claim, question))
            cited = cited_numbers(raw)
            valid = [n - 1 for n in cited if 1 <= n <= len(plist)]
            checks: list[_Check] = []
            for i in range(len(plist)):
                spans, vecs = sent_vecs[i]
                sims = vecs @ qv
                hard, soft = self._check_facts(facts, contexts[i], question)
                # Best sentence: most similar, nudged towards the one holding the claim's figures.
                bonus = np.zeros(len(spans), np.float32)
                if facts.numbers:
                    for j, (s, e) in enumerate(spans):
                        nums = [v for v, _ in extract_numbers(plist[i].text[s:e], liberal=True)]
                        bonus[j] = 0.05 * sum(any(_same(v, x) for x in nums) for v, _ in facts.numbers) / len(facts.numbers)
                j = int(np.argmax(sims + bonus))
                checks.append(_Check(i, hard, soft, float(sims.max()), spans[j][0], spans[j][1]))
            by_key = sorted(checks, key=lambda c: c.key(th))
            best = by_key[0]
            if valid:
                chosen = min((checks[i] for i in valid), key=lambda c: c.key(th))
                note = ""
                # Re-attribute only to a passage that supports the sentence fully: a figure that merely
                # occurs in another passage (2500 school places cited as beds) must still be removed.
                if not self._passes(chosen, th) and self._passes(best, th):
                    note = f"cited [{chosen.index + 1}], matched [{best.index + 1}]; "
                    chosen = best
            else:
                chosen = best
                note = "no citation; matched " + f"[{chosen.index + 1}]; "
            if chosen.missing_hard:
                action, reason = REMOVE, f"{'、'.join(chosen.missing_hard)} not in [{chosen.index + 1}]"
            elif chosen.missing_soft:
                action, reason = FLAG, f"{'、'.join(chosen.missing_soft)} not in [{chosen.index + 1}]"
            elif chosen.similarity < th:
                action, reason = FLAG, f"similarity {chosen.similarity:.3f} < {th:.2f} to [{chosen.index + 1}]"
            else:
                action, reason = KEEP, "supported"
            vs = VerifiedSentence(
                text=claim, raw=raw, supported=action == KEEP, action=action, passage=chosen.index + 1,
                cited=cited, start=chosen.start, end=chosen.end, similarity=round(chosen.similarity, 4),
                reason=note + reason, missing=chosen.missing_hard + chosen.missing_soft,
            )
            if action != REMOVE:
                key = (chosen.index, chosen.start, chosen.end)
                if key not in cite_of:
                    cite_of[key] = len(result.citations) + 1
                    result.citations.append(make_citation(cite_of[key], hits[chosen.index], chosen.start, chosen.end))
                vs.citation = cite_of[key]
            result.sentences.append(vs)
        return result


__all__ = [
    "DEFAULT_THRESHOLD", "DEFAULT_THRESHOLD_EN", "KEEP", "FLAG", "REMOVE", "Verifier", "Verification", "VerifiedSentence",
    "chinese_to_number", "extract_numbers", "extract_entities", "split_generated", "cited_numbers", "strip_markers",
]
