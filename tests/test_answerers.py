"""The answering seam: answerers chosen by configuration; the reader answerer end to end."""
from __future__ import annotations

import pytest

from qa.answer import not_found_message
from qa.answerers import ANSWERERS, make_answerer
from qa.answerers.hybrid import HybridAnswerer
from qa.answerers.rules import RulesAnswerer
from qa.answerers.trained import DEFAULT_REFUSAL, ReaderAnswerer, answer_probability, refusal_inputs


def test_answerer_chosen_by_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(make_answerer("rules"), RulesAnswerer)
    assert isinstance(make_answerer("reader"), ReaderAnswerer)
    monkeypatch.setenv("WENDA_ANSWERER", "rules")
    assert isinstance(make_answerer(), RulesAnswerer)
    monkeypatch.delenv("WENDA_ANSWERER")
    assert isinstance(make_answerer(), HybridAnswerer)  # the default: chosen on the gold fit split
    with pytest.raises(ValueError, match="unknown answerer 'llama'"):
        make_answerer("llama")
    assert set(ANSWERERS) == {"hybrid", "reader", "rules"}


@pytest.mark.slow
def test_hybrid_routes_what_which_who_questions_to_the_reader(assistant) -> None:
    from qa import Assistant

    hybrid = HybridAnswerer(assistant.embedder)
    routed: list[str] = []
    hybrid.reader.answer = lambda req, answer, a: routed.append("reader") or answer
    hybrid.rules.answer = lambda req, answer, a: routed.append("rules") or answer
    a = Assistant(assistant.index, assistant.embedder, answerer=hybrid)
    for q in ("太原市代市长是谁？", "太原要加快建设哪所学校？", "2025年太原新增养老床位多少张？",
              "How many new elderly-care beds will Taiyuan add in 2025?", "Which school will Taiyuan build?"):
        a.ask(q)
    assert routed == ["reader", "reader", "rules", "rules", "rules"]  # cross-lingual questions: rules


@pytest.mark.slow
def test_default_answerer_answers_through_both_paths(assistant) -> None:
    assert isinstance(assistant.answerer, HybridAnswerer)
    ans = assistant.ask("2025年太原新增养老床位多少张？")  # a figure: the rules
    assert not ans.not_found and ans.short_answer == "2000张"
    ans = assistant.ask("2025年太原要加快建设哪所专门学校？")  # which school: the reader's span
    assert not ans.not_found and ans.short_answer and ans.short_answer in ans.citations[0].span


@pytest.mark.slow
def test_hybrid_refuses_a_rules_figure_the_reader_does_not_confirm(assistant) -> None:
    from qa import Assistant

    question = "2025年太原新增养老床位多少张？"
    strict = HybridAnswerer(assistant.embedder, verify_below=1.01)  # check every rules short answer
    a = Assistant(assistant.index, assistant.embedder, answerer=strict)
    ans = a.ask(question)
    # Checked and kept: the reader, reading the cited passage, points at the same figure.
    assert not ans.not_found and ans.short_answer == "2000张"
    # Kept too when the reader's span runs on past the figure (6.6%,总量迈上4千亿元台阶,…).
    ans = a.ask("“十三五”时期太原地区生产总值年均增长多少？")
    assert not ans.not_found and ans.short_answer == "6.6%"

    rules_answer = strict.rules.answer

    def wrong_figure(req, answer, assistant_):
        out = rules_answer(req, answer, assistant_)
        out.short_answer = "12345张"  # not what the passage's reader span says
        return out

    strict.rules.answer = wrong_figure
    ans = a.ask(question)
    assert ans.not_found and not ans.short_answer and not ans.citations and ans.related
    # The refusal says why: a passage was found, its figure not confirmed (not "the documents don't say").
    assert ans.message == not_found_message(question, unconfirmed=True) != not_found_message(question)
    lenient = HybridAnswerer(assistant.embedder, verify_below=0.0)  # strong evidence: no check
    lenient.rules.answer = wrong_figure
    ans = Assistant(assistant.index, assistant.embedder, answerer=lenient).ask(question)
    assert not ans.not_found and ans.short_answer == "12345张"


def test_refusal_model_before_a_fit_is_the_reader_margin() -> None:
    # Unfitted: answer exactly when the best span beats its passage's no-answer score.
    assert answer_probability(refusal_inputs(0.5, 0.3), DEFAULT_REFUSAL) > DEFAULT_REFUSAL["threshold"]
    assert answer_probability(refusal_inputs(-0.5, 0.9), DEFAULT_REFUSAL) < DEFAULT_REFUSAL["threshold"]
    assert refusal_inputs(1.0, 0.5)["confidence"] == pytest.approx(0.0)


@pytest.mark.slow
def test_reader_answerer_without_weights_is_a_clear_error(assistant, tmp_path) -> None:
    from qa import Assistant
    from qa.reader import ReaderError

    a = Assistant(assistant.index, assistant.embedder,
                  answerer=ReaderAnswerer(assistant.embedder, weights=tmp_path / "missing.safetensors"))
    with pytest.raises(ReaderError, match="python -m qa.reader train"):
        a.ask("2025年太原新增养老床位多少张？")


@pytest.mark.slow
def test_rules_answerer_answers_through_the_seam(assistant) -> None:
    from qa import Assistant

    rules = Assistant(assistant.index, assistant.embedder, answerer="rules")
    ans = rules.ask("2025年太原新增养老床位多少张？")
    assert not ans.not_found and ans.short_answer == "2000张"
    assert ans.citations[0].span == ans.sentence and "2000张" in ans.sentence


@pytest.mark.parametrize("text,span,want", [
    ("每千人拥有医疗床位8.82张。", "8.82", "8.82张"),         # unit left out by the reader
    ("基站达到5000座以上。", "5000座", "5000座以上"),           # qualifier
    ("增长8%-8.5%。", "8.5%", "8%-8.5%"),                     # range
    ("排名第15位。", "15位", "第15位"),                       # ordinal
    ("检测能力达到27万人份。", "27万人", "27万人份"),          # measure word 人份, not 人
    ("就业8万人,居民消费价格涨幅2%左右。", "8万人,居民消费价格涨幅2%", "2%左右"),  # several figures: the last
    ("于2020年5月12日视察山西。", "5月12", "2020年5月12日"),     # a date stays whole
    ("建设太原无水港。", "无水港", "无水港"),                    # no figure: unchanged
])
def test_reader_span_made_a_whole_figure(text: str, span: str, want: str) -> None:
    from qa.answerers.trained import whole_figure

    s = text.index(span)
    a, b = whole_figure(text, s, s + len(span), last_only=True)
    assert text[a:b] == want


@pytest.mark.slow
def test_shipped_reader_answers_through_the_seam(assistant) -> None:
    from qa import Assistant

    reader = Assistant(assistant.index, assistant.embedder, answerer="reader")
    ans = reader.ask("2025年太原新增养老床位多少张？")
    assert not ans.not_found and "2000张" in ans.short_answer
    assert ans.short_answer in ans.citations[0].span and ans.citations[0].doc_id == "003_7da918cca5064f34.txt"
