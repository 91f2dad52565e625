"""Knowledge-base handlers: list, upload, delete, create, remove, switch.

Changes need the admin password (:mod:`ui.admin`), checked here so the API endpoints enforce it
too. A refused change or a user mistake (no file, a bad file, an unknown document or name) is a
warning toast plus a message, never an error overlay, and one log line without a traceback.
(No ``from __future__ import annotations``: Gradio reads ``gr.Request`` hints at runtime.)
"""
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from index.ingest import MAX_FILE_BYTES, IngestError
from index.kb import KnowledgeBase, safe_filename
from index.workspace import WorkspaceError

from .admin import editing_refusal
from .conversation import restore_turns
from .handlers import kb_choices, kb_error, kb_examples, kb_title, service, warn
from .i18n import request_lang, tr
from .render import doc_table, md_text, status_md
from .session import chat_view

log = logging.getLogger("wenda.app")

SKIP_VIEWS = 5  # documents table, status, delete dropdown, document filter, year filter
PROGRESS = gr.Progress()  # the default Gradio replaces with a tracker per event


def _views(kb: KnowledgeBase, lang: str) -> tuple:
    """(documents table, status, delete dropdown, document filter, year filter) updates."""
    docs = kb.documents()
    doc_choices = [(f"{d.title}（{d.date}）" if d.date else d.title, d.doc_id) for d in docs]
    years = sorted({str(d.year) for d in docs if d.year}, reverse=True)
    return (
        doc_table(kb, lang),
        status_md(kb, lang),
        gr.update(choices=[(f"{d.title} · {d.doc_id}", d.doc_id) for d in docs], value=None),
        gr.update(choices=doc_choices),
        gr.update(choices=years),
    )


def _skips() -> tuple:
    return (gr.skip(),) * SKIP_VIEWS


def _refused(message: str, lang: str) -> str:
    """Show a user mistake or refusal as a toast (titled in ``lang``); the same text (markdown-escaped)
    is returned for the message line."""
    warn(message, lang)
    return md_text(message)


def kb_refresh(kb: str | None = None, request: gr.Request | None = None) -> tuple:
    """Current documents, index status and filter choices of a knowledge base."""
    lang = request_lang(request)
    try:
        return _views(service().kb(kb), lang)
    except WorkspaceError as exc:
        return [], md_text(kb_error(exc, lang)), gr.skip(), gr.skip(), gr.skip()
    except Exception:
        log.exception("reading the knowledge base failed")
        return [], tr("kb_read_failed", lang), gr.skip(), gr.skip(), gr.skip()


def _reload_assistant(kb: str | None, lang: str) -> str:
    try:
        service().changed(kb)
        return ""
    except Exception as exc:
        log.exception("reloading the index failed")
        return tr("reload_failed", lang, e=md_text(exc))


def _progress_adapter(progress: Any, start: float, span: float, lang: str) -> Callable[[float, str], None]:
    def report(fraction: float, stage: str) -> None:
        try:
            desc = tr(f"stage_{stage}", lang)
        except KeyError:
            desc = stage
        with contextlib.suppress(Exception):  # progress is cosmetic
            progress(start + span * fraction, desc=desc)
    return report


def kb_upload(files: list[str] | str | None, kb: str | None = None, password: str = "",
              progress: gr.Progress = PROGRESS, request: gr.Request | None = None) -> tuple:
    """Add uploaded files to the knowledge base and re-index; each failing file is reported and changes nothing.

    Returns:
        (message, documents table, status, delete dropdown, document filter, year filter, upload box:
        None clears it, after an upload and after rejected files alike).
    """
    lang = request_lang(request)
    refusal = editing_refusal(password, "upload", lang)
    if refusal:
        return (_refused(refusal, lang), *_skips(), gr.skip())
    if not files:
        log.info("upload refused: no file chosen")
        return (_refused(tr("upload_none", lang), lang), *_skips(), None)
    paths = [files] if isinstance(files, (str, Path)) else list(files)
    kb_name = kb
    try:
        base = service().kb(kb_name)
    except WorkspaceError as exc:
        log.info("upload refused: %s", exc)
        return (_refused(kb_error(exc, lang), lang), *_skips(), None)
    known = {d.doc_id for d in base.documents()}
    lines, failures, changed = [], [], False
    for i, item in enumerate(paths):
        path = Path(getattr(item, "path", None) or getattr(item, "name", None) or str(item))
        name = path.name
        step = _progress_adapter(progress, i / len(paths), 1 / len(paths), lang)
        try:
            doc_id = safe_filename(name)
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise IngestError(tr("upload_too_big", lang, name=name, mb=size / 1e6, limit=MAX_FILE_BYTES // 2**20))
            report = base.add_file(name, path.read_bytes(), progress=step)
        except (IngestError, ValueError, OSError) as exc:
            log.warning("upload of %s rejected: %s", name, exc)
            reason = str(exc)
            failures.append(reason if reason.startswith(name) else f"{name}: {reason}")
            continue
        except Exception:
            log.exception("upload of %s failed", name)
            failures.append(f"{name}: {tr('internal_error', lang)}")
            continue
        changed = True
        lines.append(tr("upload_updated" if doc_id in known else "upload_added", lang, doc=md_text(doc_id),
                        n=report.per_document.get(doc_id, 0), emb=report.embedded, reused=report.reused,
                        s=report.seconds))
        known.add(doc_id)
    for failure in failures:
        warn(tr("upload_failed", lang, reason=failure), lang)
    failed = [f"❌ {md_text(f)}" for f in failures]
    if not changed:
        return ("\n\n".join([tr("upload_rejected", lang)] + failed), *_skips(), None)
    message = "\n\n".join(lines + failed) + _reload_assistant(kb_name, lang)
    return (message, *_views(base, lang), None)


def kb_delete(doc_id: str | None, kb: str | None = None, password: str = "",
              progress: gr.Progress = PROGRESS, request: gr.Request | None = None) -> tuple:
    """Delete a document from the corpus and the index; its passages leave answers at once.

    Returns:
        (message, documents table, status, delete dropdown, document filter, year filter).
    """
    lang = request_lang(request)
    refusal = editing_refusal(password, "delete", lang)
    if refusal:
        return (_refused(refusal, lang), *_skips())
    if not doc_id:
        return (tr("delete_none", lang), *_skips())
    name = kb
    try:
        base = service().kb(name)
        report = base.delete(str(doc_id), progress=_progress_adapter(progress, 0.0, 1.0, lang))
    except (IngestError, ValueError, WorkspaceError) as exc:
        log.info("deleting %s refused: %s", doc_id, exc)
        return (_refused(tr("delete_failed", lang, e=exc), lang), *_skips())
    except Exception:
        log.exception("deleting %s failed", doc_id)
        return (_refused(tr("delete_failed", lang, e=tr("internal_error", lang)), lang), *_skips())
    message = (tr("deleted", lang, doc=md_text(doc_id), docs=report.documents, passages=report.passages)
               + _reload_assistant(name, lang))
    return (message, *_views(base, lang))


def header_md(kb: str | None, lang: str = "zh") -> str:
    """Page heading naming the knowledge base (its title in ``lang``, :func:`ui.handlers.kb_title`)."""
    return f"## 问答 Wenda · {md_text(kb_title(kb, lang))}"


def kb_switch(kb: str | None, saved: Any = None, request: gr.Request | None = None) -> tuple:
    """Show another knowledge base: heading, examples, its conversation kept in the browser (``saved``,
    else a new one), its documents and filters."""
    samples = [[q] for q in kb_examples(kb)]
    lang = request_lang(request)
    try:
        turns = restore_turns(saved, service().name(kb), lang)
    except WorkspaceError:
        turns = []
    return (header_md(kb, lang), gr.update(samples=samples), *chat_view(turns, lang), *kb_refresh(kb, request))


def kb_create(name: str, title: str = "", password: str = "", request: gr.Request | None = None) -> tuple:
    """Create an empty knowledge base and select it.

    Returns:
        (message, knowledge-base selector update).
    """
    lang = request_lang(request)
    refusal = editing_refusal(password, "create", lang)
    if refusal:
        return _refused(refusal, lang), gr.skip()
    try:
        info = service().create(name, title)
    except WorkspaceError as exc:
        log.info("knowledge base not created: %s", exc)
        return _refused(tr("kb_not_created", lang, e=exc), lang), gr.skip()
    return (tr("kb_created", lang, title=md_text(info.title), name=info.name),
            gr.update(choices=kb_choices(lang), value=info.name))


def kb_remove(kb: str | None, password: str = "", request: gr.Request | None = None) -> tuple:
    """Delete a knowledge base with its documents and index, and select the default one.

    Returns:
        (message, knowledge-base selector update).
    """
    lang = request_lang(request)
    refusal = editing_refusal(password, "remove", lang)
    if refusal:
        return _refused(refusal, lang), gr.skip()
    if not kb:
        return tr("kb_remove_none", lang), gr.skip()
    try:
        service().delete(kb)
    except WorkspaceError as exc:
        log.info("knowledge base %s not deleted: %s", kb, exc)
        return _refused(tr("kb_not_removed", lang, e=exc), lang), gr.skip()
    return tr("kb_removed", lang, name=md_text(kb)), gr.update(choices=kb_choices(lang), value=service().default)
