"""Deterministic follow-up rewriting: elliptical questions inherit subject and year from the last turn.

Examples (previous turn "2025年太原新增养老床位多少张？"):
    "那2022年呢？"   → "2022年太原新增养老床位多少张？"
    "去年呢"          → "2024年太原新增养老床位多少张？"
    "What about 2021?" → "2021年太原新增养老床位多少张？"
Previous turn "太忻一体化经济区怎么建设？", then "这个项目投资多少" → "太忻一体化经济区投资多少".
"""
from __future__ import annotations

import re
from typing import Any, Sequence

from index.textproc import YEAR_RE, years_in

_YEAR = re.compile(rf"(?:{YEAR_RE.pattern})\s*年?")
_RELATIVE = {"去年": -1, "前年": -2, "明年": 1, "今年": 0, "last year": -1, "next year": 1, "the year before": -1}
_PRONOUN = re.compile(r"^(?:那么|那|这个项目|该项目|这个|这项|该|它的|它|其|this project|this|it)")
_ELLIPTIC_END = re.compile(r"(?:呢|怎么样|如何|又如何|多少呢|\?|？)*\s*$")
_EN_FOLLOW = re.compile(r"^(?:and|what about|how about|and what about|and in|in)\b", re.I)
_QWORDS = re.compile(
    r"(?:是)?(?:多少|几[个项所家条座万亿]?|什么|哪些|哪个|哪里|如何|怎么|怎样|为什么|是否|有没有|吗|呢|谁)"
    r"|how many|how much|what|which|who|when|where|why|how", re.I
)


def _previous_query(history: Sequence[Any] | None) -> str:
    """The last turn's standalone query (its rewritten form when known)."""
    if not history:
        return ""
    last = history[-1]
    if isinstance(last, str):
        return last
    if isinstance(last, dict):
        return str(last.get("rewritten_query") or last.get("question") or last.get("content") or "")
    if isinstance(last, (list, tuple)) and last:
        return str(last[0])
    return str(getattr(last, "rewritten_query", "") or getattr(last, "question", ""))


def _is_elliptical(q: str) -> bool:
    core = _ELLIPTIC_END.sub("", q.strip())
    if _EN_FOLLOW.match(core) and len(core.split()) <= 5:
        return True
    if q.strip().endswith(("呢", "呢？", "呢?")) and len(core) <= 14:
        return True
    if _PRONOUN.match(core) and len(core) <= 16:
        return True
    return any(core.lower().startswith(r) for r in _RELATIVE) and len(core) <= 8


def _subject(prev: str) -> str:
    """The topic of a question: text before its question word, without years."""
    m = _QWORDS.search(prev)
    head = prev[: m.start()] if m and m.start() > 1 else prev
    head = _YEAR.sub("", head)
    return head.strip(" ，,。？?的")


def rewrite(question: str, history: Sequence[Any] | None = None) -> str:
    """Standalone query for ``question`` given the conversation ``history`` (oldest first).

    Returns the question unchanged when it is not elliptical or there is no history.
    """
    q = question.strip()
    prev = _previous_query(history)
    if not prev or not _is_elliptical(q):
        return q
    prev_years = years_in(prev)
    new_year: int | None = None
    m = _YEAR.search(q)
    if m:
        new_year = int(m.group(1) or m.group(2))
    else:
        for word, delta in _RELATIVE.items():
            if word in q.lower() and prev_years:
                new_year = prev_years[0] + delta
                break
    core = _ELLIPTIC_END.sub("", q)
    core = _PRONOUN.sub("", core).strip()
    core = _EN_FOLLOW.sub("", core).strip()
    core = _YEAR.sub("", core)
    for word in _RELATIVE:
        core = core.replace(word, "")
    core = core.strip(" ，,的")

    if new_year is not None and not core:
        # Same question, another year.
        if prev_years:
            return _YEAR.sub(f"{new_year}年", prev, count=1)
        return f"{new_year}年{prev}"
    subject = _subject(prev)
    year_prefix = f"{new_year}年" if new_year is not None else (f"{prev_years[0]}年" if prev_years and not _YEAR.search(core) else "")
    if core and _QWORDS.search(core):
        # "这个项目投资多少": a new question about the previous subject.
        return f"{year_prefix}{subject}{core}"
    if core:
        # "那养老呢": the previous question's frame about a new subject.
        m = _QWORDS.search(prev)
        frame = prev[m.start():] if m else ""
        return f"{year_prefix}{core}{frame}"
    return prev
