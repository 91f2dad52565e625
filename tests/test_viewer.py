"""The document viewer without a browser (issue 14, point 4): the cited span marked in the document's
cleaned text (offsets match the index), everything escaped, no path traversal, a changed file said so,
the original file offered for download."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest


@pytest.fixture()
def kb(tmp_path, corpus_copy, built_index, embedder):
    """A knowledge base over a private copy of the indexed corpus (so a test may change its files)."""
    from index.kb import KnowledgeBase

    corpus = tmp_path / "corpus"
    shutil.copytree(corpus_copy, corpus)
    return KnowledgeBase(corpus, built_index, embedder)


@pytest.fixture()
def viewer_service(kb, monkeypatch):
    """Make the handlers' service return ``kb`` for any knowledge-base name."""
    from ui import handlers

    class OneKB:
        def kb(self, name: str | None = None):
            return kb

    monkeypatch.setattr(handlers, "SERVICE", OneKB())
    return kb


def test_render_marks_the_span_and_escapes_everything():
    from ui.viewer import MARK_ID, render_document

    text = "<b>标题</b>\n\n第一段 & 其他。\n第二段<script>alert(1)</script>。"
    start = text.index("第一段")
    html = render_document(text, start, start + 3, title="<i>T</i>", note="")
    assert f'<mark id="{MARK_ID}">第一段</mark>' in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>" not in html and "&lt;b&gt;标题" in html and "&amp; 其他" in html
    assert "&lt;i&gt;T&lt;/i&gt;" in html
    assert "\n\n" in html  # paragraph breaks kept (shown with white-space: pre-wrap)
    assert "<mark" not in render_document(text, 5, 500)  # a span outside the text is not marked


def test_render_cuts_a_long_document_around_the_span():
    from ui.viewer import MARK_ID, MAX_VIEW_CHARS, render_document

    text = "甲" * (MAX_VIEW_CHARS * 2) + "目标" + "乙" * 1000
    start = MAX_VIEW_CHARS * 2
    html = render_document(text, start, start + 2)
    assert f'<mark id="{MARK_ID}">目标</mark>' in html
    assert len(html) < MAX_VIEW_CHARS + 500


@pytest.mark.parametrize("doc_id", ["../x.txt", "/etc/passwd", "../../etc/passwd", "a/../../x.txt", "", "\x00",
                                    ".hidden.txt", "nope.txt"])
def test_corpus_file_refuses_traversal(tmp_path, doc_id):
    from ui.viewer import corpus_file

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a").mkdir()
    (corpus / "ok.txt").write_text("x", encoding="utf-8")
    (corpus / ".hidden.txt").write_text("x", encoding="utf-8")
    (tmp_path / "x.txt").write_text("secret", encoding="utf-8")
    assert corpus_file(corpus, doc_id) is None
    assert corpus_file(corpus, "ok.txt") == (corpus / "ok.txt").resolve()


def test_symlink_out_of_the_corpus_is_refused(tmp_path):
    from ui.viewer import corpus_file

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (tmp_path / "secret.txt").write_text("secret", encoding="utf-8")
    (corpus / "link.txt").symlink_to(tmp_path / "secret.txt")
    assert corpus_file(corpus, "link.txt") is None


def test_viewer_offsets_match_the_index(kb, assistant):
    """Every indexed passage is the viewer text's slice at its offsets; a citation's span is marked."""
    from ui.viewer import MARK_ID, load_viewed, render_document

    texts: dict[str, str] = {}
    for p in assistant.index.passages:
        if p.doc_id not in texts:
            viewed = load_viewed(kb, p.doc_id)
            assert viewed is not None and not viewed.changed
            texts[p.doc_id] = viewed.text
        assert texts[p.doc_id][p.start:p.end] == p.text
    ans = assistant.ask("2025年太原新增养老床位多少张？")
    c = ans.citations[0]
    html = render_document(texts[c.doc_id], c.doc_start + c.start, c.doc_start + c.end)
    assert f'<mark id="{MARK_ID}">' in html and "2000张" in html.split(f'<mark id="{MARK_ID}">')[1].split("</mark>")[0]


def test_view_document_handler_and_download(viewer_service):
    from ui.i18n import tr
    from ui.viewer import MARK_ID, load_viewed, view_document

    doc_id = viewer_service.documents()[0].doc_id
    text = load_viewed(viewer_service, doc_id).text
    req = json.dumps({"doc": doc_id, "start": 10, "end": 20})
    html, download, box = view_document(req, "taiyuan")
    assert f'<mark id="{MARK_ID}">' in html and box.visible is True
    assert download.visible is True
    served = Path(download.value["path"])
    assert download.value["orig_name"] == Path(doc_id).name
    assert served.read_bytes() == (viewer_service.corpus_dir / doc_id).read_bytes()
    assert text[10:20] in html

    html, download, _ = view_document(json.dumps({"doc": "../manifest.json", "start": 0, "end": 1}), "taiyuan")
    assert tr("viewer_missing", "zh", doc="../manifest.json") in html.replace("&quot;", '"')
    assert download.visible is False
    html, download, _ = view_document("not json", "taiyuan")
    assert "<mark" not in html and download.visible is False


def test_changed_file_is_said_and_not_marked(viewer_service):
    from ui.i18n import tr
    from ui.viewer import view_document

    doc_id = viewer_service.documents()[0].doc_id
    path = viewer_service.corpus_dir / doc_id
    path.write_text("前言。\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    html, download, _ = view_document(json.dumps({"doc": doc_id, "start": 10, "end": 20}), "taiyuan")
    assert "<mark" not in html
    assert tr("viewer_changed", "zh") in html
    assert download.visible is True  # the current file can still be downloaded


def test_source_cards_link_the_viewer_with_document_offsets(assistant):
    from ui.render import render_sources

    ans = assistant.ask("2025年太原新增养老床位多少张？")
    c = ans.citations[0]
    html = render_sources(ans, "en")
    assert (f'class="wenda-view" data-doc="{c.doc_id}" data-start="{c.doc_start + c.start}" '
            f'data-end="{c.doc_start + c.end}">View document</a>') in html
