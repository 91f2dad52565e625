"""Greetings and fillers get a friendly prompt, not the nearest passage."""
from __future__ import annotations

import pytest

from qa.assistant import SMALL_TALK_EN, SMALL_TALK_ZH, is_small_talk


@pytest.mark.parametrize("text", ["hello", "Hello!", " hi ", "thank you", "Thanks.", "你好", "谢谢！", "测试", "ok bye"])
def test_small_talk_recognised(text):
    assert is_small_talk(text)


@pytest.mark.parametrize("text", ["hello world population", "你好，2025年新增养老床位多少张？", "How many beds?",
                                  "test scores of pupils", "养老", "2000"])
def test_questions_are_not_small_talk(text):
    assert not is_small_talk(text)


@pytest.mark.slow
@pytest.mark.parametrize("text, message", [("hello", SMALL_TALK_EN), ("你好", SMALL_TALK_ZH)])
def test_assistant_answers_small_talk_with_a_prompt(assistant, text, message):
    ans = assistant.ask(text)
    assert ans.not_found and ans.message == message and not ans.citations
