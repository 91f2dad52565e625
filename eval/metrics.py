"""Per-question scoring rules and their aggregation into the report's metric set.

Every evaluator (gold set, SQuAD-format files) reduces each question to an :class:`ItemResult`;
:func:`aggregate` turns a list of them into a dict holding exactly :data:`METRIC_KEYS`.
Unanswerable items count only in ``refusal_accuracy``; all other metrics are over the answerable
items, and are ``None`` where a group has no item they apply to.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Sequence

from qa.spanmetrics import cmrc_em, cmrc_f1

MIN_EVIDENCE_CHARS = 30
RETRIEVAL_KS = (1, 5, 10)
METRIC_KEYS: tuple[str, ...] = (
    "n", "recall@1", "recall@5", "recall@10", "mrr@10", "short_answer_hit", "list_recall", "confident_wrong_rate",
    "answer_hit", "em", "f1", "refusal_accuracy", "false_refusal_rate", "citation_precision",
    "latency_ms_p50", "latency_ms_p95",
)
MAIN_METRICS: tuple[str, ...] = ("recall@1", "recall@5", "short_answer_hit", "f1", "confident_wrong_rate")
_WS = re.compile(r"\s+")

__all__ = [
    "METRIC_KEYS", "MAIN_METRICS", "MIN_EVIDENCE_CHARS", "ItemResult", "aggregate", "answer_hit", "check_thresholds",
    "cmrc_em", "cmrc_f1", "confident_wrong", "contains_answer", "contains_evidence", "first_hit_rank", "list_recall",
    "mrr_at_k", "percentile", "recall_at_k", "strict_hit", "strip_ws", "supports",
]


def strip_ws(text: str) -> str:
    """The text with all whitespace removed."""
    return _WS.sub("", text or "")


def contains_evidence(text: str, evidence: str, min_chars: int = MIN_EVIDENCE_CHARS) -> bool:
    """Whether a passage holds an evidence string, whitespace ignored.

    The whole evidence counts, and so do ``min_chars`` consecutive characters of it (evidence cut by
    a chunk boundary); evidence shorter than ``min_chars`` must appear whole.
    """
    t, e = strip_ws(text), strip_ws(evidence)
    if not e:
        return False
    if e in t:
        return True
    if len(e) < min_chars:
        return False
    return any(e[i:i + min_chars] in t for i in range(len(e) - min_chars + 1))


def supports(text: str, evidence: Iterable[str] = (), answers: Iterable[str] = (),
             min_chars: int = MIN_EVIDENCE_CHARS) -> bool:
    """Whether a passage holds one of the evidence strings (30-char rule) or one of the answers."""
    if any(contains_evidence(text, e, min_chars) for e in evidence):
        return True
    t = strip_ws(text)
    return any(a and strip_ws(a) and strip_ws(a) in t for a in answers)


def first_hit_rank(texts: Sequence[str], evidence: Iterable[str], min_chars: int = MIN_EVIDENCE_CHARS) -> int | None:
    """1-based rank of the first passage holding an evidence string, or None."""
    evidence = [e for e in evidence if strip_ws(e)]
    for rank, text in enumerate(texts, 1):
        if any(contains_evidence(text, e, min_chars) for e in evidence):
            return rank
    return None


def recall_at_k(ranks: Sequence[int | None], k: int) -> float | None:
    """Share of items whose first hit is within the top k (None for no items)."""
    if not ranks:
        return None
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)


def mrr_at_k(ranks: Sequence[int | None], k: int = 10) -> float | None:
    """Mean reciprocal rank of the first hit, 0 beyond k (None for no items)."""
    if not ranks:
        return None
    return sum(1.0 / r for r in ranks if r is not None and r <= k) / len(ranks)


def answer_hit(answers: Iterable[str], short_answer: str, sentence: str = "", summary: Iterable[str] = (),
               not_found: bool = False) -> bool:
    """Whether a gold answer (whitespace removed) is in what the assistant said.

    The short answer is checked when there is one; otherwise the sentence, and when the sentence
    holds none of the answers, the summary sentences joined. Not-found answers are misses.
    """
    if not_found:
        return False
    golds = [strip_ws(a) for a in answers if strip_ws(a)]
    if not golds:
        return False
    short = strip_ws(short_answer)
    if short:
        return any(g in short for g in golds)
    for target in (strip_ws(sentence), strip_ws("".join(summary))):
        if target and any(g in target for g in golds):
            return True
    return False


def _answer_pattern(gold: str) -> re.Pattern:
    """A gold answer as a pattern that matches figures only on number boundaries.

    ``45`` must not match inside ``12345`` nor ``7`` inside ``17个`` or ``7.5``: a gold answer that
    starts (ends) with a digit must not be preceded (followed) by another digit or a decimal/grouping
    mark joined to a digit.
    """
    pre = r"(?<!\d)(?<!\d[.,])" if gold[:1].isdigit() else ""
    post = r"(?!\d)(?![.,]\d)" if gold[-1:].isdigit() else ""
    return re.compile(pre + re.escape(gold) + post)


def contains_answer(gold: str, text: str) -> bool:
    """Whether ``text`` holds the gold answer (whitespace and case ignored, figures on number boundaries)."""
    g, t = strip_ws(gold).lower(), strip_ws(text).lower()
    if not g or not t:
        return False
    if not any(ch.isdigit() for ch in g):
        return g in t
    return _answer_pattern(g).search(t) is not None


def _shown(short_answer: str, sentence: str, summary: Iterable[str]) -> str:
    return "\n".join([short_answer or "", sentence or "", *summary])


def strict_hit(answers: Iterable[str], form: str, short_answer: str, sentence: str = "", summary: Iterable[str] = (),
               not_found: bool = False) -> bool:
    """The strict answer metric: what the user reads holds a whole gold answer.

    ``form == "short"`` (figure, name, date questions): a gold answer inside the bold **short answer**;
    an answer without a short answer is a miss. ``"list"``/``"explain"``: inside the short answer, the
    shown sentence or the summary. A refusal is a miss.
    """
    if not_found:
        return False
    golds = [a for a in answers if strip_ws(a)]
    if form == "short":
        return any(contains_answer(g, short_answer) for g in golds)
    shown = _shown(short_answer, sentence, summary)
    return any(contains_answer(g, shown) for g in golds)


def list_recall(elements: Sequence[str], short_answer: str, sentence: str = "", summary: Iterable[str] = (),
                not_found: bool = False) -> float | None:
    """Share of a list answer's elements shown (short answer, sentence or summary); None without elements."""
    elements = [e for e in elements if strip_ws(e)]
    if not elements:
        return None
    if not_found:
        return 0.0
    shown = _shown(short_answer, sentence, summary)
    return sum(contains_answer(e, shown) for e in elements) / len(elements)


def confident_wrong(answerable: bool, form: str, hit: bool, short_answer: str, not_found: bool,
                    recall: float | None = None) -> bool:
    """Answered, not refused, and wrong: the error users hate most.

    Unanswerable item: any answer. Short-form item: a short answer that holds no gold answer (an
    answer without a short answer is a miss, not a confident error). List/explain item: nothing shown
    holds a gold answer (nor any list element).
    """
    if not_found:
        return False
    if not answerable:
        return True
    if form == "short":
        return bool(strip_ws(short_answer)) and not hit
    return not hit and not recall


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile with linear interpolation (numpy's default), None for no values."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass
class ItemResult:
    """One question's outcome.

    Attributes:
        id: Question id.
        type: Question type (gold ``type``; "squad" or "none" for SQuAD files).
        answerable: False for unanswerable questions (type "none").
        rank: 1-based rank of the first relevant retrieved passage, None when none was retrieved.
        answer_hit: A gold answer is in the short answer (or the sentence/summary): the lenient, old metric.
        strict_hit: :func:`strict_hit` (reported as ``short_answer_hit``).
        list_recall: :func:`list_recall`, None for items without list elements.
        confident_wrong: :func:`confident_wrong`.
        em: CMRC exact match of the short answer.
        f1: CMRC F1 of the short answer.
        not_found: The assistant declined to answer.
        cited_ok: Citations that support the answer.
        cited_total: Citations given.
        latency_ms: Time to answer.
        details: Free-form fields for error analysis (question, answers, short answer...).
    """

    id: str
    type: str
    answerable: bool
    rank: int | None = None
    answer_hit: bool = False
    strict_hit: bool = False
    list_recall: float | None = None
    confident_wrong: bool = False
    em: float = 0.0
    f1: float = 0.0
    not_found: bool = False
    cited_ok: int = 0
    cited_total: int = 0
    latency_ms: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-ready record (details merged in)."""
        d = asdict(self)
        details = d.pop("details")
        d["first_hit_rank"] = d.pop("rank")
        d["latency_ms"] = round(d["latency_ms"], 1)
        d["f1"] = round(d["f1"], 4)
        return {**d, **details}


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def aggregate(results: Sequence[ItemResult], ks: Sequence[int] = RETRIEVAL_KS) -> dict[str, Any]:
    """The metric dict (exactly :data:`METRIC_KEYS`) of a group of item results."""
    ans = [r for r in results if r.answerable]
    unans = [r for r in results if not r.answerable]
    ranks = [r.rank for r in ans]
    out: dict[str, Any] = {"n": len(results)}
    for k in ks:
        out[f"recall@{k}"] = _round(recall_at_k(ranks, k), 4)
    out["mrr@10"] = _round(mrr_at_k(ranks, 10), 4)
    out["short_answer_hit"] = _round(_mean([float(r.strict_hit) for r in ans]), 4)
    out["list_recall"] = _round(_mean([r.list_recall for r in ans if r.list_recall is not None]), 4)
    out["confident_wrong_rate"] = _round(_mean([float(r.confident_wrong) for r in results]), 4)
    out["answer_hit"] = _round(_mean([float(r.answer_hit) for r in ans]), 4)
    out["em"] = _round(_mean([r.em for r in ans]), 4)
    out["f1"] = _round(_mean([r.f1 for r in ans]), 4)
    out["refusal_accuracy"] = _round(_mean([float(r.not_found) for r in unans]), 4)
    out["false_refusal_rate"] = _round(_mean([float(r.not_found) for r in ans]), 4)
    cited = sum(r.cited_total for r in ans)
    out["citation_precision"] = round(sum(r.cited_ok for r in ans) / cited, 4) if cited else None
    lat = [r.latency_ms for r in ans]
    out["latency_ms_p50"] = _round(percentile(lat, 50), 1)
    out["latency_ms_p95"] = _round(percentile(lat, 95), 1)
    return {key: out.get(key) for key in METRIC_KEYS}


def group_by_type(results: Sequence[ItemResult], order: Sequence[str] = (),
                  key: Callable[[ItemResult], str] = lambda r: r.type) -> dict[str, dict[str, Any]]:
    """:func:`aggregate` per group (default: per type), ``order`` first, then the others alphabetically."""
    groups = {key(r) for r in results}
    ordered = [t for t in order if t in groups] + sorted(groups - set(order))
    return {t: aggregate([r for r in results if key(r) == t]) for t in ordered}


class ThresholdError(ValueError):
    """The thresholds file is malformed."""


def check_thresholds(result: dict[str, Any], thresholds: dict[str, Any]) -> list[str]:
    """Every metric below its minimum or above its maximum, as readable lines (empty = pass).

    Args:
        result: Evaluation output with ``overall`` and ``by_type``.
        thresholds: ``{"overall": {metric: min}, "by_type": {type: {metric: min}},
            "max": {"overall": {metric: max}, "by_type": {type: {metric: max}}}}``.

    Raises:
        ThresholdError: the thresholds are not shaped like that.
    """
    if not isinstance(thresholds, dict):
        raise ThresholdError("thresholds must be a JSON object with 'overall', 'by_type' and/or 'max'")
    # Keys starting with "_" are comments.
    thresholds = {k: v for k, v in thresholds.items() if not k.startswith("_")}
    unknown = set(thresholds) - {"overall", "by_type", "max"}
    if unknown:
        raise ThresholdError(f"unknown thresholds section(s): {', '.join(sorted(unknown))}")
    failures: list[str] = []

    def check_group(where: str, metrics: dict[str, Any], limits: Any, is_max: bool) -> None:
        if not isinstance(limits, dict):
            raise ThresholdError(f"thresholds for {where} must be an object of metric: number")
        for metric, limit in limits.items():
            if metric not in METRIC_KEYS or metric == "n":
                raise ThresholdError(f"unknown metric {metric!r} in thresholds for {where}")
            if not isinstance(limit, (int, float)) or isinstance(limit, bool):
                raise ThresholdError(f"threshold {where} {metric} must be a number, got {limit!r}")
            value = metrics.get(metric) if metrics is not None else None
            if value is None:
                failures.append(f"{where} {metric}: not measured (threshold {'max' if is_max else 'min'} {limit})")
            elif is_max and value > limit:
                failures.append(f"{where} {metric} = {value} above max {limit}")
            elif not is_max and value < limit:
                failures.append(f"{where} {metric} = {value} below min {limit}")

    def check_section(section: Any, is_max: bool) -> None:
        if not isinstance(section, dict):
            raise ThresholdError("threshold sections must be JSON objects")
        if "overall" in section:
            check_group("overall", result.get("overall", {}), section["overall"], is_max)
        by_type = section.get("by_type", {})
        if not isinstance(by_type, dict):
            raise ThresholdError("'by_type' thresholds must be an object of type: {metric: number}")
        for qtype, limits in by_type.items():
            metrics = result.get("by_type", {}).get(qtype)
            if metrics is None:
                failures.append(f"by_type {qtype}: no such type in the results")
                continue
            check_group(f"by_type {qtype}", metrics, limits, is_max)

    check_section({k: v for k, v in thresholds.items() if k != "max"}, is_max=False)
    if "max" in thresholds:
        extra = set(thresholds["max"]) - {"overall", "by_type"} if isinstance(thresholds["max"], dict) else set()
        if extra:
            raise ThresholdError(f"unknown section(s) under 'max': {', '.join(sorted(extra))}")
        check_section(thresholds["max"], is_max=True)
    return failures
