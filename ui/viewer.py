"""The document viewer: a cited document's whole cleaned text with the cited span marked, and its original file.

The text comes from the same ingestion the index used (:func:`index.ingest.read_file_text` and
:func:`index.ingest.make_document`), so the citation offsets (``Citation.doc_start`` plus the span's
offsets in the passage) point into it. A file changed since indexing (its sha256 differs from the index
manifest's) is shown without a mark, with a notice. (No ``from __future__ import annotations``: Gradio
reads :func:`view_document`'s type hints at runtime.)
"""
import hashlib
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from index.ingest import IngestError, load_manifest, make_document, read_file_text
from index.kb import KnowledgeBase

from .i18n import request_lang, tr
from .render import esc

log = logging.getLogger("wenda.app")

MAX_VIEW_CHARS = 200_000  # a longer document is shown as this much text around the span
MARK_ID = "wenda-doc-mark"

# Installed once per page: a card's "view document" link asks the hidden button to open the viewer.
VIEWER_JS = """
if (!window.__wendaViewer) {
  window.__wendaViewer = true;
  document.addEventListener('click', function (ev) {
    const a = ev.target && ev.target.closest ? ev.target.closest('a.wenda-view') : null;
    if (!a) return;
    ev.preventDefault();
    ev.stopPropagation();
    window.__wendaView = JSON.stringify({doc: a.dataset.doc, start: Number(a.dataset.start),
                                         end: Number(a.dataset.end)});
    const btn = document.getElementById('wenda-view-btn');
    if (btn) btn.click();
  }, true);
}
"""
# The hidden button's inputs: the request the link left, and the knowledge base.
VIEW_REQUEST_JS = "(req, kb) => [window.__wendaView || '', kb]"
# After the viewer is filled: bring the marked span into view.
SCROLL_JS = f"""() => {{ setTimeout(function () {{
  const m = document.getElementById('{MARK_ID}');
  if (m) m.scrollIntoView({{behavior: 'auto', block: 'center'}});
  else {{ const v = document.getElementById('wenda-viewer'); if (v) v.scrollIntoView({{block: 'start'}}); }}
}}, 150); }}"""

VIEWER_CSS = """
.wenda-doc-head { font-weight: 600; margin: 2px 2px 8px; }
.wenda-doc-note { color: #b45309; margin: 0 2px 8px; }
.wenda-doc { white-space: pre-wrap; line-height: 1.8; font-size: 0.95em; }
.wenda-doc mark { background: #fde68a; color: #111; padding: 0 2px; border-radius: 3px; }
"""


@dataclass
class ViewedDocument:
    """A document read for the viewer.

    Attributes:
        doc_id: Its id (path relative to the corpus folder).
        path: The file, inside the corpus folder.
        title: Title (corpus manifest, else guessed).
        text: Cleaned text, as the index saw it.
        changed: The file differs from the indexed version (offsets may not match).
    """

    doc_id: str
    path: Path
    title: str
    text: str
    changed: bool


def corpus_file(corpus_dir: str | Path, doc_id: str) -> Path | None:
    """The file of ``doc_id`` when it is a file inside ``corpus_dir`` (no traversal, no hidden parts), else None."""
    if not doc_id or "\x00" in doc_id:
        return None
    root = Path(corpus_dir).resolve()
    try:
        path = (root / doc_id).resolve()
        rel = path.relative_to(root)
    except (ValueError, OSError):
        return None
    if not rel.parts or any(part.startswith(".") for part in rel.parts) or not path.is_file():
        return None
    return path


def load_viewed(kb: KnowledgeBase, doc_id: str) -> ViewedDocument | None:
    """Read an indexed document of ``kb`` with the index's cleaning; None when it is missing or unreadable."""
    indexed = kb.manifest().get("documents", {})
    path = corpus_file(kb.corpus_dir, doc_id)
    if path is None or doc_id not in indexed:
        return None
    try:
        data = path.read_bytes()
        raw, encoding = read_file_text(path, data)
        doc = make_document(doc_id, raw, data, encoding, load_manifest(kb.corpus_dir).get(doc_id))
    except (IngestError, OSError) as exc:
        log.warning("viewer: cannot read %s: %s", doc_id, exc)
        return None
    changed = indexed[doc_id].get("sha256") != hashlib.sha256(data).hexdigest()
    title = str(indexed[doc_id].get("title") or doc.title)
    return ViewedDocument(doc_id=doc_id, path=path, title=title, text=doc.text, changed=changed)


def render_document(text: str, start: int | None, end: int | None, title: str = "", note: str = "") -> str:
    """The viewer's HTML: title, notice, and the escaped text with ``text[start:end]`` in ``<mark id=...>``.

    Args:
        text: The document's cleaned text.
        start: Span start (None: no mark).
        end: Span end (exclusive).
        title: Heading above the text.
        note: A notice (a changed file, a cut text), or "".
    """
    n = len(text)
    ok = start is not None and end is not None and 0 <= start < end <= n
    lo, hi = 0, n
    if n > MAX_VIEW_CHARS:  # a window of the text around the span (or its beginning)
        centre = (start + end) // 2 if ok else 0  # type: ignore[operator]
        lo = max(0, min(n - MAX_VIEW_CHARS, centre - MAX_VIEW_CHARS // 2))
        hi = lo + MAX_VIEW_CHARS
        if ok and not (lo <= start and end <= hi):  # type: ignore[operator]
            ok = False
    if ok:
        body = (esc(text[lo:start]) + f'<mark id="{MARK_ID}">' + esc(text[start:end]) + "</mark>"
                + esc(text[end:hi]))
    else:
        body = esc(text[lo:hi])
    head = f'<div class="wenda-doc-head">{esc(title)}</div>' if title else ""
    notice = f'<div class="wenda-doc-note">{esc(note)}</div>' if note else ""
    cut = ("…" if lo > 0 else "", "…" if hi < n else "")
    return f'{head}{notice}<div class="wenda-doc">{cut[0]}{body}{cut[1]}</div>'


def download_copy(path: Path) -> str:
    """A copy of ``path`` in a temporary folder (under its own name) for the download button."""
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "wenda-downloads" / digest
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    shutil.copyfile(path, target)
    return str(target)


def parse_view_request(req: Any) -> tuple[str, int | None, int | None]:
    """(doc id, start, end) from the link's JSON request; ("", None, None) when unusable."""
    try:
        data = json.loads(req) if isinstance(req, str) else dict(req or {})
        doc = str(data.get("doc") or "")
        start, end = data.get("start"), data.get("end")
        return doc, (int(start) if start is not None else None), (int(end) if end is not None else None)
    except (ValueError, TypeError, AttributeError):
        return "", None, None


def view_document(req: str, kb: str | None, request: gr.Request | None = None) -> tuple[str, Any, Any]:
    """Open a document in the viewer.

    Args:
        req: JSON ``{"doc": doc id, "start": offset, "end": offset}`` (offsets into the cleaned text).
        kb: The knowledge base.
        request: The page request (for the interface language).

    Returns:
        (viewer HTML, download button update, viewer panel update).
    """
    from .handlers import service  # the process's Service (set by ui.layout)

    lang = request_lang(request)
    doc_id, start, end = parse_view_request(req)
    try:
        viewed = load_viewed(service().kb(kb), doc_id) if doc_id else None
    except Exception:  # an unknown knowledge base or a broken index: say so, keep the page
        log.exception("viewer: cannot open %r in %r", doc_id, kb)
        viewed = None
    if viewed is None:
        log.info("viewer: no such document %r", doc_id)
        html = render_document("", None, None, note=tr("viewer_missing", lang, doc=doc_id))
        return html, gr.DownloadButton(value=None, visible=False), gr.Column(visible=True)
    note = tr("viewer_changed", lang) if viewed.changed else ""
    if viewed.changed:
        start = end = None
    html = render_document(viewed.text, start, end, viewed.title, note)
    button = gr.DownloadButton(value=download_copy(viewed.path), visible=True,
                               label=tr("viewer_download", lang, name=viewed.path.name))
    return html, button, gr.Column(visible=True)
