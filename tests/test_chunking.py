"""Cleaning and chunking on the real corpus, with exact expectations."""
from __future__ import annotations

import re

import pytest

from index.chunking import MAX_CHARS, chunk_document, parse_document, split_sentences
from index.ingest import load_corpus

from .conftest import CORPUS


@pytest.fixture(scope="module")
def docs():
    result = load_corpus(CORPUS)
    assert result.errors == {}
    return {d.doc_id: d for d in result.documents}


@pytest.fixture(scope="module")
def passages(docs):
    return {doc_id: chunk_document(d) for doc_id, d in docs.items()}


def find(passages, doc_prefix, needle):
    for doc_id, ps in passages.items():
        if doc_id.startswith(doc_prefix):
            for p in ps:
                if needle in p.text:
                    return p
    raise AssertionError(f"{needle!r} not in any passage of {doc_prefix}")


def test_manifest_metadata(docs):
    d = docs["001_235c536e8061af74.txt"]
    assert d.title == "2021年太原市政府工作报告"
    assert d.date == "2021-02-23" and d.year == 2021
    assert docs["003_7da918cca5064f34.txt"].year == 2025
    assert docs["004_dcf08f31ebd92ceb.txt"].year == 2022


def test_broken_lines_joined(docs):
    text = docs["000_3fb2685dc506a497.txt"].text
    assert "不断提升工业发展含金量" in text  # "不\n\n断提升" in the source
    assert "积极推进基础性、牵引性重大改革,打造一流营商环境" in text
    assert "坚信，有习近平总书记的掌舵领航" in docs["002_48b335a43732d2b5.txt"].text


def test_page_marks_and_markdown_dropped(docs):
    text = docs["004_dcf08f31ebd92ceb.txt"].text
    assert "上接第1版" not in text and "下转第3版" not in text
    assert "**" not in text and not re.search(r"^#", text, re.M)
    assert text.startswith("政府工作报告\n文旅产业深度融合。")


def test_stray_spaces_removed_original_punctuation_kept(docs):
    text = docs["003_7da918cca5064f34.txt"].text
    assert "轨道交通1号线二期" in text and "1 号线" not in text
    assert "673个续建老旧小区" in text and "绿色建筑" in text
    # Full-width punctuation is kept for display (no width folding in the cleaned text).
    assert "，" in docs["002_48b335a43732d2b5.txt"].text
    assert "," in text and "，" not in text


def test_section_paths(passages):
    assert find(passages, "003", "新增养老床位2000张").section == "关键词:民生 › □推进“老有厚养”"
    p = find(passages, "001", "160个贫困村全部退出")
    assert p.section.startswith("一、“十三五”时期及2020年工作回顾")
    p = find(passages, "004", "力争市区优良天数比例达到63%以上")
    assert "(七)系统治理" in p.section and p.section.startswith("政府工作报告 › 三、2022年工作安排")
    p = find(passages, "000", "高起点建设太忻一体化经济区")
    assert p.section.endswith("聚焦国家区域中心城市建设")


def test_offsets_round_trip_and_sizes(docs, passages):
    for doc_id, ps in passages.items():
        text = docs[doc_id].text
        assert ps, doc_id
        for p in ps:
            assert text[p.start:p.end] == p.text
            assert 0 < len(p.text) <= MAX_CHARS * 1.5
            assert p.doc_id == doc_id and p.title == docs[doc_id].title
        assert len({p.id for p in ps}) == len(ps)


def test_long_paragraphs_overlap_by_one_sentence(docs, passages):
    ps = passages["004_dcf08f31ebd92ceb.txt"]
    overlaps = [a for a, b in zip(ps, ps[1:]) if b.start < a.end]
    assert overlaps, "long paragraphs are windowed with overlap"
    for a in overlaps:
        b = ps[ps.index(a) + 1]
        shared = docs["004_dcf08f31ebd92ceb.txt"].text[b.start:a.end]
        assert re.search(r"[。！？；]$", shared), "the overlap is whole sentences"


def test_short_bullets_grouped_under_heading(passages):
    p = find(passages, "003", "推动太原市第二人民医院建成安宁疗护中心")
    assert "每个县(市、区)至少建成1所医养结合服务机构" in p.text


def test_ids_stable(docs):
    d = docs["003_7da918cca5064f34.txt"]
    assert [p.id for p in chunk_document(d)] == [p.id for p in chunk_document(d)]


def test_parse_headings_from_markdown_and_outline():
    text, blocks = parse_document("# 标题\n\n一、总体要求\n\n（一）发展目标\n\n**加快建设。**正文第一句。第二句。\n\n1. 小点内容很短\n")
    kinds = [(b.kind, b.level) for b in blocks]
    assert kinds[:3] == [("heading", 0), ("heading", 1), ("heading", 2)]
    assert "**" not in text and text.splitlines()[0] == "标题"
    para = blocks[3]
    assert para.kind == "para" and para.leads and para.leads[0][1] == "加快建设"


def test_split_sentences_offsets():
    text = "第一句。第二句！Third? 末尾"
    spans = split_sentences(text, 10)
    assert [text[s - 10:e - 10] for s, e in spans] == ["第一句。", "第二句！", "Third?", "末尾"]
