"""Decoding and corpus loading: encodings, bad files, folders without a manifest."""
from __future__ import annotations

import logging

import pytest

from index.ingest import IngestError, decode_bytes, load_corpus, read_file_text

TEXT = "一、总体要求\n2025年太原新增养老床位2000张，增长５％。\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"])
def test_decode_encodings(encoding):
    text, used = decode_bytes(TEXT.encode(encoding), "x.txt")
    assert text == TEXT


def test_decode_utf16_without_bom():
    text, used = decode_bytes(TEXT.encode("utf-16-le"), "x.txt")
    assert text == TEXT and used == "utf-16-le"


@pytest.mark.parametrize("data,msg", [
    (b"", "empty"),
    (b"   \n\t", "empty"),
    (bytes(range(256)) * 20, "x.txt"),
])
def test_bad_bytes_named_in_error(data, msg):
    with pytest.raises(IngestError, match=msg):
        decode_bytes(data, "x.txt")


def test_unsupported_and_oversized(tmp_path):
    with pytest.raises(IngestError, match="unsupported file type"):
        read_file_text(tmp_path / "a.exe", b"hello")
    with pytest.raises(IngestError, match="over the 20 MB limit"):
        read_file_text(tmp_path / "a.txt", b"a" * (20 * 1024 * 1024 + 1))


def test_broken_pdf_and_docx(tmp_path):
    with pytest.raises(IngestError, match="a.pdf"):
        read_file_text(tmp_path / "a.pdf", b"%PDF-1.4 not really")
    with pytest.raises(IngestError, match="a.docx"):
        read_file_text(tmp_path / "a.docx", b"PK\x03\x04 broken zip")


def test_docx_headings(tmp_path):
    import docx

    d = docx.Document()
    d.add_heading("一、总体要求", level=1)
    d.add_paragraph("新增养老床位2000张。")
    path = tmp_path / "r.docx"
    d.save(path)
    text, fmt = read_file_text(path)
    assert fmt == "docx" and "# 一、总体要求" in text and "2000张" in text


def test_folder_without_manifest_and_one_bad_file(tmp_path, caplog):
    (tmp_path / "good.txt").write_bytes("# 太原市2023年工作报告\n\n今年新增就业8万人。\n".encode("gbk"))
    (tmp_path / "bad.txt").write_bytes(bytes(range(256)) * 10)
    (tmp_path / "notes.md").write_text("普通说明文字，2024年。", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        result = load_corpus(tmp_path)
    assert sorted(d.doc_id for d in result.documents) == ["good.txt", "notes.md"]
    assert "bad.txt" in result.errors and "bad.txt" in result.errors["bad.txt"]
    good = next(d for d in result.documents if d.doc_id == "good.txt")
    assert good.title == "太原市2023年工作报告" and good.year == 2023 and good.encoding == "gb18030"
    assert "no manifest entry" in caplog.text


def test_missing_folder():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_corpus("/nonexistent/folder")
