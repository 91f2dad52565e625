"""QA pipeline: retrieval channels, fusion, year awareness, rewriting, offsets invariant, refusal."""
from __future__ import annotations

import json

import numpy as np
import pytest

from index.stores import Filter
from qa import Answer, QuestionError
from qa.answer import not_found_message

from .conftest import GOLD

pytestmark = pytest.mark.slow


def test_chinese_question_uses_bm25_dense_and_sentence_channels(assistant):
    _, info, qtype, hits, _ = assistant.retrieve("2025年太原新增养老床位多少张？", k=10)
    top = hits[0]
    assert {"dense", "bm25", "sent"} <= set(top.channels)
    assert "2000张" in top.passage.text and qtype == "number"
    assert top.channels["bm25"].rank <= 3
    for h in hits:
        assert set(h.features) >= {"dense", "sent", "bm25", "coverage", "year", "figure", "fused"}
        assert 0 < h.features["fused"] <= 1.0 + 1e-9


def test_english_question_rests_on_dense_channels(assistant):
    _, info, _, hits, _ = assistant.retrieve("How many new elderly-care beds will Taiyuan add in 2025?", k=10)
    assert not info.has_cjk and not info.same_language
    assert all(set(h.channels) <= {"dense", "sent"} and h.features["bm25"] == 0.0 for h in hits)
    assert any("dense" in h.channels for h in hits) and any("sent" in h.channels for h in hits)


def test_english_question_gets_chinese_evidence(assistant):
    ans = assistant.ask("How many new elderly-care beds will Taiyuan add in 2025?")
    assert not ans.not_found and ans.lang == "en"
    assert ans.short_answer == "2000张" and "养老床位2000张" in ans.sentence


@pytest.mark.parametrize("question,doc,figure", [
    ("2025年地区生产总值预期增长多少?", "003_7da918cca5064f34.txt", "5%左右"),
    ("2021年地区生产总值预期增长多少?", "001_235c536e8061af74.txt", "8%-8.5%"),
])
def test_year_decides_the_document(assistant, question, doc, figure):
    ans = assistant.ask(question)
    assert ans.citations[0].doc_id == doc and ans.short_answer == figure


def test_year_boost_and_retrospective_year(assistant):
    _, info, _, hits, _ = assistant.retrieve("2021年太原绿化覆盖率达到多少?", k=5)
    # 2021's results are reported in the 2022 report: that document ranks first.
    assert hits[0].passage.doc_id == "004_dcf08f31ebd92ceb.txt" and hits[0].features["year"] == 0.8


def test_filters_restrict_documents_and_years(assistant):
    ans = assistant.ask("新增养老床位多少张", docs=["001_235c536e8061af74.txt"])
    assert all(h.passage.doc_id == "001_235c536e8061af74.txt" for h in ans.hits)
    ans = assistant.ask("地区生产总值增长目标", years=[2022])
    assert ans.hits and all(h.passage.year == 2022 for h in ans.hits)


def test_offsets_invariant_on_every_gold_question(assistant):
    """Everything shown is a slice of a cited passage, which is a slice of its document."""
    docs = {d: m for d, m in assistant.index.documents.items()}
    by_id = {p.id: p for p in assistant.index.passages}
    for line in GOLD.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        ans: Answer = assistant.ask(item["question"])
        assert isinstance(ans, Answer)
        if ans.not_found:
            assert ans.message and not ans.citations
            continue
        assert ans.citations and ans.sentence == ans.citations[0].span
        for c in ans.citations:
            p = by_id[c.passage_id]
            assert c.text == p.text and c.doc_start == p.start and c.doc_id in docs
            assert 0 <= c.start < c.end <= len(c.text)
        for s in ans.summary:
            cited = ans.citations[s.citation - 1]
            assert s.text in cited.text
        if ans.short_answer:
            assert any(ans.short_answer in c.text for c in ans.citations), item["id"]


def test_summary_for_how_questions(assistant):
    ans = assistant.ask("如何打造一流创新生态？")
    assert 1 <= len(ans.summary) <= 3 and not ans.short_answer
    assert len({s.text for s in ans.summary}) == len(ans.summary)


# Known defect, made visible by the strict evaluation (issue 11): these were refused only while the
# not-found model and the jieba term list were fitted to the whole gold set; refitted on the fit
# split, the rule-based answerer answers them (wrongly). The trained reader's no-answer is meant to fix
# it (issue 12); strict xfail so that a fix shows up as a failure to update this test.
_REFUSAL_DEFECT = pytest.mark.xfail(strict=True, reason="rules refitted on the fit split do not refuse this")


@pytest.mark.parametrize("question", ["火星上有多少颗卫星?",
                                      # refused again since the reader checks the rules' figures (issue 12)
                                      "2021年末太原市常住人口是多少?",
                                      # a figure in the asked unit exists (重症床位128张) but is about another indicator
                                      pytest.param("2022年新增养老床位多少张?", marks=_REFUSAL_DEFECT)])
def test_refuses_when_documents_do_not_say(assistant, question):
    ans = assistant.ask(question)
    # Either "the documents don't say" or "a passage was found but its figure not confirmed" (the check)
    assert ans.not_found and ans.message in (not_found_message(question), not_found_message(question, True))
    assert ans.message.startswith(("资料中没有找到", "找到了相关段落"))
    assert not ans.citations and ans.related


@pytest.mark.parametrize("question", [pytest.param("How many satellites does Mars have?", marks=_REFUSAL_DEFECT),
                                      "Who wrote Hamlet?"])
def test_refusal_in_english(assistant, question):
    # Out-of-domain English questions fall under the English similarity cut fitted on the gold set.
    ans = assistant.ask(question)
    assert ans.not_found and ans.message.startswith(("The documents don't say", "A related passage was found"))


def test_english_answerable_question_still_answered(assistant):
    ans = assistant.ask("How many new elderly-care beds will Taiyuan add in 2025?")
    assert not ans.not_found and "2000" in ans.short_answer + ans.sentence


def test_follow_up_rewritten_and_shown(assistant):
    first = assistant.ask("2025年太原新增养老床位多少张？")
    follow = assistant.ask("那2021年呢？", history=[first])
    assert follow.rewritten_query == "2021年太原新增养老床位多少张？"
    assert follow.to_dict()["rewritten_query"] == "2021年太原新增养老床位多少张？"


@pytest.mark.parametrize("bad", ["", "   ", "x" * 501, "😀😀😀", "？？？"])
def test_bad_questions_rejected(assistant, bad):
    with pytest.raises(QuestionError):
        assistant.ask(bad)


def test_bad_arguments(assistant):
    with pytest.raises(ValueError, match="style"):
        assistant.ask("养老床位", style="poem")
    with pytest.raises(ValueError, match="k="):
        assistant.ask("养老床位", k=0)


def test_answer_is_json_serialisable(assistant):
    d = assistant.ask("2025年太原新增养老床位多少张？").to_dict()
    json.dumps(d, ensure_ascii=False)
    assert d["short_answer"] == "2000张" and d["citations"][0]["doc"] == "003_7da918cca5064f34.txt"
    c = d["citations"][0]
    assert c["text"][c["start"]:c["end"]] == d["sentence"]


def test_sentence_channel_equals_exhaustive_best_sentence(assistant):
    """Searching the top sentences gives the same passage order as scoring every sentence."""
    r = assistant.retriever
    for q in ["2025年太原新增养老床位多少张？", "How many public kindergartens will be built?", "城中村改造"]:
        info = r.analyze(q)
        info.vector = assistant.embedder.encode_queries([q])[0]
        n = 20
        got = r._sentences(info, n, None)
        sims = r.index.sentence_vectors @ info.vector
        best = np.full(len(r.index.passages), -np.inf)
        np.maximum.at(best, r._sent_passage, sims)
        truth = [int(i) for i in np.argsort(-best, kind="stable")[:n]]
        # Same passages with the same scores; rows whose scores tie within float error may swap.
        np.testing.assert_allclose([c.score for c in got.values()], best[truth], atol=1e-5)
        np.testing.assert_allclose([best[row] for row in got], best[truth], atol=1e-5)
        assert [c.rank for c in got.values()] == list(range(1, n + 1))


def test_filter_keeps_full_candidate_lists(assistant):
    """Under a document filter every channel still returns its top candidates from that document."""
    r = assistant.retriever
    doc = r.index.passages[0].doc_id
    hits = r.search("养老服务", k=50, where=Filter(doc_ids=[doc]))
    assert hits and all(h.passage.doc_id == doc for h in hits)
    assert len(hits) == min(50, sum(p.doc_id == doc for p in r.index.passages))
    assert r.search("养老服务", where=Filter(doc_ids=[])) == []
    year = r.index.passages[0].year
    hits = r.search("养老服务", k=50, where=Filter(doc_ids=[doc, "missing.txt"], years=[year]))
    assert hits and all(h.passage.doc_id == doc and h.passage.year == year for h in hits)


def test_figure_sentence_must_be_about_the_asked_indicator(assistant):
    from qa.answer import sentence_coverage

    r = assistant.retriever
    info = r.analyze("2022年新增养老床位多少张?")
    # Without a hand-listed term 养老床位 (removed: it came from the gold questions) the other
    # indicator's sentence shares 床位, so it covers part of the question, but less than the right one.
    other = sentence_coverage(info, "一次性增配救护车45辆、重症床位128张。", r, exclude="张")
    assert other < 0.5
    assert sentence_coverage(info, "推进全省最大的社会康养中心建成投用,新增养老床位2000张。", r, exclude="张") == 1.0
