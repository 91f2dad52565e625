"""The generated-answer mode: retrieve as usual, let an LLM phrase the answer, keep only what checks out.

    from qa.generate import generate_answer
    answer = generate_answer(assistant, "2025年太原新增养老床位多少张？")   # Answer(mode="llm")

Steps: the extractive :meth:`Assistant.ask` runs first (retrieval, refusal calibration, and the
fallback answer in one go); its cited passages and the next best hits (3 by default) are numbered
[1]..[n] in a short prompt (:func:`qa.llm.build_messages`); the completion is checked sentence by
sentence (:class:`qa.verify.Verifier`). Kept sentences become the answer's ``summary`` with
citations pointing at their supporting sentences; flagged ones are shown with ``flagged=True``;
removed ones are dropped. When the server is not configured, unreachable or fails, or nothing
generated survives the check, the extractive answer is returned with ``message`` saying so.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Iterator, Sequence

from index.textproc import has_cjk, normalize

from .answer import extract_short
from .llm import (
    DEFAULT_MAX_TOKENS, DEFAULT_PASSAGE_CHARS, DEFAULT_PASSAGES, LLMClient, LLMConfig, LLMError, LLMUnavailable,
    build_messages,
)
from .rerank import question_type
from .types import Answer, Hit, SummarySentence
from .verify import FLAG, KEEP, Verification, Verifier, extract_numbers

log = logging.getLogger(__name__)

UNAVAILABLE_ZH = "生成服务不可用，已回退为摘录式回答"
UNAVAILABLE_EN = "The generation service is unavailable; showing the extractive answer instead."
UNVERIFIED_ZH = "生成的回答未能通过原文核对，已回退为摘录式回答"
UNVERIFIED_EN = "The generated answer could not be verified against the sources; showing the extractive answer instead."
REMOVED_ZH = "已删除 {n} 句无法在原文中核实的内容。"
REMOVED_EN = "{n} sentence(s) that the sources do not support were removed."
FLAGGED_ZH = "标为“未核实”的句子未能在引用段落中完全核实，请对照原文。"
FLAGGED_EN = "Sentences marked “unverified” are not fully supported by the cited passage; check the source."


@dataclass
class GenerationResult:
    """What the generated mode produced, for the UI and the evaluation.

    Attributes:
        answer: The answer shown (``mode == "llm"``, or the extractive fallback with a message).
        verification: The sentence check of the generated text (None when nothing was generated).
        raw_text: The completion as generated.
        llm_ms: Time spent waiting for the LLM.
        fallback: Why the extractive answer was returned ("" when the generated one was used):
            "refused", "unavailable", "error", "unverified" or "no_answer".
        passages: The hits shown to the model, in prompt order ([1]..[n]).
        extractive: The extractive answer computed on the way (the fallback; for comparisons).
    """

    answer: Answer
    verification: Verification | None = None
    raw_text: str = ""
    llm_ms: float = 0.0
    fallback: str = ""
    passages: tuple[Hit, ...] = ()
    extractive: Answer | None = None


_clients: dict[LLMConfig, LLMClient] = {}
_verifiers: dict[int, Verifier] = {}
_shared_lock = threading.Lock()


def default_client() -> LLMClient | None:
    """A shared client for the ``WENDA_LLM_*`` environment (None when ``WENDA_LLM_URL`` is unset)."""
    config = LLMConfig.from_env()
    if config is None:
        return None
    with _shared_lock:
        if config not in _clients:
            _clients[config] = LLMClient(config)
        return _clients[config]


def verifier_for(assistant: Any) -> Verifier:
    """The shared :class:`Verifier` of an assistant's embedder."""
    embedder = assistant.embedder
    with _shared_lock:
        v = _verifiers.get(id(embedder))
        if v is None or v.embedder is not embedder:
            v = _verifiers[id(embedder)] = Verifier(embedder)
        return v


def prompt_passages(extractive: Answer, n: int = DEFAULT_PASSAGES) -> list[Hit]:
    """The passages shown to the model: those the extractive answer cites, then the best other hits."""
    by_id = {h.passage.id: h for h in extractive.hits}
    out: list[Hit] = []
    for c in extractive.citations:
        h = by_id.get(c.passage_id)
        if h is not None and h not in out:
            out.append(h)
    for h in extractive.hits:
        if len(out) >= n:
            break
        if h not in out:
            out.append(h)
    return out[:n]


def _message(lang: str, zh: str, en: str, **kw: Any) -> str:
    return (zh if lang == "zh" else en).format(**kw)


def _fallback(extractive: Answer, reason: str, t0: float, **extra: Any) -> GenerationResult:
    answer = replace(extractive)
    if reason in ("unavailable", "error"):
        answer.message = _message(answer.lang, UNAVAILABLE_ZH, UNAVAILABLE_EN)
    elif reason in ("unverified", "no_answer"):
        answer.message = _message(answer.lang, UNVERIFIED_ZH, UNVERIFIED_EN)
    answer.mode = "extractive"
    answer.elapsed_ms = (time.perf_counter() - t0) * 1000 + extractive.elapsed_ms
    return GenerationResult(answer=answer, fallback=reason, extractive=extractive, **extra)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", normalize(text))


def _values(text: str, liberal: bool = False) -> list[float]:
    return [v for v, _ in extract_numbers(text, liberal=liberal)]


def _short_answer(assistant: Any, answer: Answer, verification: Verification, extractive: Answer) -> str:
    """The short answer: the extractive one when the kept sentences say the same (it is a verbatim
    passage slice: 2000张 for a generated "2000"), else a figure or date extracted from the first
    kept sentence that the cited passage holds too."""
    kept = "".join(s.text for s in verification.kept)
    ext = extractive.short_answer
    if ext:
        ext_values = _values(ext)
        if _squash(ext) in _squash(kept) or (ext_values and all(
                any(abs(v - x) <= 1e-6 * max(1.0, abs(v)) for x in _values(kept)) for v in ext_values)):
            return ext
    qtype = question_type(answer.rewritten_query)
    if qtype not in ("number", "time"):
        return ""
    info = assistant.retriever.analyze(answer.rewritten_query)
    cites = {c.n: c for c in verification.citations}
    for s in verification.kept:
        short, _ = extract_short(s.text, info, qtype, assistant.retriever.idf)
        citation = cites.get(s.citation)
        if not short or citation is None:
            continue
        if _squash(short) in _squash(citation.text):
            return short
        values = _values(short)
        have = _values(citation.text, liberal=True)
        if values and all(any(abs(v - x) <= 1e-6 * max(1.0, abs(v)) for x in have) for v in values):
            return short
    return ""


def _finish(assistant: Any, extractive: Answer, passages: list[Hit], text: str, llm_ms: float, t0: float,
            verifier: Verifier | None) -> GenerationResult:
    verifier = verifier or verifier_for(assistant)
    verification = verifier.verify(text, passages, question=extractive.rewritten_query)
    extra = {"verification": verification, "raw_text": text, "llm_ms": llm_ms, "passages": tuple(passages)}
    if not verification.kept:
        reason = "no_answer" if verification.no_answer and not verification.sentences else "unverified"
        log.info("generated answer not used (%s): %r", reason, text[:200])
        return _fallback(extractive, reason, t0, **extra)
    answer = Answer(question=extractive.question, rewritten_query=extractive.rewritten_query,
                    hits=extractive.hits, lang=extractive.lang, confidence=extractive.confidence, mode="llm")
    answer.summary = [SummarySentence(s.text, s.citation, flagged=s.action == FLAG)
                      for s in verification.shown]
    answer.citations = verification.citations
    cited = {c.passage_id for c in answer.citations}
    answer.related = [h for h in extractive.hits if h.passage.id not in cited][:3]
    answer.short_answer = _short_answer(assistant, answer, verification, extractive)
    notes = []
    if verification.removed:
        notes.append(_message(answer.lang, REMOVED_ZH, REMOVED_EN, n=len(verification.removed)))
    if verification.flagged:
        notes.append(_message(answer.lang, FLAGGED_ZH, FLAGGED_EN))
    answer.message = " ".join(notes)
    answer.elapsed_ms = (time.perf_counter() - t0) * 1000 + extractive.elapsed_ms
    return GenerationResult(answer=answer, extractive=extractive, **extra)


def stream_generate(assistant: Any, question: str, history: Sequence[Any] | None = None, k: int = 5,
                    docs: Sequence[str] | None = None, years: Sequence[int] | None = None,
                    client: LLMClient | None = None, verifier: Verifier | None = None,
                    n_passages: int = DEFAULT_PASSAGES, max_tokens: int = DEFAULT_MAX_TOKENS,
                    passage_chars: int = DEFAULT_PASSAGE_CHARS, stream: bool = True,
                    ) -> Iterator[str | GenerationResult]:
    """Generate an answer, yielding the text generated so far, then the checked :class:`GenerationResult`.

    Args:
        assistant: A loaded :class:`qa.Assistant`.
        question: The question; history/k/docs/years as for :meth:`Assistant.ask`.
        client: LLM client (default: from ``WENDA_LLM_*``; unset means fall back at once).
        verifier: Sentence checker (default: one over ``assistant.embedder``).
        n_passages: Passages shown to the model (2-4 is sensible on 2 CPU cores).
        max_tokens: Completion budget.
        passage_chars: Character budget per passage in the prompt.
        stream: Stream the completion (SSE); False sends one blocking request (nothing is yielded
            before the result).

    Raises:
        QuestionError: empty, over-long or word-less question (as :meth:`Assistant.ask`).
    """
    t0 = time.perf_counter()
    extractive = assistant.ask(question, history=history, k=k, docs=docs, years=years)
    t0 = time.perf_counter()  # extractive.elapsed_ms already counts the retrieval
    if extractive.not_found:
        yield GenerationResult(answer=extractive, fallback="refused", extractive=extractive)
        return
    passages = prompt_passages(extractive, n_passages)
    client = client or default_client()
    if client is None:
        log.info("no LLM configured (WENDA_LLM_URL unset): extractive answer")
        yield _fallback(extractive, "unavailable", t0, passages=tuple(passages))
        return
    prompt_q = extractive.rewritten_query if history else extractive.question
    messages = build_messages(prompt_q, passages, max_chars=passage_chars)
    t_llm = time.perf_counter()
    text = ""
    try:
        if stream:
            for delta in client.stream_chat(messages, max_tokens=max_tokens):
                text += delta
                yield text
        else:
            text = client.chat(messages, max_tokens=max_tokens).text
    except LLMUnavailable as exc:
        log.warning("%s", exc)
        yield _fallback(extractive, "unavailable", t0, raw_text=text, passages=tuple(passages),
                        llm_ms=(time.perf_counter() - t_llm) * 1000)
        return
    except LLMError as exc:
        log.warning("LLM request failed: %s", exc)
        yield _fallback(extractive, "error", t0, raw_text=text, passages=tuple(passages),
                        llm_ms=(time.perf_counter() - t_llm) * 1000)
        return
    llm_ms = (time.perf_counter() - t_llm) * 1000
    yield _finish(assistant, extractive, passages, text, llm_ms, t0, verifier)


def generate(assistant: Any, question: str, history: Sequence[Any] | None = None, **kwargs: Any) -> GenerationResult:
    """:func:`stream_generate` without streaming: the final :class:`GenerationResult`."""
    kwargs.setdefault("stream", False)
    result = None
    for item in stream_generate(assistant, question, history, **kwargs):
        result = item
    assert isinstance(result, GenerationResult)
    return result


def generate_answer(assistant: Any, question: str, history: Sequence[Any] | None = None, **kwargs: Any) -> Answer:
    """The generated-mode :class:`Answer` (``mode == "llm"``, or the extractive fallback with ``message``).

    Keyword arguments are those of :func:`stream_generate` (k, docs, years, client, max_tokens...).
    """
    return generate(assistant, question, history, **kwargs).answer


def answer_language_ok(answer: Answer) -> bool:
    """Whether a generated answer is in the question's language (a sanity check for the UI/eval)."""
    text = "".join(s.text for s in answer.summary)
    return has_cjk(text) == (answer.lang == "zh") if text else True


__all__ = [
    "GenerationResult", "generate", "generate_answer", "stream_generate", "default_client", "verifier_for",
    "prompt_passages", "UNAVAILABLE_ZH", "UNAVAILABLE_EN", "UNVERIFIED_ZH", "KEEP", "FLAG",
]
