"""Wenda's question-answering pipeline: ``from qa import Assistant``."""
from .assistant import Assistant, QuestionError, validate_question
from .types import Answer, Citation, Hit, SummarySentence

__all__ = ["Assistant", "QuestionError", "validate_question", "Answer", "Citation", "Hit", "SummarySentence"]
