"""Handlers of the saved conversation: restore it on load, keep the browser copy and the Markdown export
current, and record 👍/👎 feedback with an optional comment.

(No ``from __future__ import annotations``: Gradio reads ``gr.Request`` / ``gr.LikeData`` hints at runtime.)
"""
import logging
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gradio as gr

from index.workspace import WorkspaceError

from .conversation import (
    chat_messages,
    export_markdown,
    feedback_values,
    restore_turns,
    save_state,
    sources_panel,
)
from .feedback import FEEDBACK_FILE, append_record, build_record
from .handlers import kb_title, notify, service, warn
from .i18n import request_lang, tr
from .render import placeholder_sources

log = logging.getLogger("wenda.app")

STORAGE_KEY = "wenda-conversation"
# BrowserState encrypts in the browser with a key it also sends to the browser: it is not a secret, only
# constant so that a copy saved before a server restart can still be read.
STORAGE_SECRET = "wenda-conversation-v1"
EXPORT_DIR = Path(tempfile.gettempdir()) / "wenda-export"
EXPORT_MAX_AGE_S = 3600


def chat_view(turns: list[dict[str, Any]], lang: str) -> tuple:
    """The chat outputs for a (restored) conversation.

    Returns:
        (chat messages update with the thumbs state, sources HTML, debug rows, turns, question box value).
    """
    if not turns:
        return gr.update(value=[], feedback_value=[]), placeholder_sources(lang=lang), [], [], ""
    latest = turns[-1].get("sources_html") or placeholder_sources(turns[-1].get("message") or None, lang)
    return (gr.update(value=chat_messages(turns), feedback_value=feedback_values(turns)),
            sources_panel(turns, latest, lang), [], turns, "")


def restore_chat(saved: Any, kb: str | None, request: gr.Request | None = None) -> tuple:
    """On page load: the conversation kept in the browser, with its knowledge base.

    When it belongs to another (still existing) knowledge base than the one shown, that one is selected
    (whose change event restores its conversation, :func:`ui.kb.kb_switch`).

    Returns:
        (knowledge-base selector update, *:func:`chat_view` outputs).
    """
    lang = request_lang(request)
    skips = (gr.skip(),) * 5
    last = saved.get("kb") if isinstance(saved, dict) else None
    if last and last != kb:
        try:
            return (gr.update(value=service().name(str(last))), *skips)
        except WorkspaceError:
            log.info("saved conversation's knowledge base %r is gone", last)
    try:
        turns = restore_turns(saved, service().name(kb), lang)
    except WorkspaceError:
        turns = []
    if not turns:
        return (gr.skip(), *skips)
    log.info("restored a conversation of %d turns", len(turns))
    return (gr.skip(), *chat_view(turns, lang))


def _clean_exports() -> None:
    cutoff = time.time() - EXPORT_MAX_AGE_S
    for folder in EXPORT_DIR.glob("*"):
        try:
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass


def write_export(turns: list[dict[str, Any]], kb: str | None, lang: str = "zh") -> Path:
    """Write the conversation's Markdown export to a fresh temporary file (older exports are removed)."""
    now = datetime.now(UTC)
    try:
        name = service().name(kb)
    except WorkspaceError:
        name = str(kb or "")
    title = kb_title(kb, lang)
    _clean_exports()
    folder = EXPORT_DIR / uuid.uuid4().hex
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"wenda-{name or 'chat'}-{now:%Y%m%d-%H%M%S}.md"
    stamp = now.strftime("%Y-%m-%d %H:%M UTC")
    path.write_text(export_markdown(turns, title, stamp, lang), encoding="utf-8")
    return path


def turns_changed(turns: list[dict[str, Any]] | None, kb: str | None, saved: Any,
                  request: gr.Request | None = None) -> tuple:
    """Keep the browser copy and the export button current.

    Returns:
        (browser copy, export button update: the Markdown file, hidden while the chat is empty).
    """
    turns = [t for t in (turns or []) if t.get("id")]
    try:
        name = service().name(kb)
    except WorkspaceError:
        name = str(kb or "")
    new_saved = save_state(saved, name, turns)
    if not turns:
        return new_saved, gr.update(value=None, visible=False)
    try:
        path = write_export(turns, kb, request_lang(request))
    except OSError:
        log.exception("writing the conversation export failed")
        return new_saved, gr.update(value=None, visible=False)
    return new_saved, gr.update(value=str(path), visible=True)


def _feedback_file() -> Path:
    return service().workspace.home / FEEDBACK_FILE


def record_vote(turns: list[dict[str, Any]] | None, data: gr.LikeData, request: gr.Request | None = None) -> tuple:
    """A 👍/👎 on an answer (or its withdrawal): one line in the workspace's ``feedback.jsonl``.

    Returns:
        (turns with the vote, comment row update: shown after a vote, the answer's turn index or None).
    """
    turns = list(turns or [])
    lang = request_lang(request)
    index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
    i = int(index) // 2
    if not 0 <= i < len(turns) or not turns[i].get("id"):
        return gr.skip(), gr.skip(), gr.skip()  # a "searching…" placeholder or an empty question
    vote = "up" if data.liked is True else "down" if data.liked is False else ""
    try:
        append_record(build_record(turns[i], vote), _feedback_file())
    except OSError:
        log.exception("writing feedback failed")
        warn(tr("feedback_failed", lang), lang)
        return gr.skip(), gr.skip(), gr.skip()
    turns[i] = {**turns[i], "vote": vote}
    if vote:
        notify(tr("feedback_thanks", lang), lang)
    return turns, gr.update(visible=bool(vote)), (i if vote else None)


def send_comment(comment: str, target: int | None, turns: list[dict[str, Any]] | None,
                 request: gr.Request | None = None) -> tuple:
    """The optional comment after a vote: another line about the same answer (same ``answer_id``).

    Returns:
        (comment box value, comment row update).
    """
    lang = request_lang(request)
    turns = list(turns or [])
    text = str(comment or "").strip()
    if target is None or not 0 <= int(target) < len(turns) or not text:
        return gr.skip(), gr.update(visible=False) if target is None else gr.skip()
    turn = turns[int(target)]
    try:
        append_record(build_record(turn, turn.get("vote") or "", text), _feedback_file())
    except OSError:
        log.exception("writing feedback failed")
        warn(tr("feedback_failed", lang), lang)
        return gr.skip(), gr.skip()
    notify(tr("feedback_comment_saved", lang), lang)
    return "", gr.update(visible=False)
