"""PDF text extraction with pages and headings recovered from the layout (pypdf).

Pages are separated by a form feed (:data:`PAGE_BREAK`) so the cleaner can record where each page
starts in the cleaned text. Lines set in a font clearly larger than the document's body text (the
most common size, by characters) are marked as markdown headings (``#``, ``##``, ``###`` from the
largest size down) so :func:`index.chunking.parse_document` takes them as headings; documents
without such lines keep the text-based outline rules only.
"""
from __future__ import annotations

import io
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

PAGE_BREAK = "\f"
HEADING_RATIO = 1.15  # a heading's font is at least this much larger than the body's
_HEADING_MAX_CHARS = 80
_MAX_LEVELS = 3
_NO_SPACE = re.compile(r"\s+")
_WORDY = re.compile(r"[A-Za-z\u3400-\u9fff\u2e80-\u2fdf]")


@dataclass
class _Line:
    y: float
    parts: list[tuple[str, float]] = field(default_factory=list)  # (text, font size)

    def key(self) -> str:
        return _NO_SPACE.sub("", "".join(t for t, _ in self.parts))


def _font_size(cm: list[float], tm: list[float], size: float) -> tuple[float, float]:
    """(rendered font size, baseline y) of text drawn with text matrix ``tm`` under ``cm``."""
    c = tm[2] * cm[0] + tm[3] * cm[2]
    d = tm[2] * cm[1] + tm[3] * cm[3]
    y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
    return abs(size) * (math.hypot(c, d) or 1.0), y


def _page_lines(page: Any) -> tuple[str, list[_Line]]:
    """The page's extracted text and its lines as drawn (text pieces with their font sizes)."""
    lines: list[_Line] = []

    def visit(text: str, cm: list[float], tm: list[float], _font: Any, size: float) -> None:
        if not text:
            return
        rendered, y = _font_size(cm, tm, size)
        pieces = text.split("\n")
        for i, piece in enumerate(pieces):
            if i > 0 or not lines or abs(lines[-1].y - y) > max(1.0, rendered * 0.3):
                lines.append(_Line(y))
            if piece.strip():
                lines[-1].parts.append((piece, rendered))

    text = page.extract_text(visitor_text=visit) or ""
    return text, [ln for ln in lines if ln.parts]


def _heading_levels(pages: list[list[_Line]]) -> list[dict[str, int]]:
    """Per page: whitespace-free line text -> heading level (1 = largest font) for large-font lines."""
    sizes: Counter[float] = Counter()
    for lines in pages:
        for ln in lines:
            for text, size in ln.parts:
                sizes[round(size, 1)] += len(text.strip())
    if not sizes:
        return [{} for _ in pages]
    body = sizes.most_common(1)[0][0]
    candidates: list[list[tuple[str, float]]] = []
    for lines in pages:
        found = []
        for ln in lines:
            key = ln.key()
            size = min(s for _, s in ln.parts)
            if size >= body * HEADING_RATIO and 0 < len(key) <= _HEADING_MAX_CHARS and _WORDY.search(key):
                found.append((key, round(size, 1)))
        candidates.append(found)
    heading_sizes = sorted({s for found in candidates for _, s in found}, reverse=True)
    # Close sizes share a level; at most three levels (the smallest heading sizes merge).
    rank: dict[float, int] = {}
    level = 0
    for i, s in enumerate(heading_sizes):
        if i and heading_sizes[i - 1] - s > 0.5:
            level = min(level + 1, _MAX_LEVELS - 1)
        rank[s] = level + 1
    return [{key: rank[s] for key, s in found} for found in candidates]


def _mark_headings(text: str, levels: dict[str, int]) -> str:
    """``text`` with lines found in ``levels`` prefixed by markdown heading marks (a heading broken
    over consecutive lines of the same level becomes one line) and other lines starting with "#"
    escaped as ``\\#`` (see :func:`index.chunking.parse_pages`)."""
    out: list[str] = []
    prev_level = 0
    for line in text.split("\n"):
        level = levels.get(_NO_SPACE.sub("", line), 0)
        if level and prev_level == level and out:
            sep = " " if out[-1][-1:].isascii() and line.strip()[:1].isascii() else ""
            out[-1] = out[-1].rstrip() + sep + line.strip()
            continue
        if level:
            out.append("#" * level + " " + line.strip())
        else:
            # A "#" the page shows (a code comment) is text, not a heading mark.
            out.append("\\" + line.lstrip() if line.lstrip().startswith("#") else line)
        prev_level = level
    return "\n".join(out)


def extract_pdf_text(data: bytes) -> str:
    """Text of a PDF: pages joined by :data:`PAGE_BREAK`, large-font lines marked as headings.

    Args:
        data: The PDF file's bytes.

    Returns:
        The text (possibly empty when the PDF has no text layer).

    Raises:
        pypdf.errors.PdfReadError, ValueError, KeyError, OSError: an unreadable PDF.
    """
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    texts: list[str] = []
    page_lines: list[list[_Line]] = []
    for page in reader.pages:
        try:
            text, lines = _page_lines(page)
        except (TypeError, AttributeError, ZeroDivisionError, IndexError) as exc:
            # The visitor met an odd content stream; the plain text is still worth having.
            log.debug("layout of a PDF page unreadable (%s); plain text only", exc)
            text, lines = page.extract_text() or "", []
        texts.append(text)
        page_lines.append(lines)
    levels = _heading_levels(page_lines)
    return f"\n{PAGE_BREAK}\n".join(_mark_headings(t, lv) for t, lv in zip(texts, levels))
