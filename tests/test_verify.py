"""The generated-answer verifier: numbers, dates, entities, similarity, citations with exact offsets."""
from __future__ import annotations

import pytest

from index.types import Passage
from qa.types import Hit
from qa.verify import (
    FLAG, KEEP, REMOVE, Verifier, chinese_to_number, cited_numbers, extract_numbers, split_generated, strip_markers,
)

ELDERLY = (
    "推动太原市第二人民医院建成安宁疗护中心。"
    "推进全省最大的社会康养中心建成投用，新增养老床位2000张。"
    "新建改造一批城镇社区养老中心、农村老年食堂。"
)
SCHOOLS = "新建公办幼儿园10所，新增学位2500个。推动大东关小学等18个新改扩建项目建成投用，新增学位2.4万个。"
BEDS_SENTENCE = "推进全省最大的社会康养中心建成投用，新增养老床位2000张。"


def _passage(pid: str, text: str, section: str) -> Passage:
    return Passage(id=pid, doc_id="003_report.txt", title="2025年太原市政府工作报告要点", date="2025-02-25", year=2025,
                   section=section, text=text, start=0, end=len(text), ordinal=0)


P_ELDERLY = _passage("p-elderly", ELDERLY, "推进“老有厚养”")
P_SCHOOLS = _passage("p-schools", SCHOOLS, "推进“学有优教”")


# --------------------------------------------------------------------------- pure functions
@pytest.mark.parametrize("text, value", [
    ("两千", 2000), ("2千", 2000), ("0.2万", 2000), ("2,000", 2000), ("２０００", 2000), ("一万二千", 12000),
    ("4千亿元", 4e11), ("1.3万余个", 13000), ("三亿五千万", 3.5e8), ("二〇二五年", 2025), ("第十五位", 15),
    ("2.4 million", 2.4e6), ("6.6%", 6.6),
])
def test_numbers_are_normalised(text, value):
    assert [v for v, _ in extract_numbers(text)] == [pytest.approx(value)]


@pytest.mark.parametrize("text", ["十三五", "百姓", "千家万户", "三个", "统一规划", "进一步"])
def test_words_with_numeral_characters_are_not_numbers(text):
    assert extract_numbers(text) == []


def test_chinese_numerals():
    assert chinese_to_number("两千") == 2000
    assert chinese_to_number("十五") == 15
    assert chinese_to_number("一千零五") == 1005
    assert chinese_to_number("十三五") is None


def test_split_keeps_markers_with_their_sentence():
    text = "2025年新增养老床位2000张。[1] 此外还将新增学位2500个[2][1]。答案如下：\n1. 建成安宁疗护中心[1]\nIt adds 2,000 beds [1]. Done."
    assert split_generated(text) == [
        "2025年新增养老床位2000张。[1]", "此外还将新增学位2500个[2][1]。", "答案如下：建成安宁疗护中心[1]",
        "It adds 2,000 beds [1].", "Done.",
    ]
    assert cited_numbers("新增学位2500个[2][1]【3】[4-5]") == [2, 1, 3, 4, 5]
    assert strip_markers("1. 新增养老床位2000张[1]。") == "新增养老床位2000张。"
    assert strip_markers("2000[资料中没有找到答案]") == "2000"


# --------------------------------------------------------------------------- verifier (real embedder)
@pytest.fixture(scope="module")
def verifier(embedder):
    return Verifier(embedder)


@pytest.mark.slow
def test_supported_sentence_kept_with_exact_citation_offsets(verifier):
    v = verifier.verify("2025年太原新增养老床位2000张[1]。", [Hit(P_ELDERLY, 1.0), Hit(P_SCHOOLS, 0.5)])
    (s,) = v.sentences
    assert s.action == KEEP and s.supported, s.reason
    assert s.text == "2025年太原新增养老床位2000张。"
    assert s.passage == 1 and s.citation == 1 and s.cited == [1]
    start = ELDERLY.index(BEDS_SENTENCE)
    assert (s.start, s.end) == (start, start + len(BEDS_SENTENCE))
    (c,) = v.citations
    assert (c.n, c.passage_id, c.start, c.end) == (1, "p-elderly", start, start + len(BEDS_SENTENCE))
    assert c.span == BEDS_SENTENCE
    assert v.supported_rate == 1.0


@pytest.mark.slow
def test_wrong_number_removed(verifier):
    v = verifier.verify("2025年太原新增养老床位3000张[1]。", [P_ELDERLY])
    (s,) = v.sentences
    assert s.action == REMOVE and not s.supported
    assert s.missing == ["3000"] and "3000" in s.reason
    assert s.citation is None and v.citations == []
    assert v.supported_rate == 0.0


@pytest.mark.slow
def test_wrong_year_removed(verifier):
    (s,) = verifier.verify("2024年太原新增养老床位2000张[1]。", [P_ELDERLY]).sentences
    assert s.action == REMOVE and s.missing == ["2024年"]


@pytest.mark.slow
@pytest.mark.parametrize("figure", ["两千", "2千", "0.2万", "2,000"])
def test_number_written_differently_is_supported(verifier, figure):
    (s,) = verifier.verify(f"太原将新增养老床位{figure}张[1]。", [P_ELDERLY]).sentences
    assert s.action == KEEP, s.reason
    assert (s.start, s.end) == (ELDERLY.index(BEDS_SENTENCE), ELDERLY.index(BEDS_SENTENCE) + len(BEDS_SENTENCE))


@pytest.mark.slow
def test_uncited_sentence_matched_to_best_passage(verifier):
    v = verifier.verify("太原将新增养老床位2000张。", [P_SCHOOLS, P_ELDERLY])
    (s,) = v.sentences
    assert s.cited == [] and s.passage == 2 and s.action == KEEP
    assert s.reason.startswith("no citation; matched [2]")
    assert v.citations[0].passage_id == "p-elderly" and v.citations[0].span == BEDS_SENTENCE


@pytest.mark.slow
def test_wrong_citation_reattributed_to_supporting_passage(verifier):
    v = verifier.verify("新建公办幼儿园10所，新增学位2500个[1]。", [P_ELDERLY, P_SCHOOLS])
    (s,) = v.sentences
    assert s.action == KEEP and s.passage == 2
    assert s.reason.startswith("cited [1], matched [2]; supported")
    assert v.citations[0].span == "新建公办幼儿园10所，新增学位2500个。"


@pytest.mark.slow
def test_figure_from_another_passage_still_removed(verifier):
    # 2500 is a number of school places in [2], not of beds: no re-attribution, removed.
    (s,) = verifier.verify("2025年太原新增养老床位2500张[1]。", [P_ELDERLY, P_SCHOOLS]).sentences
    assert s.action == REMOVE and s.passage == 1 and s.missing == ["2500"]


@pytest.mark.slow
def test_bare_answer_judged_with_the_question(verifier):
    # "2000张" alone says little; completed by the question it is a supported answer.
    (s,) = verifier.verify("2000张[编号1]", [P_ELDERLY], question="2025年太原新增养老床位多少张？").sentences
    assert s.action == KEEP and s.cited == [1], s.reason
    (en,) = verifier.verify("2000[1]", [P_ELDERLY], question="How many elderly-care beds in 2025?").sentences
    assert en.action == KEEP, en.reason  # judged with the English (cross-lingual) threshold


@pytest.mark.slow
def test_missing_entity_flagged_not_removed(verifier):
    v = verifier.verify("太原将在“晋阳康养谷”新增养老床位2000张[1]。", [P_ELDERLY])
    (s,) = v.sentences
    assert s.action == FLAG and not s.supported
    assert s.missing == ["晋阳康养谷"] and "晋阳康养谷" in s.reason
    assert s.citation == 1 and v.citations[0].span == BEDS_SENTENCE


@pytest.mark.slow
def test_unrelated_sentence_flagged_by_similarity(verifier):
    (s,) = verifier.verify("鼓励居民多参加体育锻炼，增强身体素质[1]。", [P_SCHOOLS]).sentences
    assert s.action == FLAG and s.reason.startswith("similarity")


@pytest.mark.slow
def test_mixed_answer_counts_and_numbering(verifier):
    text = ("2025年太原新增养老床位2000张[1]。新建公办幼儿园10所[2]。"
            "同时新增学位5000个[2]。根据资料，资料中没有找到其他内容。")
    v = verifier.verify(text, [P_ELDERLY, P_SCHOOLS])
    assert [s.action for s in v.sentences] == [KEEP, KEEP, REMOVE]
    assert v.no_answer
    assert [s.citation for s in v.sentences] == [1, 2, None]
    assert [c.passage_id for c in v.citations] == ["p-elderly", "p-schools"]
    assert v.supported_rate == pytest.approx(2 / 3)


@pytest.mark.slow
def test_english_sentence_checked_by_numbers_and_similarity(verifier):
    ok = verifier.verify("Taiyuan will add 2,000 elderly-care beds in 2025 [1].", [P_ELDERLY]).sentences[0]
    bad = verifier.verify("Taiyuan will add 3,000 elderly-care beds in 2025 [1].", [P_ELDERLY]).sentences[0]
    assert ok.action == KEEP, ok.reason
    assert bad.action == REMOVE and bad.missing == ["3000"]
