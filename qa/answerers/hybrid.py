"""Rules and the trained reader, each where it is measured to be better: the reader's span answers
what/which/who questions in the collection's language; the rules answer figures, dates, lists,
explanations and cross-lingual questions, and the reader checks their figures: a short answer the reader,
reading the same passage, does not point at is refused unless the retrieval evidence is strong."""
from __future__ import annotations

from typing import Any

from index.textproc import normalize

from ..types import Answer
from .base import Answerer, AnswerRequest, not_found
from .rules import RulesAnswerer
from .trained import ReaderAnswerer, whole_figure

# Question types (qa.rerank.question_type) the reader answers. On the gold fit split the reader's spans
# were right on 9 of 16 entity questions against the rules' 4, and wrong (answered, no gold in the short
# answer) on fewer; on figure (23 vs 27 of 31), time, list and English questions the rules did better.
READER_TYPES = frozenset({"entity", "person"})
# A rules short answer that the reader's best span in the cited passage does not overlap is refused when
# the calibrated confidence is below this. Chosen on the gold fit split as the threshold with the most
# right outcomes (strict hits + right refusals); the refused answers were mostly wrong (see README).
VERIFY_BELOW = 0.3


class HybridAnswerer(Answerer):
    """Delegates each question to :class:`ReaderAnswerer` or :class:`RulesAnswerer` by question type.

    Both share the assistant's calibrated retrieval gate for "not found"; the reader (and its model)
    loads on the first question it gets.
    """

    name = "hybrid"

    def __init__(self, embedder: Any = None, verify_below: float = VERIFY_BELOW) -> None:
        self.rules = RulesAnswerer()
        self.reader = ReaderAnswerer(embedder)
        self.verify_below = verify_below

    def uses_reader(self, req: AnswerRequest) -> bool:
        """Whether the reader answers this question (what/which/who, in the collection's language)."""
        return req.info.same_language and req.qtype in READER_TYPES

    def answer(self, req: AnswerRequest, answer: Answer, assistant: Any) -> Answer:
        if self.uses_reader(req):
            return self.reader.answer(req, answer, assistant)
        answer = self.rules.answer(req, answer, assistant)
        if (answer.short_answer and not answer.not_found and answer.confidence < self.verify_below
                and not self.reader_confirms(req, answer)):
            answer.short_answer, answer.sentence, answer.summary, answer.citations = "", "", [], []
            return not_found(answer, req, unconfirmed=True)
        return answer

    def reader_confirms(self, req: AnswerRequest, answer: Answer) -> bool:
        """Whether the reader's best span in the passage holding the supporting sentence (widened to
        whole figures) holds the rules' short answer, or lies inside it.

        A span running on past the figure ("6.6%,总量迈上4千亿元台阶…") still points at it, so every
        figure the span touches counts, not only the last one the reader's own answer keeps."""
        text = answer.citations[0].text
        spans = self.reader.reader.read(req.rewritten, [text], top=1)
        if not spans:
            return False
        a, b = whole_figure(text, spans[0].start, spans[0].end, last_only=False)
        mine, theirs = normalize(answer.short_answer), normalize(text[a:b])
        return bool(theirs) and (mine in theirs or theirs in mine)

    def warm_up(self) -> None:
        self.reader.warm_up()
