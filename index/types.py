"""Named records shared by ingest, chunking, stores and the QA pipeline."""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Document:
    """A cleaned source document.

    Attributes:
        doc_id: File name relative to the corpus folder (the document id).
        title: Human title (manifest, else first heading or line).
        date: ISO date as precise as known ("2021-02-23", "2022-01", "2021") or "".
        year: Year the document speaks for ("今年" in the text means this year), or None.
        covers_year: An earlier year the document looks back on (a report of 2022 on the results of
            2021), as its manifest entry states, or None.
        kind: Document kind ("full report", "news digest", ...).
        description: One-line description.
        text: Cleaned text; passage offsets point into it.
        sha256: Hash of the raw file bytes.
        encoding: Encoding the raw file was decoded with.
        page_starts: For a PDF, the offset in ``text`` where each page begins (page ``i + 1`` at
            ``page_starts[i]``); empty for other formats.
    """

    doc_id: str
    title: str
    date: str
    year: int | None
    text: str
    sha256: str
    kind: str = ""
    description: str = ""
    encoding: str = "utf-8"
    covers_year: int | None = None
    blocks: list[Block] = field(default_factory=list, repr=False)
    page_starts: list[int] = field(default_factory=list, repr=False)

    def meta(self) -> dict[str, Any]:
        """Metadata without the text, structure and page offsets (for manifests and the UI)."""
        d = asdict(self)
        d.pop("text")
        d.pop("blocks")
        d.pop("page_starts")
        return d

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding ``offset`` of the text, or None when pages are unknown."""
        if not self.page_starts:
            return None
        return max(1, bisect_right(self.page_starts, offset))


@dataclass
class Block:
    """A line of the cleaned document: a heading or a body paragraph.

    Attributes:
        kind: "heading" or "para".
        level: Outline level for headings (1 = top); 0 for paragraphs.
        start: Offset of the block in the cleaned text.
        end: End offset (exclusive).
        leads: Inline lead sentences (bold leads, "（一）xx。" openers) as (offset, label).
    """

    kind: str
    level: int
    start: int
    end: int
    label: str = ""
    leads: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Passage:
    """A retrievable unit: one paragraph or a piece of one.

    ``doc_text[start:end] == text`` holds for the cleaned document text. ``page`` is the 1-based
    page of a PDF where the passage starts (None for other formats and for indexes built before
    pages were recorded).
    """

    id: str
    doc_id: str
    title: str
    date: str
    year: int | None
    section: str
    text: str
    start: int
    end: int
    ordinal: int
    years_mentioned: list[int] = field(default_factory=list)
    covers_year: int | None = None
    page: int | None = None

    def index_text(self) -> str:
        """Text used for embedding and BM25: the innermost heading gives context."""
        head = self.section.split(" › ")[-1] if self.section else ""
        return f"{head}\n{self.text}" if head and head not in self.text else self.text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Passage:
        return cls(**d)
