"""PDF ingestion (issue 14, point 3): look-alike characters normalised, headings from font sizes,
a page number on every passage, in the citation card and in the ``/ask`` API's citations."""
from __future__ import annotations

from pathlib import Path

import pytest

from index.chunking import chunk_document, parse_document, parse_pages
from index.ingest import load_corpus, make_document, read_file_text
from index.normalize import normalize_text
from index.pdf import PAGE_BREAK

BODY = "The city council met in spring and agreed on the budget for the coming year after a long debate."


def make_pdf(pages: list[list[tuple[float, str]]]) -> bytes:
    """A minimal PDF (Helvetica) of ``pages``, each a list of (font size, line) drawn top-down."""
    objs: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    }
    kids = []
    n = 4
    for lines in pages:
        ops = ["BT"]
        y = 760.0
        for size, text in lines:
            t = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"/F1 {size} Tf 1 0 0 1 72 {y:.1f} Tm ({t}) Tj")
            y -= size * 1.8
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objs[n] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
        objs[n + 1] = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                       b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % n)
        kids.append(n + 1)
        n += 2
    objs[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for i in sorted(objs):
        offsets[i] = len(out)
        out += b"%d 0 obj\n" % i + objs[i] + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for i in range(1, len(objs) + 1):
        out += b"%010d 00000 n \n" % offsets[i]
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


REPORT = [
    [(22, "Riverside Annual Report"), (11, BODY), (15, "Transport"), (11, "The new Elm Street bridge opened to traffic in May 2024.")],
    [(11, "The library extension added 12000 books to the collection this year."), (15, "Housing"),
     (11, "Builders finished 350 affordable homes near the old harbour.")],
    [],  # a blank page
    [(11, "Air quality improved: the city recorded 290 clean-air days.")],
]


@pytest.fixture()
def report_pdf(tmp_path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    path = folder / "report.pdf"
    path.write_bytes(make_pdf(REPORT))
    return path


# --------------------------------------------------------------------------- normalisation
def test_radicals_and_compatibility_characters_normalised():
    # Kangxi radicals (NFKC-mapped) and CJK radical supplement forms (NFKC leaves them: a table does).
    assert normalize_text("⼀、粮⻝⽣产") == "一、粮食生产"
    assert normalize_text("居⺠⼈均收⼊") == "居民人均收入"
    assert normalize_text("⻓⻔⻢⻋⻅⻚⻛⻜⻥⻦⻩⻬⻰⻮") == "长门马车见页风飞鱼鸟黄齐龙齿"
    assert normalize_text("\uf900\ufb01le ２０２４年 ＡＢｃ") == "\u8c48file 2024年 ABc"


def test_display_characters_kept():
    kept = "，：；（一）％！？……①⑴㈠℃㎡m²½Ⅴ—“引号”、。「」\u3000～"
    assert normalize_text(kept) == kept
    assert normalize_text("plain ASCII text") == "plain ASCII text"


def test_every_format_is_normalised(tmp_path):
    (tmp_path / "a.txt").write_text("⼀、粮⻝⽣产\n\n全年粮⻝产量２０２４年增长５％，居⺠满意。\n", encoding="utf-8")
    doc = load_corpus(tmp_path).documents[0]
    assert doc.text == "一、粮食生产\n全年粮食产量2024年增长5％，居民满意。"
    assert doc.page_starts == []
    assert all(p.page is None for p in chunk_document(doc))


# --------------------------------------------------------------------------- pages
def test_page_starts_of_cleaned_text():
    raw = f"First page line one.\n{PAGE_BREAK}\nSecond page.\n{PAGE_BREAK}\n\n{PAGE_BREAK}\nFourth page."
    text, _blocks, starts = parse_pages(raw)
    assert text == "First page line one.\nSecond page.\nFourth page."
    assert starts == [0, text.index("Second"), text.index("Fourth"), text.index("Fourth")]
    # A sentence running on over a page break: the page starts inside the joined line.
    text, _blocks, starts = parse_pages(f"这一段文字很长，跨越了两页，在这里被\n{PAGE_BREAK}\n断开，然后继续说完。")
    assert text == "这一段文字很长，跨越了两页，在这里被断开，然后继续说完。"
    assert starts == [0, text.index("断开")]
    # Without pages, form feeds mean nothing and parse_document is unchanged.
    assert parse_document(raw)[0] == parse_pages(raw, paged=False)[0]
    assert parse_pages(raw, paged=False)[2] == []


def test_pdf_passages_carry_their_page(report_pdf):
    raw, fmt = read_file_text(report_pdf)
    assert fmt == "pdf" and raw.count(PAGE_BREAK) == 3
    doc = make_document("report.pdf", raw, report_pdf.read_bytes(), fmt, {"title": "Riverside"})
    assert len(doc.page_starts) == 4 and "page_starts" not in doc.meta()
    passages = chunk_document(doc)
    pages = {p.text.split(".")[0]: p.page for p in passages}
    assert pages[BODY.split(".")[0]] == 1
    assert pages["The new Elm Street bridge opened to traffic in May 2024"] == 1
    assert pages["The library extension added 12000 books to the collection this year"] == 2
    assert pages["Builders finished 350 affordable homes near the old harbour"] == 2
    assert pages["Air quality improved: the city recorded 290 clean-air days"] == 4  # after the blank page
    assert all(doc.text[p.start:p.end] == p.text for p in passages)


def test_pdf_headings_from_font_size(report_pdf):
    raw, _ = read_file_text(report_pdf)
    lines = raw.split("\n")
    assert "# Riverside Annual Report" in lines  # the largest font
    assert "## Transport" in lines and "## Housing" in lines  # the section size
    assert not any(line.startswith("#") and "bridge" in line for line in lines)
    doc = make_document("report.pdf", raw, report_pdf.read_bytes(), "pdf", {"title": "Riverside"})
    sections = {p.text.split(" ")[1]: p.section for p in chunk_document(doc)}
    assert sections["new"].endswith("Transport")
    assert sections["library"].endswith("Transport")  # page 2 continues the section
    assert sections["finished"].endswith("Housing")


def test_pdf_of_one_font_size_has_no_layout_headings(tmp_path):
    path = tmp_path / "plain.pdf"
    path.write_bytes(make_pdf([[(11, "Short line"), (11, BODY)]]))
    raw, _ = read_file_text(path)
    assert "#" not in raw and "Short line" in raw


def test_old_passages_without_page_load():
    from index.types import Passage

    p = Passage(id="x-0000", doc_id="a.txt", title="t", date="", year=None, section="", text="正文。", start=0,
                end=3, ordinal=0)
    d = p.to_dict()
    d.pop("page")
    assert Passage.from_dict(d).page is None


# --------------------------------------------------------------------------- citations: card and API
def _pdf_answer(report_pdf):
    from qa.answer import make_citation
    from qa.types import Answer, Hit

    raw, fmt = read_file_text(report_pdf)
    doc = make_document("report.pdf", raw, report_pdf.read_bytes(), fmt, {"title": "Riverside"})
    passage = next(p for p in chunk_document(doc) if "harbour" in p.text)
    hit = Hit(passage=passage, score=0.9)
    citation = make_citation(1, hit, 0, len(passage.text))
    return Answer(question="How many affordable homes were built?", rewritten_query="affordable homes",
                  sentence=citation.span, citations=[citation], confidence=0.8, lang="en", hits=[hit])


def test_citation_card_and_api_show_the_page(report_pdf, monkeypatch):
    from ui import handlers
    from ui.render import render_sources

    answer = _pdf_answer(report_pdf)
    assert answer.citations[0].page == 2
    assert "p. 2" in render_sources(answer, "en")
    assert "第2页" in render_sources(answer, "zh")
    assert answer.to_dict()["citations"][0]["page"] == 2

    class FakeAssistant:
        def ask(self, q, history=None, k=5):
            return answer

    class FakeService:
        def assistant(self, kb=None):
            return FakeAssistant()

        def name(self, kb=None):
            return "pdf"

    monkeypatch.setattr(handlers, "service", lambda: FakeService())
    result = handlers.api_ask("How many affordable homes were built?")
    assert result["citations"][0]["page"] == 2 and result["citations"][0]["doc"] == "report.pdf"


def test_citation_card_without_page(report_pdf):
    from dataclasses import replace

    from ui.render import render_sources

    answer = _pdf_answer(report_pdf)
    answer.citations = [replace(answer.citations[0], page=None)]
    html = render_sources(answer, "en")
    assert "p. " not in html and "页" not in render_sources(answer, "zh").split("wenda-meta")[1].split("</div>")[0]


def test_hash_lines_of_a_pdf_are_text_not_headings(tmp_path):
    path = tmp_path / "code.pdf"
    path.write_bytes(make_pdf([[(16, "Setup"), (11, BODY), (11, "# This file was generated, do not edit"),
                                (11, BODY)]]))
    raw, _ = read_file_text(path)
    doc = make_document("code.pdf", raw, path.read_bytes(), "pdf", {"title": "Code"})
    assert "# This file was generated, do not edit" in doc.text
    assert [doc.text[b.start:b.end] for b in doc.blocks if b.kind == "heading"] == ["Setup"]
