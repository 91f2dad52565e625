"""HTML and markdown of answers, source cards, tables and status lines (pure functions, no Gradio)."""
from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from index.kb import KnowledgeBase
from qa import Answer

from .i18n import TABLE_HEADERS, tr

_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}#|~$!])")


def md_text(text: Any) -> str:
    """Escape text for the chat's markdown: HTML-escaped, markdown punctuation backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False)).replace("\n", " ")


def esc(text: Any) -> str:
    """HTML-escape anything for the sources panel."""
    return html.escape(str(text if text is not None else ""), quote=True)


def marker(n: int, linked: bool = True, lang: str = "zh") -> str:
    """Citation marker ``[n]``, a link to the source card when ``linked``."""
    if linked:
        return f'<a href="#src-{n}" class="wenda-cite" title="{esc(tr("cite_title", lang, n=n))}">[{n}]</a>'
    return f"\\[{n}\\]"


def flag_mark(lang: str = "zh") -> str:
    """The mark after a generated sentence that could not be fully verified."""
    return f'<span class="wenda-flag" title="{esc(tr("flag_title", lang))}">{esc(tr("flag", lang))}</span>'


def render_answer_md(answer: Answer, linked: bool = True) -> str:
    """The chat message for an answer (in the question's language): follow-up reading, bold short
    answer, sentence(s) with [n] markers."""
    lang = answer.lang
    parts: list[str] = []
    if answer.rewritten_query and answer.rewritten_query.strip() != answer.question.strip():
        parts.append(f"_{tr('understood_as', lang, q=md_text(answer.rewritten_query))}_")
    if answer.not_found:
        parts.append(md_text(answer.message or tr("not_found", lang)))
        if answer.related:
            parts.append(tr("related_note", lang))
        return "\n\n".join(parts)
    if answer.short_answer:
        parts.append(f"**{md_text(answer.short_answer)}**")

    def flag(s: Any) -> str:
        return (" " + flag_mark(lang)) if getattr(s, "flagged", False) else ""

    if answer.mode == "llm" and answer.summary:
        # Generated prose: sentences in a row, each with its citation (and a mark when unverified).
        parts.append("".join(f"{md_text(s.text)}{marker(s.citation, linked, lang)}{flag(s)}" for s in answer.summary))
    elif answer.summary:
        parts.append("\n".join(f"- {md_text(s.text)} {marker(s.citation, linked, lang)}{flag(s)}" for s in answer.summary))
    elif answer.sentence:
        parts.append(f"{md_text(answer.sentence)} {marker(1, linked, lang)}")
    if answer.message:
        parts.append(f"_{md_text(answer.message)}_")
    return "\n\n".join(parts)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def highlight(text: str, spans: Sequence[tuple[int, int]], bold: tuple[int, int] | None = None) -> str:
    """HTML of ``text`` with ``spans`` wrapped in <mark> (and ``bold`` in <strong>), everything escaped."""
    n = len(text)
    spans = _merge([(max(0, s), min(n, e)) for s, e in spans if 0 <= s < e])
    bold = bold if bold and 0 <= bold[0] < bold[1] <= n else None
    out, pos = [], 0
    for s, e in spans:
        out.append(esc(text[pos:s]))
        inner = esc(text[s:e])
        if bold and s <= bold[0] and bold[1] <= e:
            inner = (esc(text[s:bold[0]]) + "<strong>" + esc(text[bold[0]:bold[1]]) + "</strong>"
                     + esc(text[bold[1]:e]))
        out.append(f"<mark>{inner}</mark>")
        pos = e
    out.append(esc(text[pos:]))
    return "".join(out)


def view_link(doc_id: str, start: int, end: int, lang: str = "zh") -> str:
    """A card's link opening the whole document with ``start:end`` (offsets into its cleaned text) marked."""
    return (f'<a href="#" class="wenda-view" data-doc="{esc(doc_id)}" data-start="{int(start)}" '
            f'data-end="{int(end)}">{esc(tr("view_link", lang))}</a>')


def _card(card_id: str, label: str, title: str, date: str, section: str, doc_id: str, score: float, body: str,
          lang: str, page: int | None = None, span: tuple[int, int] | None = None) -> str:
    page_label = tr("page", lang, n=page) if page else ""
    meta = " · ".join(esc(x) for x in (date, section, page_label) if x)
    view = f" · {view_link(doc_id, span[0], span[1], lang)}" if span else ""
    return (
        f'<details class="wenda-card" id="{esc(card_id)}" open>'
        f'<summary><span class="wenda-n">{esc(label)}</span> <span class="wenda-title">{esc(title)}</span></summary>'
        f'<div class="wenda-meta">{meta}</div>'
        f'<div class="wenda-text">{body}</div>'
        f'<div class="wenda-foot"><span>{esc(doc_id)}{view}</span><span>{esc(tr("score", lang, s=score))}</span></div>'
        "</details>"
    )


def render_sources(answer: Answer, lang: str = "zh") -> str:
    """The sources panel: one card per cited passage with its supporting span marked, or related passages.

    Args:
        answer: The answer.
        lang: Language of the panel's own labels (the interface's).
    """
    if answer.not_found:
        head = f'<div class="wenda-notice">{esc(answer.message or tr("not_found", answer.lang))}</div>'
        if not answer.related:
            return head
        cards = [
            _card(f"rel-{i}", f"{i}", h.passage.title, h.passage.date, h.passage.section, h.passage.doc_id, h.score,
                  esc(h.passage.text), lang, h.passage.page, (h.passage.start, h.passage.end))
            for i, h in enumerate(answer.related, 1)
        ]
        return head + f'<div class="wenda-head">{esc(tr("related_head", lang))}</div>' + "".join(cards)
    cards = []
    for c in answer.citations:
        spans = [(c.start, c.end)]
        for s in answer.summary:
            if s.citation == c.n:
                pos = c.text.find(s.text)
                if pos >= 0:
                    spans.append((pos, pos + len(s.text)))
        bold = None
        if c.n == 1 and answer.short_answer:
            pos = c.text.find(answer.short_answer, c.start, c.end)
            if pos >= 0:
                bold = (pos, pos + len(answer.short_answer))
        cards.append(_card(f"src-{c.n}", f"[{c.n}]", c.title, c.date, c.section, c.doc_id, c.score,
                           highlight(c.text, spans, bold), lang, c.page,
                           (c.doc_start + c.start, c.doc_start + c.end)))
    stats = tr("stats", lang, c=answer.confidence, ms=answer.elapsed_ms)
    return (f'<div class="wenda-head">{esc(tr("sources_head", lang, n=len(cards)))}'
            f'<span class="wenda-stats">{esc(stats)}</span></div>' + "".join(cards))


def placeholder_sources(text: str | None = None, lang: str = "zh") -> str:
    """The sources panel before an answer (or with a notice)."""
    return f'<div class="wenda-empty">{esc(text if text is not None else tr("sources_empty", lang))}</div>'


def debug_rows(answer: Answer) -> list[list[Any]]:
    """One row per retrieval hit: rank, document, section, score, each channel's rank and score, features."""
    rows = []
    for i, h in enumerate(answer.hits, 1):
        section = h.passage.section.split(" › ")[-1] if h.passage.section else ""
        row: list[Any] = [i, h.passage.title, section, round(h.score, 4)]
        for name in ("dense", "sent", "bm25"):
            ch = h.channels.get(name)
            row += [ch.rank if ch else "", round(ch.score, 4) if ch else ""]
        row.append(", ".join(f"{k}={v:.3g}" for k, v in sorted(h.features.items())))
        rows.append(row)
    return rows


def messages(turns: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Chat messages for the turns; only the latest answer's [n] markers link to the sources panel."""
    out = []
    for i, t in enumerate(turns):
        out.append({"role": "user", "content": md_text(t["question"])})
        latest = i == len(turns) - 1
        out.append({"role": "assistant", "content": t["answer_md"] if latest else t.get("answer_plain", t["answer_md"])})
    return out


def format_time(iso: str) -> str:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM:SS UTC``."""
    return iso.replace("T", " ").replace("+00:00", " UTC") if iso else ""


def doc_table(kb: KnowledgeBase, lang: str = "zh") -> dict[str, Any]:
    """The documents table (headers in ``lang``)."""
    rows = [[d.doc_id, d.title, d.date, d.passages, format_time(d.indexed_at)] for d in kb.documents()]
    return {"headers": TABLE_HEADERS["docs"][lang], "data": rows}


def status_md(kb: KnowledgeBase, lang: str = "zh") -> str:
    """One line on the index (model, documents, passages, type, build time) and any unreadable files."""
    s = kb.status()
    if not s["model"]:
        return tr("status_no_index", lang)
    lines = [tr("status_line", lang, model=md_text(s["model"]), dim=s["dim"], docs=s["documents"],
                passages=s["passages"], type=md_text(s["index_type"]), built=md_text(format_time(s["built_at"])))]
    for doc, err in s["errors"].items():
        lines.append(tr("status_unreadable", lang, doc=md_text(doc), err=md_text(err)))
    return "\n".join(lines)
