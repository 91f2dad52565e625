"""Bad inputs: each gives a clear error or a correct result, and nothing already indexed is lost.

Questions go through the real session ``assistant`` (slow); files and index mechanics use
``FakeEmbedder`` and private tmp copies (fast). Cases already covered elsewhere are not repeated:
``decode_bytes`` per encoding, ``PK``-garbage .docx and broken PDF bytes (tests/test_ingest.py),
``load_index`` on a missing directory, a truncated ``faiss.index``, another model id, format 999
and a non-JSON manifest (tests/test_index.py), friendly errors in the web UI (tests/test_app.py).
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from index.builder import IndexLoadError, build_index, load_index, read_manifest
from index.ingest import MAX_FILE_BYTES, IngestError, load_corpus, read_file_text
from index.kb import KnowledgeBase
from qa import Answer, Assistant, QuestionError
from qa.assistant import MAX_QUESTION_CHARS

from .conftest import CORPUS
from .fakes import FakeEmbedder

BEDS_ZH = "2025年太原新增养老床位多少张？"
BEDS_TRAD = "2025年太原新增養老床位多少張？"
DOC = "003_7da918cca5064f34.txt"
TEXT = (
    "# 太原市星河湖水晶博物馆建设情况\n\n"
    "一、总体要求\n2025年，太原市在星河湖畔开工建设水晶博物馆，总投资3.7亿元，建筑面积2.6万平方米。\n\n"
    "二、展陈安排\n博物馆将展出来自全国各地的水晶标本1200余件，增长５％。\n"
)
REBUILD = "python -m index build"


# --------------------------------------------------------------------------- helpers
def tree_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder`` (relative path → digest): proves "nothing changed"."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_well_formed(ans: Answer) -> None:
    """Answer fields are plain strings, the payload is JSON, and a cited sentence is its citation's span."""
    assert isinstance(ans, Answer)
    for value in (ans.question, ans.rewritten_query, ans.short_answer, ans.sentence, ans.message, ans.text):
        assert type(value) is str
    payload = json.loads(json.dumps(ans.to_dict(), ensure_ascii=False))
    assert isinstance(payload["answer"], str) and isinstance(payload["not_found"], bool)
    if ans.not_found:
        assert ans.message and not ans.citations
    else:
        assert ans.citations and ans.sentence == ans.citations[0].span
        for c in ans.citations:
            assert type(c.text) is str and 0 <= c.start < c.end <= len(c.text)
        for s in ans.summary:
            assert s.text in ans.citations[s.citation - 1].text


def pdf_without_text() -> bytes:
    """A valid one-page PDF with no text layer (what a scan without OCR looks like)."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def docx_bytes(text: str) -> bytes:
    import docx

    d = docx.Document()
    d.add_paragraph(text)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def zip_without_docx_parts() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("word/readme.txt", "not a document")
    return buf.getvalue()


# --------------------------------------------------------------------------- fixtures
@pytest.fixture()
def small_corpus(tmp_path) -> Path:
    """One real report plus its manifest entry."""
    src = tmp_path / "corpus"
    src.mkdir()
    shutil.copy(CORPUS / DOC, src / DOC)
    manifest = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))
    manifest["documents"] = {DOC: manifest["documents"][DOC]}
    (src / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return src


@pytest.fixture()
def kb(small_corpus, tmp_path) -> KnowledgeBase:
    """A knowledge base over ``small_corpus`` with a built index (fake embeddings)."""
    emb = FakeEmbedder()
    out = tmp_path / "index" / "corpus"
    build_index(small_corpus, out, emb, progress=False)
    return KnowledgeBase(small_corpus, out, emb)


@pytest.fixture(scope="module")
def pristine_index(tmp_path_factory) -> Path:
    """A small fake-embedding index, built once; tests corrupt private copies of it."""
    src = tmp_path_factory.mktemp("corpus") / "c"
    src.mkdir()
    shutil.copy(CORPUS / DOC, src / DOC)
    out = tmp_path_factory.mktemp("index") / "c"
    build_index(src, out, FakeEmbedder(), progress=False)
    return out


@pytest.fixture()
def index_copy(pristine_index, tmp_path) -> Path:
    dst = tmp_path / "idx"
    shutil.copytree(pristine_index, dst)
    return dst


# --------------------------------------------------------------------------- questions
@pytest.mark.slow
@pytest.mark.parametrize("question, message", [
    ("", "empty"),
    ("   \n\t　", "empty"),  # ASCII and ideographic spaces
    ("养" * 5000, rf"5000 characters; keep it under {MAX_QUESTION_CHARS}"),
    ("😀🎉👍", "no words"),
    ("👨‍👩‍👧‍👦 ❤️ 🇨🇳", "no words"),  # ZWJ sequences, variation selectors, flags
    ("？？……！！——", "no words"),
    (None, "must be text"),
    (b"\xe5\x85\xbb", "must be text"),
])
def test_unusable_question_raises_clear_error(assistant, question, message):
    with pytest.raises(QuestionError, match=message):
        assistant.ask(question)


@pytest.mark.slow
@pytest.mark.parametrize("kwargs, message", [
    ({"k": 0}, "between 1 and 50"),
    ({"k": "5"}, "between 1 and 50"),
    ({"style": "poem"}, "not one of"),
])
def test_bad_options_raise_value_error(assistant, kwargs, message):
    with pytest.raises(ValueError, match=message):
        assistant.ask(BEDS_ZH, **kwargs)


@pytest.mark.slow
def test_english_only_question_answers_or_refuses_cleanly(assistant):
    for q in ("How many new elderly-care beds will Taiyuan add in 2025?", "What is the airspeed of an unladen swallow?"):
        ans = assistant.ask(q)
        assert_well_formed(ans)
        assert ans.lang == "en"
    assert assistant.ask("How many new elderly-care beds will Taiyuan add in 2025?").short_answer == "2000张"


@pytest.mark.slow
@pytest.mark.parametrize("question", [
    "'; DROP TABLE passages;--",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>养老床位多少张",
    "\" OR 1=1; -- 2025年养老床位",
    "{{7*7}} ${jndi:ldap://x/a} %s%n %(name)s",
    "../../etc/passwd",
    "2025年Taiyuan新增elderly care养老床位多少张?",  # mixed Chinese / Latin
    "2025年の太原で養老ベッドは何床増える？",  # Japanese kana + kanji
    "태원시 2025년 양로 병상은 몇 개?",  # Korean only
    "Сколько коек для престарелых в 2025 году?",  # Cyrillic
    "养老\u200b床位\u200d多少\ufeff张",  # zero-width characters
    "\u202e张少多位床老养年5202",  # right-to-left override
    "养老床位\x00多少张\x07",  # control characters
    "２０２５年养老床位多少张？",  # full-width digits
    "a" * MAX_QUESTION_CHARS,  # at the limit: accepted
    "2025",
])
def test_hostile_and_odd_questions_answer_plainly_and_change_nothing(assistant, built_index, question):
    before = tree_digest(built_index)
    n = len(assistant.index.passages)
    ans = assistant.ask(question)
    assert_well_formed(ans)
    assert len(assistant.index.passages) == n
    assert tree_digest(built_index) == before


@pytest.mark.slow
@pytest.mark.parametrize("question, history", [
    ("那呢？", ["😀"]),  # the follow-up would become the emoji-only previous turn
    ("那2022年呢？", ["养" * 5000]),  # …or a 5,000-character query
    ("那2022年呢？", [None]),
    ("那2022年呢？", [{"unexpected": 1}]),
])
def test_unusable_history_is_ignored_not_answered(assistant, question, history):
    """API callers send any history; a rewrite that yields an unusable question falls back to the question."""
    ans = assistant.ask(question, history=history)
    assert_well_formed(ans)
    assert ans.rewritten_query == question and len(ans.rewritten_query) <= MAX_QUESTION_CHARS


@pytest.mark.slow
def test_traditional_chinese_finds_the_same_answer(assistant):
    simplified = assistant.ask(BEDS_ZH)
    traditional = assistant.ask(BEDS_TRAD)
    assert simplified.short_answer == "2000张"
    assert not traditional.not_found and traditional.short_answer == "2000张"
    assert traditional.citations[0].passage_id == simplified.citations[0].passage_id


# --------------------------------------------------------------------------- files
ENCODINGS = ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"]


def test_encodings_on_disk_decode_to_the_same_text(tmp_path):
    for enc in ENCODINGS:
        (tmp_path / f"{enc}.txt").write_bytes(TEXT.encode(enc))
    result = load_corpus(tmp_path)
    assert result.errors == {}
    texts = {d.doc_id: d.text for d in result.documents}
    assert len(texts) == len(ENCODINGS) and len(set(texts.values())) == 1
    for enc in ENCODINGS:
        raw, _ = read_file_text(tmp_path / f"{enc}.txt")
        assert raw == TEXT


def test_encodings_uploaded_to_knowledge_base_index_the_same_passages(kb):
    for enc in ENCODINGS:
        report = kb.add_file(f"museum-{enc}.txt", TEXT.encode(enc))
        assert report.errors == {}
    index = load_index(kb.index_dir, kb.embedder)
    by_doc: dict[str, list[str]] = {}
    for p in index.passages:
        by_doc.setdefault(p.doc_id, []).append(p.text)
    variants = [by_doc[f"museum-{enc}.txt"] for enc in ENCODINGS]
    assert all(v == variants[0] for v in variants) and any("3.7亿元" in t for t in variants[0])
    assert DOC in by_doc  # the original document is still there


BAD_FILES = {
    "empty.txt": (b"", "empty.txt: file is empty"),
    "blank.md": (b" \n\t\r\n", "blank.md: file is empty"),
    "bom-only.txt": (b"\xef\xbb\xbf", "bom-only.txt: no text left after cleaning"),
    "photo.txt": (Path(__file__).resolve().parent.parent.joinpath("docs", "screenshot-chat.png").read_bytes()[:65536],
                  "photo.txt: cannot decode"),
    "program.txt": (b"\x7fELF\x02\x01\x01" + bytes(4096), "program.txt: looks binary"),
    "scan.pdf": (pdf_without_text(), "scan.pdf: the PDF has no text layer"),
    "truncated.docx": (docx_bytes("新增养老床位2000张。")[:1500], "truncated.docx: not a readable .docx"),
    "not-word.docx": (zip_without_docx_parts(), "not-word.docx: not a readable .docx"),
    "no-text.docx": (docx_bytes(""), "no-text.docx: the .docx file has no text"),
}


def test_bad_files_in_corpus_are_reported_by_name_and_others_still_indexed(small_corpus, tmp_path):
    for name, (data, _) in BAD_FILES.items():
        (small_corpus / name).write_bytes(data)
    (small_corpus / "good.md").write_text(TEXT, encoding="utf-8")
    out = tmp_path / "idx"
    report = build_index(small_corpus, out, FakeEmbedder(), progress=False)
    assert set(report.errors) == set(BAD_FILES)
    for name, (_, message) in BAD_FILES.items():
        assert message in report.errors[name], report.errors[name]
    manifest = read_manifest(out)
    assert set(manifest["documents"]) == {DOC, "good.md"} and manifest["errors"] == report.errors
    loaded = load_index(out, FakeEmbedder())
    assert {p.doc_id for p in loaded.passages} == {DOC, "good.md"}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_upload_is_refused_and_nothing_changes(kb, name):
    data, message = BAD_FILES[name]
    corpus_before, index_before = tree_digest(kb.corpus_dir), tree_digest(kb.index_dir)
    with pytest.raises(IngestError) as err:
        kb.add_file(name, data)
    assert message in str(err.value)
    assert tree_digest(kb.corpus_dir) == corpus_before
    assert tree_digest(kb.index_dir) == index_before
    assert [d.doc_id for d in kb.documents()] == [DOC]


def test_oversized_upload_refused_before_anything_is_written(kb):
    data = ("新增养老床位2000张。" * 10 + "\n").encode("utf-8")
    data = data * (50 * 2**20 // len(data) + 1)
    assert len(data) > 50 * 2**20
    corpus_before, index_before = tree_digest(kb.corpus_dir), tree_digest(kb.index_dir)
    with pytest.raises(IngestError, match=rf"big\.txt: 5\d\.\d MB is over the {MAX_FILE_BYTES // 2**20} MB limit"):
        kb.add_file("big.txt", data)
    assert tree_digest(kb.corpus_dir) == corpus_before and tree_digest(kb.index_dir) == index_before
    assert not [p for p in kb.corpus_dir.iterdir() if p.name.startswith(".upload-")]


def test_oversized_file_in_corpus_is_skipped_with_the_limit_named(small_corpus, tmp_path):
    big = small_corpus / "big.txt"
    with big.open("wb") as f:
        f.truncate(50 * 2**20)  # sparse 50 MB file: size check must fire before reading it
    out = tmp_path / "idx"
    report = build_index(small_corpus, out, FakeEmbedder(), progress=False)
    assert report.errors == {"big.txt": f"big.txt: 52.4 MB is over the {MAX_FILE_BYTES // 2**20} MB limit"}
    assert set(read_manifest(out)["documents"]) == {DOC}


def test_good_upload_after_bad_ones_still_works(kb):
    for name, (data, _) in BAD_FILES.items():
        with pytest.raises(IngestError):
            kb.add_file(name, data)
    kb.add_file("good.docx", docx_bytes(TEXT.replace("\n\n", "\n")))
    assert sorted(d.doc_id for d in kb.documents()) == sorted([DOC, "good.docx"])


# --------------------------------------------------------------------------- index directories
def test_assistant_load_missing_directory_names_rebuild_command(tmp_path):
    with pytest.raises(IndexLoadError, match=rf"no index at .*missing.*{REBUILD}"):
        Assistant.load(tmp_path / "missing", embedder=FakeEmbedder())
    assert not (tmp_path / "missing").exists()  # loading never creates anything


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _edit_manifest(**changes):
    def edit(index_dir: Path) -> None:
        m = json.loads((index_dir / "manifest.json").read_text(encoding="utf-8"))
        for key, value in changes.items():
            if key in ("id", "sha256"):
                m["model"][key] = value
            else:
                m[key] = value
        (index_dir / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    return edit


CORRUPTIONS = {
    "truncated faiss.index": (lambda d: _truncate(d / "faiss.index"), "truncated|corrupt"),
    "truncated passages.jsonl": (lambda d: _truncate(d / "passages.jsonl"), "passages.jsonl is missing or corrupt|inconsistent"),
    "extra passage line": (lambda d: (d / "passages.jsonl").write_text(
        (d / "passages.jsonl").read_text(encoding="utf-8") * 2, encoding="utf-8"), "inconsistent"),
    "missing vectors.npy": (lambda d: (d / "vectors.npy").unlink(), "corrupt"),
    "truncated vectors.npy": (lambda d: _truncate(d / "vectors.npy"), "corrupt"),
    "truncated sentence_vectors.npy": (lambda d: _truncate(d / "sentence_vectors.npy"), "corrupt"),
    "missing bm25": (lambda d: shutil.rmtree(d / "bm25"), "BM25 index .* missing or corrupt"),
    "garbage profile.json": (lambda d: (d / "profile.json").write_text("[oops", encoding="utf-8"), "corrupt"),
    "empty manifest": (lambda d: (d / "manifest.json").write_text("", encoding="utf-8"), "corrupt"),
    "other model weights (same id)": (_edit_manifest(sha256="0" * 64), r"built with model 'fake-bigram-64' \(sha256 000000000000"),
    "other model id": (_edit_manifest(id="BAAI/bge-small-zh-v1.5"), "built with model 'BAAI/bge-small-zh-v1.5'"),
    "older format version": (_edit_manifest(format_version=2), "format version 2, this Wenda reads version"),
    "no format version": (_edit_manifest(format_version=None), "format version None"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_assistant_load_refuses_damaged_index_with_rebuild_command(index_copy, case):
    damage, message = CORRUPTIONS[case]
    damage(index_copy)
    with pytest.raises(IndexLoadError) as err:
        Assistant.load(index_copy, embedder=FakeEmbedder())
    text = str(err.value)
    assert re.search(message, text), text
    assert f"{REBUILD} CORPUS_DIR --out {index_copy}" in text


def test_rebuild_over_damaged_index_recovers(index_copy, tmp_path):
    """The command the error names really fixes it: a forced build over the damaged directory."""
    _truncate(index_copy / "faiss.index")
    corpus = tmp_path / "c"
    corpus.mkdir()
    shutil.copy(CORPUS / DOC, corpus / DOC)
    build_index(corpus, index_copy, FakeEmbedder(), progress=False, force=True)
    a = Assistant.load(index_copy, embedder=FakeEmbedder())
    assert len(a.index.passages) > 10
    assert np.allclose(np.linalg.norm(a.index.vectors, axis=1), 1.0, atol=1e-4)


def test_delete_drops_corpus_manifest_entry_so_a_reupload_is_a_new_document(kb):
    manifest = kb.corpus_dir / "manifest.json"
    manifest.write_text(json.dumps({"documents": {DOC: {"title": "旧标题", "year": 2021, "date": "2021"}}},
                                   ensure_ascii=False), encoding="utf-8")
    data = (kb.corpus_dir / DOC).read_bytes()
    kb.add_file(DOC, data)  # re-index so the manifest title is used
    assert {d.doc_id: d.title for d in kb.documents()}[DOC] == "旧标题"
    kb.delete(DOC)
    assert DOC not in json.loads(manifest.read_text(encoding="utf-8"))["documents"]
    kb.add_file(DOC, data)
    assert {d.doc_id: d.title for d in kb.documents()}[DOC] != "旧标题"


def test_failed_delete_restores_file_and_manifest_entry(kb, monkeypatch):
    import index.kb as kb_module

    manifest = kb.corpus_dir / "manifest.json"
    original = json.dumps({"documents": {DOC: {"title": "旧标题"}}}, ensure_ascii=False)
    manifest.write_text(original, encoding="utf-8")
    before = (kb.corpus_dir / DOC).read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(kb_module, "build_index", broken)
    with pytest.raises(IngestError, match="nothing was changed"):
        kb.delete(DOC)
    assert (kb.corpus_dir / DOC).read_bytes() == before
    assert manifest.read_text(encoding="utf-8") == original
