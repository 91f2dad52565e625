"""Rules and the trained reader, each where it is measured to be better: the reader's span answers
what/which/who questions in the collection's language; the rules answer figures, dates, lists,
explanations and cross-lingual questions."""
from __future__ import annotations

from typing import Any

from ..types import Answer
from .base import Answerer, AnswerRequest
from .rules import RulesAnswerer
from .trained import ReaderAnswerer

# Question types (qa.rerank.question_type) the reader answers. On the gold fit split the reader's spans
# were right on 9 of 16 entity questions against the rules' 4, and wrong (answered, no gold in the short
# answer) on fewer; on figure (23 vs 27 of 31), time, list and English questions the rules did better.
READER_TYPES = frozenset({"entity", "person"})


class HybridAnswerer(Answerer):
    """Delegates each question to :class:`ReaderAnswerer` or :class:`RulesAnswerer` by question type.

    Both share the assistant's calibrated retrieval gate for "not found"; the reader (and its model)
    loads on the first question it gets.
    """

    name = "hybrid"

    def __init__(self, embedder: Any = None) -> None:
        self.rules = RulesAnswerer()
        self.reader = ReaderAnswerer(embedder)

    def uses_reader(self, req: AnswerRequest) -> bool:
        """Whether the reader answers this question (what/which/who, in the collection's language)."""
        return req.info.same_language and req.qtype in READER_TYPES

    def answer(self, req: AnswerRequest, answer: Answer, assistant: Any) -> Answer:
        return (self.reader if self.uses_reader(req) else self.rules).answer(req, answer, assistant)

    def warm_up(self) -> None:
        self.reader.warm_up()
