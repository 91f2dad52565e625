"""The conversation: turns, their display (every answer's [n] markers link to its own sources), the
copy kept in the browser (``gr.BrowserState``) and the Markdown export. Pure functions, no Gradio.

A turn is a dict::

    {"id", "time", "kb", "question", "rewritten_query", "answer" (compact answer dict, None when
     the question was not answered), "answer_text", "message", "versions", "vote",
     "answer_md", "answer_plain", "sources_html"}   # the last three: rendered, never stored

The browser copy holds the turns without their rendering, per knowledge base, each citation as a compact
record (:func:`compact_citation`: document id, title, date, section, page, passage id, the quoted span
with a little context and its offsets); it is re-rendered (and so re-escaped) when the page is reloaded,
since anything read back from the browser is untrusted. Its size is kept under :data:`MAX_STORED_BYTES`.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import re
import uuid
from typing import Any

from qa import Answer, Citation, SummarySentence

from .i18n import tr
from .render import esc, render_answer_md, render_sources

log = logging.getLogger("wenda.app")

STORAGE_VERSION = 1
# The browser copy lives in localStorage, which Chromium and Firefox cap at about 5 million characters
# per origin (shared with every other app on the same host and port). BrowserState stores it encrypted
# and base64-encoded (4 characters per 3 UTF-8 bytes), and the whole copy travels to the server and back
# after every answer, so it is kept to 1 MB of UTF-8 JSON (about 1.4 million stored characters): a few
# hundred answers. Beyond that the oldest turns go, those of other knowledge bases first.
MAX_STORED_BYTES = 1_000_000
MAX_STORED_TURNS = 200  # per knowledge base: bounds the work of restoring an (untrusted) copy
MAX_STORED_KBS = 10
CONTEXT_CHARS = 80  # passage text kept either side of a stored citation's quoted span
ELLIPSIS = "…"
MAX_TEXT = 4000
_CITATION_FIELDS = {f.name: f for f in dataclasses.fields(Citation)}
_MARKER_LINK = re.compile(r'<a href="#(src|rel)-(\d+)"')
_CARD_ID = re.compile(r'\bid="(src|rel)-(\d+)"')
RENDERED = ("answer_md", "answer_plain", "sources_html")


# --------------------------------------------------------------------------- turns
def versions(assistant: Any) -> dict[str, Any]:
    """Model id/sha256 and index build time/format of an assistant's index manifest."""
    manifest = getattr(getattr(assistant, "index", None), "manifest", None) or {}
    model = manifest.get("model") or {}
    return {"model": {"id": model.get("id", ""), "sha256": model.get("sha256", "")},
            "index": {"built_at": manifest.get("built_at", ""), "format_version": manifest.get("format_version")}}


def answer_data(answer: Answer) -> dict[str, Any]:
    """What :func:`answer_from_data` needs to render an answer again (related passages are left out)."""
    return {
        "short_answer": answer.short_answer, "sentence": answer.sentence,
        "summary": [dataclasses.asdict(s) for s in answer.summary],
        "citations": [dataclasses.asdict(c) for c in answer.citations],
        "confidence": answer.confidence, "not_found": answer.not_found, "lang": answer.lang,
        "elapsed_ms": answer.elapsed_ms, "mode": answer.mode, "message": answer.message,
    }


def compact_citation(c: dict[str, Any]) -> dict[str, Any]:
    """A citation as kept in the browser: its passage cut to the quoted span and :data:`CONTEXT_CHARS`
    either side (an ellipsis marks a cut), offsets shifted so ``doc_start + start`` and
    ``doc_start + end`` still locate the span in the document (the viewer's link). Idempotent."""
    text = str(c.get("text") or "")
    start = max(0, min(len(text), int(c.get("start") or 0)))
    end = max(start, min(len(text), int(c.get("end") or 0)))
    a, b = max(0, start - CONTEXT_CHARS), min(len(text), end + CONTEXT_CHARS)
    head = ELLIPSIS if a > 0 else ""
    out = {k: c[k] for k in ("n", "passage_id", "doc_id", "title", "date", "section", "page") if k in c}
    out.update(text=head + text[a:b] + (ELLIPSIS if b < len(text) else ""), start=start - a + len(head),
               end=end - a + len(head), doc_start=int(c.get("doc_start") or 0) + a - len(head),
               score=round(float(c.get("score") or 0.0), 4))
    return out


def _citation(data: dict[str, Any]) -> Citation:
    kwargs: dict[str, Any] = {}
    for name, f in _CITATION_FIELDS.items():
        if name not in data:
            continue
        value = data[name]
        if f.type in ("int", int):
            value = int(value)
        elif f.type in ("float", float):
            value = float(value)
        elif f.type in ("str", str):
            value = str(value)[:MAX_TEXT]
        kwargs[name] = value
    return Citation(**kwargs)


def answer_from_data(question: str, rewritten: str, data: dict[str, Any]) -> Answer:
    """An :class:`Answer` rebuilt from :func:`answer_data` (raises on malformed data)."""
    return Answer(
        question=question, rewritten_query=rewritten,
        short_answer=str(data.get("short_answer") or "")[:MAX_TEXT], sentence=str(data.get("sentence") or "")[:MAX_TEXT],
        summary=[SummarySentence(text=str(s["text"])[:MAX_TEXT], citation=int(s["citation"]),
                                 flagged=bool(s.get("flagged"))) for s in data.get("summary") or []],
        citations=[_citation(c) for c in data.get("citations") or []],
        confidence=float(data.get("confidence") or 0.0), not_found=bool(data.get("not_found")),
        lang="en" if data.get("lang") == "en" else "zh", elapsed_ms=float(data.get("elapsed_ms") or 0.0),
        mode="llm" if data.get("mode") == "llm" else "extractive", message=str(data.get("message") or "")[:MAX_TEXT],
    )


def new_turn(answer: Answer, kb: str, version: dict[str, Any], lang: str) -> dict[str, Any]:
    """The turn of an answered question, rendered (sources panel labels in ``lang``)."""
    from .feedback import now_iso

    return {
        "id": uuid.uuid4().hex[:16], "time": now_iso(), "kb": kb, "question": answer.question,
        "rewritten_query": answer.rewritten_query, "answer": answer_data(answer), "answer_text": answer.text,
        "message": answer.message, "versions": version, "vote": "",
        "answer_md": render_answer_md(answer, linked=True), "answer_plain": render_answer_md(answer, linked=False),
        "sources_html": render_sources(answer, lang),
    }


def message_turn(question: str, message: str, kb: str | None, answer_md: str) -> dict[str, Any]:
    """The turn of a question answered only by a message (knowledge base unavailable, an error)."""
    from .feedback import now_iso

    return {"id": uuid.uuid4().hex[:16], "time": now_iso(), "kb": kb or "", "question": question,
            "rewritten_query": "", "answer": None, "answer_text": message, "message": message, "versions": {},
            "vote": "", "answer_md": answer_md}


# --------------------------------------------------------------------------- display
def retarget(html: str, t: int) -> str:
    """Marker links and card ids of turn ``t`` made unique: ``src-3`` → ``src-t-3`` (our markup only:
    text is escaped, so it cannot hold ``<a href=`` or an ``id="…"`` attribute)."""
    html = _MARKER_LINK.sub(lambda m: f'<a href="#{m[1]}-{t}-{m[2]}"', html)
    return _CARD_ID.sub(lambda m: f'id="{m[1]}-{t}-{m[2]}"', html)


def chat_messages(turns: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Chat messages: the latest answer's markers link to ``#src-n``, every earlier one's to ``#src-t-n``
    (their sources stay in the panel, hidden until a marker is clicked)."""
    from .render import md_text

    out = []
    last = len(turns) - 1
    for i, t in enumerate(turns):
        out.append({"role": "user", "content": md_text(t["question"])})
        answer = t.get("answer_md", "")
        if i < last:
            answer = retarget(answer, i + 1) if t.get("sources_html") else t.get("answer_plain", answer)
        out.append({"role": "assistant", "content": answer})
    return out


def sources_panel(turns: list[dict[str, Any]], current: str, lang: str = "zh") -> str:
    """The sources panel: ``current`` (the latest answer's), then each earlier answer's sources, hidden
    until one of its markers is clicked (see ``SOURCES_JS`` in :mod:`ui.layout`)."""
    last = len(turns) - 1
    blocks = [f'<div class="wenda-turn" data-turn="{last + 1}">{current}</div>']
    for i in range(last):
        t = turns[i]
        if not t.get("sources_html"):
            continue
        head = f'<div class="wenda-head wenda-turn-head">{esc(tr("turn_sources_head", lang, t=i + 1, q=t["question"]))}</div>'
        blocks.append(f'<div class="wenda-turn" data-turn="{i + 1}" hidden>{head}{retarget(t["sources_html"], i + 1)}</div>')
    return "".join(blocks)


def feedback_values(turns: list[dict[str, Any]]) -> list[str | None]:
    """The chat's thumbs state, one per answer ("Like", "Dislike" or None)."""
    return [{"up": "Like", "down": "Dislike"}.get(t.get("vote") or "") for t in turns]


# --------------------------------------------------------------------------- the browser copy
def stored(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Turns as kept in the browser: without their rendering, citations compact, the latest
    :data:`MAX_STORED_TURNS`."""
    out = []
    for t in turns[-MAX_STORED_TURNS:]:
        if not t.get("id"):
            continue
        item = {k: v for k, v in t.items() if k not in RENDERED}
        if isinstance(item.get("answer"), dict):
            item["answer"] = {**item["answer"],
                              "citations": [compact_citation(c) for c in item["answer"].get("citations") or []]}
        out.append(item)
    return out


def _size(value: Any) -> int:
    """Bytes of ``value`` as the browser serialises it (JSON.stringify: UTF-8, no spaces)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _fit(kbs: dict[str, list[Any]], current: str) -> None:
    """Drop the oldest turns until the copy fits :data:`MAX_STORED_BYTES`: other knowledge bases' first
    (least recently used first), the current one's last (its latest turn always stays)."""
    sizes = {k: [_size(t) for t in v] for k, v in kbs.items()}
    total = sum(map(sum, sizes.values())) + 64 * len(kbs)  # keys and punctuation, roughly
    if total <= MAX_STORED_BYTES:
        return
    for key in [k for k in kbs if k != current] + [current]:
        keep = 1 if key == current else 0
        while len(kbs[key]) > keep and total > MAX_STORED_BYTES:
            kbs[key].pop(0)
            total -= sizes[key].pop(0)
        if not kbs[key] and key != current:
            del kbs[key]
        if total <= MAX_STORED_BYTES:
            break
    log.info("browser copy of the conversations trimmed to about %d bytes", total)


def save_state(saved: Any, kb: str | None, turns: list[dict[str, Any]]) -> dict[str, Any]:
    """The browser copy with ``kb``'s conversation replaced by ``turns`` (kept under :data:`MAX_STORED_BYTES`)."""
    kbs = dict(saved.get("kbs") or {}) if isinstance(saved, dict) and isinstance(saved.get("kbs"), dict) else {}
    key = kb or ""
    kbs.pop(key, None)
    kbs = {k: list(v)[-MAX_STORED_TURNS:] for k, v in kbs.items() if isinstance(v, list)}
    kbs[key] = stored(turns)
    while len(kbs) > MAX_STORED_KBS:
        kbs.pop(next(iter(kbs)))
    _fit(kbs, key)
    return {"v": STORAGE_VERSION, "kb": key, "kbs": kbs}


def restore_turns(saved: Any, kb: str | None, lang: str = "zh") -> list[dict[str, Any]]:
    """``kb``'s conversation from the browser copy, checked and rendered again; malformed turns are dropped."""
    if not isinstance(saved, dict) or not isinstance(saved.get("kbs"), dict):
        return []
    items = saved["kbs"].get(kb or "")
    turns: list[dict[str, Any]] = []
    for item in items if isinstance(items, list) else []:
        try:
            turns.append(_restore_turn(item, kb or "", lang))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.info("stored conversation turn dropped: %s", exc)
    return turns[-MAX_STORED_TURNS:]


def _restore_turn(item: dict[str, Any], kb: str, lang: str) -> dict[str, Any]:
    from .render import md_text

    question = str(item["question"])[:MAX_TEXT]
    if not question.strip():
        raise ValueError("empty question")
    rewritten = str(item.get("rewritten_query") or "")[:MAX_TEXT]
    turn = {"id": str(item.get("id") or uuid.uuid4().hex[:16])[:64], "time": str(item.get("time") or "")[:64],
            "kb": kb, "question": question, "rewritten_query": rewritten, "answer": None,
            "answer_text": str(item.get("answer_text") or "")[:MAX_TEXT], "message": str(item.get("message") or "")[:MAX_TEXT],
            "versions": item.get("versions") if isinstance(item.get("versions"), dict) else {},
            "vote": item.get("vote") if item.get("vote") in ("up", "down") else ""}
    data = item.get("answer")
    if isinstance(data, dict):
        answer = answer_from_data(question, rewritten, data)
        turn.update(answer=answer_data(answer), answer_text=answer.text, answer_md=render_answer_md(answer, linked=True),
                    answer_plain=render_answer_md(answer, linked=False), sources_html=render_sources(answer, lang))
    else:
        turn["answer_md"] = md_text(turn["message"] or turn["answer_text"])
    return turn


# --------------------------------------------------------------------------- export
def _quote(text: str) -> str:
    return "\n".join(f"   > {line}" for line in text.strip().splitlines() if line.strip()) or "   >"


def export_markdown(turns: list[dict[str, Any]], title: str, exported_at: str, lang: str = "zh") -> str:
    """The conversation as Markdown: each question, its answer with [n] markers, and the cited sources
    (title, date, section, page when known, document id, quoted supporting span)."""
    lines = [f"# {tr('export_heading', lang, title=title)}", "",
             tr("export_meta", lang, time=exported_at, n=len(turns)), ""]
    for i, t in enumerate(turns, 1):
        lines += [f"## {i}. {t['question']}", ""]
        if t.get("rewritten_query") and t["rewritten_query"].strip() != t["question"].strip():
            lines += [f"_{tr('understood_as', lang, q=t['rewritten_query'])}_", ""]
        data = t.get("answer") if isinstance(t.get("answer"), dict) else None
        if data is None or data.get("not_found"):
            lines += [(data or {}).get("message") or t.get("message") or t.get("answer_text") or tr("not_found", lang), ""]
            continue
        if data.get("short_answer"):
            lines += [f"**{data['short_answer']}**", ""]
        if data.get("summary"):
            lines += [f"- {s['text']} [{s['citation']}]" for s in data["summary"]] + [""]
        elif data.get("sentence"):
            lines += [f"{data['sentence']} [1]", ""]
        if data.get("message"):
            lines += [f"_{data['message']}_", ""]
        if data.get("citations"):
            lines += [f"{tr('export_sources', lang)}:", ""]
        for c in data.get("citations") or []:
            page = c.get("page")
            meta = [x for x in (c.get("date"), c.get("section"),
                                tr("page", lang, n=page) if page not in (None, "") else "") if x]
            meta.append(f"`{c.get('doc_id', '')}`")
            span = str(c.get("text", ""))[int(c.get("start") or 0):int(c.get("end") or 0)]
            lines += [f"{c.get('n')}. **[{c.get('n')}] {c.get('title', '')}** · " + " · ".join(meta), _quote(span), ""]
    return "\n".join(lines).rstrip() + "\n"
