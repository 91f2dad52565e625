"""Chat and API handlers: plain functions over :mod:`qa`, wired to the page by :mod:`ui.layout`.

User mistakes (an empty, over-long or word-less question) are shown as a short message (a toast in
the page, an ``AppError`` for ``/ask`` callers) and logged as one line; unexpected errors log their
traceback and show a friendly message. (No ``from __future__ import annotations``: Gradio reads the
handlers' type hints at runtime, for ``gr.Request`` and the API description.)
"""
import logging
import time
from collections.abc import Iterator
from typing import Any

import gradio as gr

from index.textproc import has_cjk
from index.workspace import WorkspaceError, corpus_profile
from qa import Answer, Assistant, QuestionError, validate_question
from qa.assistant import MAX_QUESTION_CHARS
from qa.llm import llm_configured
from qa.service import EmptyKnowledgeBase, Service

from .conversation import chat_messages, message_turn, new_turn, sources_panel, versions
from .i18n import (
    STYLE_CHOICES,
    TABLE_HEADERS,
    norm_lang,
    question_lang,
    request_lang,
    tr,
)
from .render import debug_rows, esc, md_text, placeholder_sources

log = logging.getLogger("wenda.app")

SERVICE: Service | None = None  # set by ui.layout.build_demo


def set_service(svc: Service | None) -> Service:
    """Use ``svc`` (default: a new :class:`Service` over ``WENDA_HOME``) for every handler."""
    global SERVICE
    SERVICE = svc or Service()
    return SERVICE


def service() -> Service:
    """The process's knowledge bases and assistants (created on first use)."""
    global SERVICE
    if SERVICE is None:
        SERVICE = Service()
    return SERVICE


def kb_title(kb: str | None, lang: str = "zh") -> str:
    """A knowledge base's display title in ``lang``: in English its corpus manifest's ``title_en`` when it
    has one, else (and in Chinese) its own title."""
    try:
        name = service().name(kb)
        info = service().workspace.info(name)
    except WorkspaceError:
        return str(kb or "")
    if norm_lang(lang) == "en":
        try:
            return corpus_profile(service().kb(name).corpus_dir)["title_en"] or info.title
        except WorkspaceError:
            pass
    return info.title


def kb_choices(lang: str = "zh") -> list[tuple[str, str]]:
    """(label, name) of every knowledge base, default first; titles in ``lang`` (:func:`kb_title`)."""
    out = []
    for info in service().list():
        if norm_lang(lang) == "en":
            title = kb_title(info.name, lang)
            out.append((f"{title} ({info.name})" if title != info.name else info.name, info.name))
        else:
            out.append((f"{info.title}（{info.name}）" if info.title != info.name else info.name, info.name))
    return out


def kb_examples(kb: str | None) -> list[str]:
    """Example questions of a knowledge base (its corpus manifest's ``examples``)."""
    try:
        return list(corpus_profile(service().kb(kb).corpus_dir)["examples"])
    except WorkspaceError:
        return []


def warn(message: str, lang: str = "zh") -> None:
    """Show a user mistake as a warning toast, titled in ``lang`` (escaped: the toast renders HTML)."""
    gr.Warning(esc(message), title=tr("toast_warning", lang))


def notify(message: str, lang: str = "zh", duration: float | None = 3) -> None:
    """Show a short confirmation as an info toast, titled in ``lang``."""
    gr.Info(esc(message), duration=duration, title=tr("toast_info", lang))


def kb_error(exc: BaseException, lang: str = "zh") -> str:
    """A knowledge-base problem as the user reads it."""
    if isinstance(exc, EmptyKnowledgeBase):
        return tr("kb_empty", lang)
    return tr("kb_unavailable", lang, e=exc)


def friendly_question_error(question: Any, kb: str | None = None, lang: str | None = None) -> str:
    """What is wrong with an unusable question, in the question's language (else ``lang``).

    An empty question gets one of the knowledge base's own example questions, in that language when
    it has one.
    """
    lang = question_lang(question, lang or "zh")
    q = question.strip() if isinstance(question, str) else ""
    if not q:
        examples = kb_examples(kb)
        example = next((e for e in examples if has_cjk(e) == (lang == "zh")), examples[0] if examples else "")
        return tr("q_empty_example", lang, example=example) if example else tr("q_empty", lang)
    if len(q) > MAX_QUESTION_CHARS:
        return tr("q_too_long", lang, n=len(q), max=MAX_QUESTION_CHARS)
    return tr("q_no_words", lang)


def _ask(assistant: Assistant, q: str, history: list[dict[str, Any]], k: int, docs: list[str] | None,
         years: list[int] | None, style: str, generated: bool) -> Iterator[str | Answer]:
    """The answer (last item); in the generated mode first the text generated so far (strings)."""
    if not generated:
        yield assistant.ask(q, history=history, k=k, docs=docs, years=years, style=style)
        return
    from qa.generate import stream_generate

    for item in stream_generate(assistant, q, history=history, k=k, docs=docs, years=years):
        yield item if isinstance(item, str) else item.answer


def chat(question: str, turns: list[dict[str, Any]] | None, k: float = 5, docs: list[str] | None = None,
         years: list[str] | None = None, style: str = "auto", generated: bool = False,
         kb: str | None = None, request: gr.Request | None = None) -> Iterator[tuple]:
    """Answer a chat question: first a "searching" placeholder, then the answer with its sources.

    With ``generated`` (the settings switch; only when WENDA_LLM_URL is set) the model's text is
    streamed into the chat, then replaced by the checked answer (or the extractive fallback). An
    unusable question leaves everything as it was and shows a warning toast.

    Yields:
        (chat messages, sources HTML, debug rows, turns state, question box value).
    """
    turns = list(turns or [])
    lang = request_lang(request)
    try:
        q = validate_question(question)
    except QuestionError as exc:
        log.info("question refused: %s", exc)
        warn(friendly_question_error(question, kb, lang), lang)
        yield chat_messages(turns), gr.skip(), gr.skip(), turns, gr.skip()
        return
    qlang = question_lang(q, lang)
    waiting = tr("searching", qlang) if service().loaded(kb) else tr("loading", qlang)
    pending = turns + [{"question": q, "answer_md": waiting}]
    yield chat_messages(pending), sources_panel(pending, placeholder_sources(waiting), lang), gr.skip(), turns, ""
    try:
        assistant = service().assistant(kb)
        history = [{"question": t["question"], "rewritten_query": t["rewritten_query"]}
                   for t in turns if t.get("rewritten_query")]
        answer = None
        last = 0.0
        for item in _ask(assistant, q, history, max(1, min(10, int(k or 5))), list(docs or []) or None,
                         [int(y) for y in (years or []) if str(y).strip().isdigit()] or None,
                         style if style in ("auto", "short", "summary") else "auto",
                         bool(generated) and llm_configured()):
            if isinstance(item, str):
                now = time.monotonic()
                if now - last >= 0.25:  # at most 4 updates a second
                    last = now
                    draft = f"_{tr('generating', qlang)}_\n\n{md_text(item)} ▌"
                    yield chat_messages(turns + [{"question": q, "answer_md": draft}]), gr.skip(), gr.skip(), turns, ""
            else:
                answer = item
        assert answer is not None
    except (QuestionError, WorkspaceError) as exc:
        message = friendly_question_error(question, kb, qlang) if isinstance(exc, QuestionError) else kb_error(exc, qlang)
        log.info("question %r not answered: %s", q, exc)
        turns.append(message_turn(q, message, kb, md_text(message)))
        yield chat_messages(turns), sources_panel(turns, placeholder_sources(message), lang), [], turns, ""
        return
    except Exception:
        log.exception("answering %r failed", q)
        message = tr("internal_error", qlang)
        turns.append(message_turn(q, message, kb, md_text(message)))
        yield chat_messages(turns), sources_panel(turns, placeholder_sources(message), lang), [], turns, ""
        return
    log.info("answered %r (rewritten %r) in %.0f ms, not_found=%s", q, answer.rewritten_query, answer.elapsed_ms,
             answer.not_found)
    turn = new_turn(answer, service().name(kb), versions(assistant), lang)
    turns.append(turn)
    yield chat_messages(turns), sources_panel(turns, turn["sources_html"], lang), debug_rows(answer), turns, ""


def clear_chat(request: gr.Request | None = None) -> tuple:
    """Start a new conversation.

    Returns:
        (chat messages, sources HTML, debug rows, turns state, question box value).
    """
    return gr.update(value=[], feedback_value=[]), placeholder_sources(lang=request_lang(request)), [], [], ""


def toggle_debug(show: bool) -> Any:
    """Show or hide the debug table."""
    return gr.update(visible=bool(show))


def localize(kb: str | None = None, request: gr.Request | None = None) -> tuple:
    """Page parts the browser's i18n does not translate, in the request's language.

    Returns:
        (answer-style radio update, debug table update, sources placeholder HTML, page heading,
        knowledge-base selector update with the titles in that language).
    """
    from .kb import header_md

    lang = request_lang(request)
    return (gr.update(choices=STYLE_CHOICES[lang]), gr.update(headers=TABLE_HEADERS["debug"][lang]),
            placeholder_sources(lang=lang), header_md(kb, lang), gr.update(choices=kb_choices(lang)))


def _api_error(message: str) -> gr.Error:
    """An error for API callers (no traceback in the server log: it is their mistake)."""
    return gr.Error(message, print_exception=False)


def api_ask(question: str, history: list[str] | None = None, k: int = 5, mode: str = "extractive",
            kb: str = "", request: gr.Request | None = None) -> dict[str, Any]:
    """Answer a question from the documents, with cited passages.

    Args:
        question: Chinese or English question (at most 500 characters).
        history: Optional previous questions (or their rewritten queries), oldest first, for follow-ups.
        k: Number of passages considered (1-10).
        mode: "extractive" (default) or "llm" (generated and checked; falls back to extractive with
            a "message" when no LLM server is configured or reachable).
        kb: Knowledge base to ask (default: the app's default one); ``/kb_list`` lists them.

    Returns:
        {"answer", "short_answer", "sentence", "summary", "not_found", "message", "rewritten_query",
        "confidence", "citations": [{"id", "doc", "title", "date", "section", "text", "start", "end", ...}], ...}
    """
    lang = question_lang(question, request_lang(request))
    try:
        q = validate_question(question)
    except QuestionError as exc:
        log.info("API question refused: %s", exc)
        raise _api_error(friendly_question_error(question, kb or None, lang)) from None
    try:
        k = max(1, min(10, int(k)))
    except (TypeError, ValueError):
        log.info("API question refused: k=%r", k)
        raise _api_error(tr("k_invalid", lang)) from None
    try:
        assistant = service().assistant(kb or None)
    except WorkspaceError as exc:
        log.info("API question for knowledge base %r refused: %s", kb, exc)
        raise _api_error(kb_error(exc, lang)) from None
    try:
        hist = [str(h) for h in (history or [])]
        if mode == "llm":
            from qa.generate import generate_answer

            answer = generate_answer(assistant, q, history=hist, k=k)
        else:
            answer = assistant.ask(q, history=hist, k=k)
    except Exception as exc:
        log.exception("API question %r failed", q)
        raise _api_error(tr("internal_error", lang)) from exc
    result = answer.to_dict()
    result["message"] = answer.message
    result["kb"] = service().name(kb or None)
    return result


def api_kb_list() -> list[dict[str, Any]]:
    """The knowledge bases: [{"name", "title", "created_at", "seed", "documents", "indexed"}], default first."""
    return [info.to_dict() for info in service().list()]
