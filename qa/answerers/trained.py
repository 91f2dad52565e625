"""The trained reader as answerer: the short answer is the reader's span, the supporting sentence the
sentence holding it, and "not found" comes from the reader's no-answer score together with the
retrieval evidence (a logistic model fitted on the gold fit split by ``python -m eval fit``)."""
from __future__ import annotations

import logging
import math
import threading
from typing import Any

from ..answer import DATE_RE, FIGURE_RE, rank_sentences, sentence_of
from ..rerank import requested_unit, unit_pattern
from ..types import Answer, SummarySentence
from .base import Answerer, AnswerRequest, Citations, finish, not_found

log = logging.getLogger(__name__)

# Passages read per question: the reader's cost grows linearly with them. Chosen on the gold fit split
# (hybrid answerer, strict short-answer hit): 1 passage 0.561, 2 passages 0.569, 3 0.553, 4 0.545 --
# further passages mostly add confident wrong spans from passages the re-ranker placed lower.
READ_PASSAGES = 2
# Before a fit: "not found" when the best span does not beat its passage's no-answer score.
DEFAULT_REFUSAL = {"bias": 0.0, "margin": 1.0, "confidence": 0.0, "threshold": 0.5}


def whole_figure(text: str, start: int, end: int, last_only: bool) -> tuple[int, int]:
    """The reader's span made a whole figure where it cuts one: widened to every figure (unit,
    ``以上``/``左右``, ``第``/``近``, ranges) it overlaps; with ``last_only`` (figure questions) a span
    running over several figures keeps the last, where the reader's end boundary points.

    The reader learned span boundaries from Wikipedia answers, which often stop before a unit; the
    figure pattern is the one the rules already use for short answers."""
    lo, hi = max(0, start - 12), min(len(text), end + 12)
    dates = [(m.start() + lo, m.end() + lo) for m in DATE_RE.finditer(text[lo:hi])]
    figs = sorted(dates + [(m.start() + lo, m.end() + lo) for m in FIGURE_RE.finditer(text[lo:hi])
                           if any(c.isdigit() for c in m.group())
                           and not any(a <= m.start() + lo and m.end() + lo <= b for a, b in dates)])
    inside = [f for f in figs if f[0] < end and f[1] > start]
    if not inside:
        return start, end
    if last_only and len(inside) > 1:
        return inside[-1]
    return min(start, inside[0][0]), max(end, inside[-1][1])


def refusal_inputs(margin: float, confidence: float) -> dict[str, float]:
    """Inputs of the not-found model: the reader's margin and the retrieval confidence's logit."""
    c = min(max(confidence, 1e-6), 1 - 1e-6)
    return {"margin": margin, "confidence": math.log(c / (1 - c))}


def answer_probability(inputs: dict[str, float], params: dict[str, float]) -> float:
    """Probability-like confidence that the documents answer the question."""
    z = params.get("bias", 0.0) + sum(params.get(k, 0.0) * v for k, v in inputs.items())
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


class ReaderAnswerer(Answerer):
    """Answers with :class:`qa.reader.Reader` over the top passages.

    Args:
        embedder: The assistant's embedder; when it is the default e5-small its loaded BERT is shared
            with the reader (one copy of the embeddings and lower layers in memory).
        weights: Reader weights file (default: the shipped ``qa/models/reader/reader.safetensors``).
        passages: How many of the top passages are read.
        refusal: Not-found model parameters; default the assistant's fitted ones (``calibration["reader"]``).
    """

    name = "reader"

    def __init__(self, embedder: Any = None, weights: Any = None, passages: int = READ_PASSAGES,
                 refusal: dict[str, float] | None = None) -> None:
        self.embedder = embedder
        self.refusal = refusal
        self.weights = weights
        self.passages = passages
        self._reader = None
        self._lock = threading.Lock()

    @property
    def reader(self):
        """The loaded reader (loaded on first use)."""
        if self._reader is None:
            with self._lock:
                if self._reader is None:
                    from index.embed import DEFAULT_MODEL

                    from ..reader import DEFAULT_WEIGHTS, Reader

                    base = None
                    if self.embedder is not None and self.embedder.model_name == DEFAULT_MODEL:
                        base = self.embedder.model[0].auto_model
                    self._reader = Reader(self.weights or DEFAULT_WEIGHTS, base_model=base)
        return self._reader

    def warm_up(self) -> None:
        self.reader.read("warm up", ["warm up passage."])

    def answer(self, req: AnswerRequest, answer: Answer, assistant: Any) -> Answer:
        hits = req.hits[:self.passages]
        retrieval_conf = assistant.confidence(assistant.refusal_features(req.rewritten, req.hits), req.info.same_language)
        if retrieval_conf < assistant.calibration["threshold"]:
            # The retrieval evidence alone says "not found" (the same calibrated gate as the rules').
            answer.confidence = retrieval_conf
            return not_found(answer, req)
        spans = self.reader.read(req.rewritten, [h.passage.text for h in hits], top=len(hits))
        unit = requested_unit(req.rewritten) if req.qtype == "number" else ""
        if unit:
            # Sanity filter: "多少张" wants a span in 张; a span without the unit answers something else.
            pattern = unit_pattern(unit)
            spans = [sp for sp in spans if pattern.search(hits[sp.passage].passage.text[
                slice(*whole_figure(hits[sp.passage].passage.text, sp.start, sp.end, True))])]
        if not spans:
            answer.confidence = 0.0
            return not_found(answer, req)
        best = spans[0]
        params = self.refusal or assistant.calibration.get("reader") or DEFAULT_REFUSAL
        answer.confidence = answer_probability(refusal_inputs(best.margin, retrieval_conf), params)
        if answer.confidence < params.get("threshold", 0.5):
            return not_found(answer, req)
        hit = hits[best.passage]
        text = hit.passage.text
        a, b = whole_figure(text, best.start, best.end, last_only=req.qtype in ("number", "time"))
        s, e = sentence_of(text, a)
        e = max(e, b)  # a span running past a sentence end keeps the whole span cited
        citations = Citations()
        citations.cite(hit, s, e)
        answer.sentence = text[s:e]
        if req.style != "summary":
            answer.short_answer = text[a:b].strip()
        if req.wants_summary:
            answer.summary = self._summary(req, spans, hits, citations, params, retrieval_conf)
        return finish(answer, req, citations)

    @staticmethod
    def _summary(req: AnswerRequest, spans: list, hits: list, citations: Citations, params: dict[str, float],
                 retrieval_conf: float, k: int = 3) -> list[SummarySentence]:
        """Up to k sentences: those holding the reader's confident spans, best first, then the
        best-ranked other sentences of the cited passages when the reader found fewer."""
        out: list[SummarySentence] = []
        seen: set[tuple[str, int]] = set()
        for span in spans:
            if len(out) >= k:
                break
            if answer_probability(refusal_inputs(span.margin, retrieval_conf), params) < params.get("threshold", 0.5):
                continue
            hit = hits[span.passage]
            s, e = sentence_of(hit.passage.text, span.start)
            e = max(e, span.end)
            if (hit.passage.id, s) not in seen:
                seen.add((hit.passage.id, s))
                out.append(SummarySentence(hit.passage.text[s:e], citations.cite(hit, s, e)))
        if len(out) < k:
            cited = [h for h in hits if citations.cited(h.passage.id)]
            for sent in rank_sentences(req.info, cited, req.qtype, req.retriever, top=len(cited)):
                if len(out) >= k:
                    break
                if (sent.hit.passage.id, sent.start) not in seen and len(sent.text) >= 8:
                    seen.add((sent.hit.passage.id, sent.start))
                    out.append(SummarySentence(sent.text, citations.cite(sent.hit, sent.start, sent.end)))
        return out
