"""One seam for answering: what every answerer is given and must return."""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from ..answer import make_citation, not_found_message
from ..retrieval import HybridRetriever, QueryInfo
from ..types import Answer, Citation, Hit


@dataclass
class AnswerRequest:
    """A retrieved question, ready to be answered.

    Attributes:
        question: The question as asked.
        rewritten: The standalone query (follow-ups inherit context); answerers read this one.
        info: Query analysis (tokens, vector, years).
        qtype: Question type from :func:`qa.rerank.question_type`.
        hits: Re-ranked hits, best first (at least one).
        retriever: The retriever (idf, sentence tables) of the index in use.
        k: Passages the caller asked for.
        style: "auto", "short" or "summary".
        t0: ``time.perf_counter()`` when the question arrived.
    """

    question: str
    rewritten: str
    info: QueryInfo
    qtype: str
    hits: list[Hit]
    retriever: HybridRetriever
    k: int = 5
    style: str = "auto"
    t0: float = field(default_factory=time.perf_counter)

    @property
    def wants_summary(self) -> bool:
        return self.style == "summary" or (self.style == "auto" and self.qtype in ("explain", "list"))


class Answerer(ABC):
    """Turns retrieved hits into an :class:`~qa.types.Answer` (short answer, sentence, summary,
    citations) or a "not found". Chosen by configuration (``WENDA_ANSWERER``), never by the UI."""

    name: str = ""

    @abstractmethod
    def answer(self, req: AnswerRequest, answer: Answer, assistant: Any) -> Answer:
        """Fill ``answer`` (already holding question, rewritten query, hits and language) and return it."""

    def warm_up(self) -> None:
        """Load models ahead of the first question (optional)."""


class Citations:
    """Numbers cited passages in order of first use ([1] holds the supporting sentence)."""

    def __init__(self) -> None:
        self.items: list[Citation] = []
        self._by_passage: dict[str, int] = {}

    def cite(self, hit: Hit, start: int, end: int) -> int:
        pid = hit.passage.id
        if pid not in self._by_passage:
            self._by_passage[pid] = len(self.items) + 1
            self.items.append(make_citation(len(self.items) + 1, hit, start, end))
        return self._by_passage[pid]

    def cited(self, passage_id: str) -> bool:
        return passage_id in self._by_passage


def not_found(answer: Answer, req: AnswerRequest, unconfirmed: bool = False) -> Answer:
    """Mark ``answer`` as "not found", with the closest passages as related reading (``unconfirmed``:
    a passage was found but its figure could not be confirmed; the message says so)."""
    answer.not_found = True
    answer.message = not_found_message(answer.question, unconfirmed)
    answer.related = req.hits[:3]
    answer.elapsed_ms = (time.perf_counter() - req.t0) * 1000
    return answer


def finish(answer: Answer, req: AnswerRequest, citations: Citations) -> Answer:
    """Attach citations and related passages, stamp the time."""
    answer.citations = citations.items
    answer.related = [h for h in req.hits[:req.k] if not citations.cited(h.passage.id)][:3]
    answer.elapsed_ms = (time.perf_counter() - req.t0) * 1000
    return answer
