"""Answerers behind one seam (:class:`Answerer`), chosen by configuration.

``WENDA_ANSWERER``: ``rules`` (the pattern-based answer step), ``reader`` (the trained span reader,
:mod:`qa.reader`, with the weights shipped in ``qa/models/reader``) or ``hybrid`` (default: the reader for
what/which/who questions, the rules for the rest). The optional generated mode (``qa.generate``) runs on
top of whichever is configured and falls back to it.
"""
from __future__ import annotations

import os
from typing import Any

from .base import Answerer, AnswerRequest, Citations, finish, not_found

ENV_ANSWERER = "WENDA_ANSWERER"
DEFAULT_ANSWERER = "hybrid"
ANSWERERS = ("hybrid", "reader", "rules")


def make_answerer(name: str | None = None, embedder: Any = None) -> Answerer:
    """The answerer called ``name`` (default ``WENDA_ANSWERER``, else :data:`DEFAULT_ANSWERER`).

    Raises:
        ValueError: an unknown name.
    """
    name = (name or os.environ.get(ENV_ANSWERER) or DEFAULT_ANSWERER).strip().lower()
    if name == "rules":
        from .rules import RulesAnswerer

        return RulesAnswerer()
    if name == "reader":
        from .trained import ReaderAnswerer

        return ReaderAnswerer(embedder)
    if name == "hybrid":
        from .hybrid import HybridAnswerer

        return HybridAnswerer(embedder)
    raise ValueError(f"unknown answerer {name!r} ({ENV_ANSWERER}): choose one of {', '.join(ANSWERERS)}")


__all__ = ["ANSWERERS", "Answerer", "AnswerRequest", "Citations", "finish", "make_answerer", "not_found"]
