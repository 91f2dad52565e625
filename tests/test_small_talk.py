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
@pytest.mark.parametrize("text, message, example", [
    ("hello", SMALL_TALK_EN, "How many new elderly-care beds will Taiyuan add in 2025?"),
    ("你好", SMALL_TALK_ZH, "2025年太原新增养老床位多少张？"),
])
def test_assistant_answers_small_talk_with_the_collections_example(assistant, text, message, example):
    ans = assistant.ask(text)  # the example comes from the corpus manifest, not from the code
    assert ans.not_found and ans.message.startswith(message) and example in ans.message and not ans.citations


def test_small_talk_without_examples_is_generic():
    from qa.assistant import small_talk_message

    assert small_talk_message("zh", []) == SMALL_TALK_ZH + "。"
    assert small_talk_message("en", ["只有中文例子"]) == SMALL_TALK_EN + "."
