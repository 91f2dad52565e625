"""The rule-based answerer: calibrated confidence over retrieval signals, best sentence by word
overlap, short answer by figure/date patterns (the answer step before the trained reader)."""
from __future__ import annotations

from typing import Any

from ..answer import extract_short, mmr_summary, rank_sentences, sentence_coverage
from ..rerank import requested_unit, unit_pattern
from ..types import Answer, SummarySentence
from .base import Answerer, AnswerRequest, Citations, finish, not_found

# A sentence supplying the asked figure must contain at least this idf-weighted share of the
# question's topic terms (sentences about another indicator share none of the specific terms).
MIN_FIGURE_SENTENCE_COVERAGE = 0.2


class RulesAnswerer(Answerer):
    """Word-overlap sentence choice and pattern-based short answers; refusal from the assistant's
    calibrated confidence (``python -m eval fit``)."""

    name = "rules"

    def answer(self, req: AnswerRequest, answer: Answer, assistant: Any) -> Answer:
        hits, info, qtype, retriever = req.hits, req.info, req.qtype, req.retriever
        answer.confidence = assistant.confidence(assistant.refusal_features(req.rewritten, hits), info.same_language)
        if answer.confidence < assistant.calibration["threshold"]:
            return not_found(answer, req)
        sentences = rank_sentences(info, hits, qtype, retriever, top=min(3, req.k))
        unit = requested_unit(req.rewritten) if qtype == "number" else ""
        if unit:
            # "多少张" wants a figure in 张 from a sentence about what the question asks.
            pattern = unit_pattern(unit)
            with_unit = [s for s in sentences[:8] if pattern.search(s.text)
                         and sentence_coverage(info, s.text, retriever, exclude=unit) >= MIN_FIGURE_SENTENCE_COVERAGE]
            if not with_unit:
                return not_found(answer, req)
            sentences.remove(with_unit[0])
            sentences.insert(0, with_unit[0])
        best = sentences[0]
        citations = Citations()
        citations.cite(best.hit, best.start, best.end)
        answer.sentence = best.text
        if req.wants_summary:
            answer.summary = [SummarySentence(s.text, citations.cite(s.hit, s.start, s.end))
                              for s in mmr_summary(sentences, k=3)]
        if req.style != "summary":
            answer.short_answer, _ = extract_short(best.text, info, qtype, retriever.idf)
        return finish(answer, req, citations)
