"""The corpus profile (issue 13): per-index tokenisation and stopwords, years of any century, covers_year
from the manifest, language, examples from headings, and Western-script text handled like Chinese."""
from __future__ import annotations

import json
from pathlib import Path

from index.chunking import chunk_document, passage_sentences
from index.ingest import load_corpus
from index.profile import CorpusProfile, detect_language, make_profile
from index.textproc import STOPWORDS, TextProcessor, tokenize, years_in
from qa.answer import DATE_RE, FIGURE_RE
from qa.retrieval import same_language


def test_each_processor_keeps_its_own_terms_and_stopwords() -> None:
    a = TextProcessor(terms=["养老床位"], stopwords=["某市"])
    b = TextProcessor()
    q = "2025年某市新增养老床位多少张"
    assert "养老床位" in a.tokenize(q) and "某市" not in a.tokenize(q)
    # the other index (and the index-free default) is untouched by a's terms and stopwords
    assert "养老床位" not in b.tokenize(q) and "养老床位" not in tokenize(q)
    assert "某市" not in STOPWORDS


def test_generic_stopwords_are_function_words_only() -> None:
    assert {"的", "多少", "the", "how"} <= STOPWORDS
    assert not {"太原", "报告", "taiyuan", "report", "city"} & STOPWORDS


def test_years_of_any_century_but_not_quantities() -> None:
    assert years_in("1949年建国，1911年辛亥革命") == [1949, 1911]
    assert years_in("in 2023 the council built 2000张 beds, 2000.5 tonnes") == [2023]
    assert years_in("2019-2020年") == [2019, 2020]
    assert years_in("1500米") == []


def _corpus(tmp_path: Path, manifest: dict | None, files: dict[str, str]) -> Path:
    folder = tmp_path / "c"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    if manifest is not None:
        (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return folder


def test_profile_from_manifest_and_covers_year(tmp_path: Path) -> None:
    folder = _corpus(tmp_path, {
        "title": "某市报告", "stopwords": ["某市"], "examples": ["某市2024年新建学校多少所？"],
        "documents": {"a.txt": {"title": "2024年报告", "year": 2024, "covers_year": 2023},
                      "b.txt": {"title": "百科条目"}},
    }, {"a.txt": "2023年新建学校12所。2024年计划新建15所。", "b.txt": "1937年建成的桥。"})
    docs = load_corpus(folder).documents
    by_id = {d.doc_id: d for d in docs}
    assert by_id["a.txt"].covers_year == 2023
    # a manifest entry without a year: the document speaks for none (no guess from "1937年")
    assert by_id["b.txt"].year is None
    passages = [p for d in docs for p in chunk_document(d)]
    assert {p.covers_year for p in passages if p.doc_id == "a.txt"} == {2023}
    profile = make_profile(folder, docs, passages)
    assert profile.stopwords == ["某市"] and profile.language == "zh" and profile.years == [2023, 2024]
    assert profile.examples == ["某市2024年新建学校多少所？"] and profile.title == "某市报告"
    assert CorpusProfile.from_dict(profile.to_dict()) == profile


def test_profile_without_manifest_mines_language_and_examples(tmp_path: Path) -> None:
    text = "# Annual report\n\n## Housing\n\nIn 2023, 1,327 new homes were completed. The target is 1,400.\n"
    folder = _corpus(tmp_path, None, {"r.md": text})
    docs = load_corpus(folder).documents
    passages = [p for d in docs for p in chunk_document(d)]
    profile = make_profile(folder, docs, passages)
    assert profile.language == "en" and profile.fitted is None
    assert profile.examples and all(q.startswith("What does") for q in profile.examples)
    assert detect_language(["太原市政府工作报告"]) == "zh" and detect_language(["中文 and some English words"]) == "mixed"


def test_lexical_matching_follows_the_collection_language() -> None:
    assert same_language("How many homes?", "en") and not same_language("多少套住房？", "en")
    assert same_language("多少套住房？", "zh") and not same_language("How many homes?", "zh")
    assert same_language("How many homes?", "mixed")


def test_western_text_sentences_and_figures() -> None:
    t = "In 2023, 1,327 new homes were completed. The Band D tax was £1,829.11 in 2023. Keep 2.5 whole."
    assert [t[s:e] for s, e in passage_sentences(t)] == [
        "In 2023, 1,327 new homes were completed.", "The Band D tax was £1,829.11 in 2023.", "Keep 2.5 whole."]
    figures = [m.group().strip() for m in FIGURE_RE.finditer("21.7 million journeys and £1,829.11")]
    assert figures == ["21.7 million", "£1,829.11"]
    assert [m.group() for m in DATE_RE.finditer("opened on 1 April 2024, not March 2025")] == ["1 April 2024", "March 2025"]


def test_a_document_only_dated_the_asked_year_does_not_jump_ahead() -> None:
    from index.types import Passage
    from qa.rerank import Reranker
    from qa.retrieval import QueryInfo
    from qa.types import Hit

    def hit(pid: str, year: float, fused: float, score: float) -> Hit:
        p = Passage(pid, pid, pid, "", None, "", "text", 0, 4, 0)
        return Hit(p, score, features={"year": year, "fused": fused})

    answering = hit("report", 0.6, 1.0, 8.0)      # mentions the year, found by every channel
    stray = hit("upload", 1.0, 0.3, 6.0)          # dated that year, found by one channel only
    dated = hit("dated", 1.0, 0.8, 5.0)           # dated that year and agreed on: the year decides
    reranker = Reranker.__new__(Reranker)
    reranker.features = lambda info, hits, qtype: None
    reranker.weights = type("W", (), {"for_query": lambda self, same: {"fused": 1.0}})()
    info = QueryInfo(text="2017年多少", tokens=[], has_cjk=True, years=[2017], periods=[])
    order = [h.passage.id for h in reranker.rerank(info, [stray, answering, dated], "number")]
    assert order == ["dated", "report", "upload"]
