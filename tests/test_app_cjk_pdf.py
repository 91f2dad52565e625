"""A Chinese PDF whose text uses look-alike radicals (``tests/fixtures/cjk_radicals``, issue 14 point 3):
ingestion normalises them, headings come from the layout, every passage has its page, and an answer
through the app cites the normalised text with its page."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "cjk_radicals"
PDF = FIXTURE / "radicals.pdf"
RADICALS = re.compile(r"[\u2e80-\u2fdf]")  # CJK radicals supplement and Kangxi radicals


def test_fixture_is_what_its_script_writes():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_cjk_pdf", FIXTURE / "make_pdf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.make_pdf(module.PAGES) == PDF.read_bytes()


def test_radicals_are_normalised_and_passages_carry_pages():
    from index.chunking import chunk_document
    from index.ingest import make_document, read_file_text

    raw, fmt = read_file_text(PDF)
    assert fmt == "pdf" and "⼀、粮⻝⽣产" in raw and "⻩" in raw  # the look-alikes are really in the file
    doc = make_document("radicals.pdf", raw, PDF.read_bytes(), fmt, None)
    assert not RADICALS.search(doc.text)
    assert "一、粮食生产" in doc.text and "居民人均可支配收入增长5%" in doc.text and "黄河沿岸" in doc.text
    passages = chunk_document(doc)
    by_text = {p.text.split("，")[0]: p for p in passages}
    assert by_text["全年粮食总产量达到一百二十万吨"].page == 1
    assert by_text["全年粮食总产量达到一百二十万吨"].section.endswith("一、粮食生产")
    assert by_text["居民人均可支配收入增长5%"].page == 2
    assert by_text["居民人均可支配收入增长5%"].section.endswith("二、居民生活")


@pytest.mark.slow
def test_uploaded_pdf_is_answered_with_normalised_text_and_its_page(tmp_path, monkeypatch, embedder):
    import app
    from index.workspace import Workspace
    from qa.service import Service
    from ui import handlers

    svc = Service(Workspace(tmp_path / "home", seed=False), embedder)
    monkeypatch.setattr(handlers, "SERVICE", svc)
    monkeypatch.delenv("WENDA_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("WENDA_READ_ONLY", raising=False)
    svc.create("pdfs")
    message = app.kb_upload([str(PDF)], "pdfs")[0]
    assert "radicals.pdf" in message and "✅" in message
    result = app.api_ask("居民人均可支配收入增长多少？", kb="pdfs")
    citation = result["citations"][0]
    assert citation["page"] == 2 and "居民人均可支配收入增长5%" in citation["text"]
    assert not RADICALS.search(citation["text"] + result["answer"])
