"""The answering seam: answerers chosen by configuration; the reader answerer end to end."""
from __future__ import annotations

import pytest

from qa.answerers import ANSWERERS, make_answerer
from qa.answerers.rules import RulesAnswerer
from qa.answerers.trained import DEFAULT_REFUSAL, ReaderAnswerer, answer_probability, refusal_inputs


def test_answerer_chosen_by_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(make_answerer("rules"), RulesAnswerer)
    assert isinstance(make_answerer("reader"), ReaderAnswerer)
    monkeypatch.setenv("WENDA_ANSWERER", "rules")
    assert isinstance(make_answerer(), RulesAnswerer)
    monkeypatch.delenv("WENDA_ANSWERER")
    assert isinstance(make_answerer(), RulesAnswerer)  # the default until a reader meets its targets
    with pytest.raises(ValueError, match="unknown answerer 'llama'"):
        make_answerer("llama")
    assert set(ANSWERERS) == {"reader", "rules"}


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
