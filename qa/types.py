"""Named results crossing module boundaries: Hit, Citation, SummarySentence, Answer."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from index.types import Passage


@dataclass
class ChannelScore:
    """One retrieval channel's view of a passage (for the debug view)."""

    rank: int
    score: float


@dataclass
class Hit:
    """A retrieved passage with its fused/reranked score and per-channel ranks and scores."""

    passage: Passage
    score: float
    channels: dict[str, ChannelScore] = field(default_factory=dict)
    features: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passage": self.passage.to_dict(),
            "score": self.score,
            "channels": {k: asdict(v) for k, v in self.channels.items()},
            "features": dict(self.features),
        }


@dataclass
class Citation:
    """A cited passage and the exact span (offsets into the passage text) that supports the answer."""

    n: int
    passage_id: str
    doc_id: str
    title: str
    date: str
    section: str
    text: str
    start: int
    end: int
    doc_start: int
    score: float = 0.0
    page: int | None = None  # the PDF page where the passage starts; None for other formats

    @property
    def span(self) -> str:
        """The supporting text: ``text[start:end]``."""
        return self.text[self.start:self.end]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SummarySentence:
    """A sentence of a summary, taken verbatim from a cited passage."""

    text: str
    citation: int  # the Citation.n it comes from
    flagged: bool = False  # generated mode: shown, but not fully supported by the cited passage


@dataclass
class Answer:
    """What the assistant says, every shown sentence traceable to a citation span.

    Attributes:
        question: The question as asked.
        rewritten_query: The standalone query actually searched (follow-ups inherit context).
        short_answer: A figure, name or short span, when the question asks for one.
        sentence: The supporting sentence (== citations[0].span) or "".
        summary: Up to 3 extracted sentences for why/how/what-measures questions.
        citations: Cited passages; [0] holds the supporting sentence.
        confidence: 0..1, calibrated against the gold set's unanswerable questions.
        not_found: True when the documents do not support an answer.
        related: Closest passages (shown as related reading when not found).
        hits: Ranked retrieval hits (debug view).
        lang: "zh" or "en" (language of the question).
        elapsed_ms: Time spent answering.
    """

    question: str
    rewritten_query: str
    short_answer: str = ""
    sentence: str = ""
    summary: list[SummarySentence] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    confidence: float = 0.0
    not_found: bool = False
    related: list[Hit] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    lang: str = "zh"
    elapsed_ms: float = 0.0
    mode: str = "extractive"
    message: str = ""

    @property
    def text(self) -> str:
        """The answer as one line of text with citation markers."""
        if self.not_found:
            return self.message
        if self.summary:
            return "".join(f"{s.text}[{s.citation}]" + ("（未核实）" if s.flagged else "") for s in self.summary)
        lead = f"{self.short_answer} — " if self.short_answer else ""
        return f"{lead}{self.sentence}[1]" if self.sentence else lead

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (the API's payload)."""
        return {
            "question": self.question,
            "answer": self.text,
            "short_answer": self.short_answer,
            "sentence": self.sentence,
            "summary": [asdict(s) for s in self.summary],
            "not_found": self.not_found,
            "rewritten_query": self.rewritten_query,
            "confidence": round(self.confidence, 4),
            "lang": self.lang,
            "mode": self.mode,
            "elapsed_ms": round(self.elapsed_ms, 1),
            "citations": [
                {
                    "n": c.n, "id": c.passage_id, "doc": c.doc_id, "title": c.title, "date": c.date,
                    "section": c.section, "text": c.text, "start": c.start, "end": c.end, "score": round(c.score, 4),
                    "page": c.page,
                }
                for c in self.citations
            ],
            "related": [
                {"id": h.passage.id, "doc": h.passage.doc_id, "title": h.passage.title, "date": h.passage.date,
                 "section": h.passage.section, "text": h.passage.text, "score": round(h.score, 4),
                 "page": h.passage.page}
                for h in self.related
            ],
        }
