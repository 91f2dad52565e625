"""Clean newspaper/PDF Chinese text and split it into paragraph passages with section paths.

The cleaned text keeps the original characters (full-width punctuation stays) so the UI shows
what the source says; it only drops layout noise: page marks, markdown markers, line breaks
inside sentences, stray spaces between Chinese characters.
"""
from __future__ import annotations

import re

from .textproc import years_in
from .types import Block, Document, Passage

MAX_CHARS = 300
SECTION_SEP = " › "
_LABEL_MAX = 40

_PAGE_MARK = re.compile(r"[（(]\s*(?:上接|下转|接|转|续)第?\s*[\d一二三四五六七八九十]+\s*版\s*[)）]")
_MD_HEADING = re.compile(r"^(#{1,6})\s*(.*)$")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CJK = r"\u3400-\u9fff\uf900-\ufaff"
_CJK_PUNCT = r"\u3000-\u303f\uff00-\uffef“”‘’"
_SPACE_CJK = re.compile(rf"(?<=[{_CJK}{_CJK_PUNCT}])[ \t\u3000\u00a0]+(?=[{_CJK}{_CJK_PUNCT}\d])")
_SPACE_DIGIT = re.compile(rf"(?<=[\d%])[ \t\u3000\u00a0]+(?=[{_CJK}])")
_MULTISPACE = re.compile(r"[ \t\u3000\u00a0]{2,}")

# Outline patterns: (regex, level). Levels nest: 1 > 2 > 3; 0 is a free-standing title.
_OUTLINE = [
    (re.compile(r"^[一二三四五六七八九十]{1,3}、"), 1),
    (re.compile(r"^第[一二三四五六七八九十\d]{1,3}[章部篇节]"), 1),
    (re.compile(r"^关键词\s*[:：]"), 1),
    (re.compile(r"^[（(][一二三四五六七八九十]{1,3}[)）]"), 2),
    (re.compile(r"^聚焦\s"), 2),
    (re.compile(r"^□"), 2),
    (re.compile(r"^\d{1,2}\s*[.．、](?!\d)"), 3),
    (re.compile(r"^[（(]\d{1,2}[)）]"), 3),
]
_TERMINAL = "。！？；!?;：:…."  # a Western full stop too: an English line ending in one is not broken mid-sentence
_INNER_PUNCT = re.compile(r"[，,、。；;！？!?]")
_BULLET = re.compile(r"^[◆●•■▪◇○·\-–]")
_BYLINE = re.compile(r"^(?:代?市长|副市长|记者|本报记者|通讯员|作者|责任编辑|编辑)|供图|摄$")
# Chinese sentence ends, and a Western full stop only before a space and a capital, digit or quote (so
# "2.5", "e.g. this" and "No. 3" stay whole).
_SENTENCE = re.compile(r"(?:[^。！？；!?;.]|\.(?!\s+[A-Z0-9\"“‘(]))*(?:[。！？；!?;]+[”’\"）)]*|\.(?=\s+[A-Z0-9\"“‘(])|$)")


def _outline_level(line: str) -> int | None:
    for pattern, level in _OUTLINE:
        if pattern.match(line):
            return level
    return None


def _clean_spaces(line: str) -> str:
    line = _SPACE_CJK.sub("", line)
    line = _SPACE_DIGIT.sub("", line)
    return _MULTISPACE.sub(" ", line)


def _label(text: str) -> str:
    text = text.strip().rstrip("。：:").strip()
    return text if len(text) <= _LABEL_MAX else text[: _LABEL_MAX - 1] + "…"


def _ends_sentence(line: str) -> bool:
    s = line.rstrip("*”’\"）)")
    return bool(s) and (s[-1] in _TERMINAL or line[-1] in "）)" and not s[-1].isalnum() and s[-1] in _TERMINAL)


def _is_title_line(line: str) -> bool:
    """A short free-standing line without punctuation: an article title or subtitle."""
    plain = line.replace("*", "")
    return (
        5 <= len(plain) <= 30
        and not _INNER_PUNCT.search(plain)
        and not re.search(r"[：:()（）]", plain)
        and plain[-1] not in _TERMINAL
        and not _BYLINE.search(plain)
        and not _BULLET.match(plain)
    )


def parse_document(raw: str) -> tuple[str, list[Block]]:
    """Clean raw text and recover its structure.

    Args:
        raw: Decoded file text.

    Returns:
        (cleaned text, blocks) where each block is one line of the cleaned text.
    """
    text, blocks, _ = parse_pages(raw, paged=False)
    return text, blocks


def parse_pages(raw: str, paged: bool = True) -> tuple[str, list[Block], list[int]]:
    """Clean raw text, recover its structure and where its pages start.

    Args:
        raw: Decoded file text; with ``paged``, pages are separated by form feeds (``\\f``) and a
            line starting with ``\\#`` is text starting with "#", as :func:`index.pdf.extract_pdf_text`
            writes them.
        paged: Whether form feeds mark pages.

    Returns:
        (cleaned text, blocks, page_starts): ``page_starts[i]`` is the offset in the cleaned text
        where page ``i + 1`` begins (a page without text starts where the next text does); empty
        when not ``paged``. Where a sentence runs on across a page break, the offset is estimated.
    """
    raw = raw.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    # (line, md_level, page) after page marks removed; empty lines dropped (blank lines in these
    # sources are layout, not structure: "不\n\n断提升" is one word).
    lines: list[tuple[str, int | None, int]] = []
    page = 0
    for line in raw.split("\n"):
        if paged and "\f" in line:
            page += line.count("\f")
            line = line.replace("\f", "")
        line = _PAGE_MARK.sub("", line).strip().strip("\u3000").strip()
        if not line or set(line) <= set("*#-=_ "):
            continue
        md = _MD_HEADING.match(line)
        md_level = None
        if paged and line.startswith("\\#"):
            line = line[1:]  # a "#" of the PDF's own text (index.pdf escapes it), not a heading mark
        elif md and line.startswith("#"):
            md_level, line = len(md.group(1)), md.group(2).strip()
            if not line:
                continue
        lines.append((line, md_level, page))
    n_pages = page + 1 if paged else 0
    # A PDF whose layout gave headings (large-font lines marked "#") needs no guessing of titles
    # from short lines; the outline patterns ("一、", "（一）") still apply.
    guess_titles = not (paged and any(md is not None for _, md, _ in lines))

    # Join lines broken inside a sentence; ``firsts`` holds, per merged line, the pages whose first
    # line went into it, with that line's offset in the merged (not yet cleaned) line.
    merged: list[tuple[str, int | None]] = []
    firsts: list[list[tuple[int, int]]] = []
    seen_page = -1
    for line, md_level, page in lines:
        starts_page = page > seen_page
        seen_page = page
        if merged:
            prev, prev_md = merged[-1]
            prev_plain = prev.replace("*", "")
            if (
                prev_md is None and md_level is None
                and not _ends_sentence(prev)
                and _outline_level(prev_plain) is None
                and _outline_level(line.replace("*", "")) is None
                and not _BULLET.match(line)
                and not _BYLINE.search(line)
                and not (len(line) <= 12 and line[-1] in "：:")
                and (_INNER_PUNCT.search(prev_plain) or len(prev_plain) >= 25)
                and not prev.rstrip().endswith("**")
            ):
                # Western text keeps a space where the line broke; Chinese text has none.
                sep = " " if prev[-1].isascii() and line[0].isascii() else ""
                merged[-1] = (prev + sep + line, None)
                if starts_page:
                    firsts[-1].append((page, len(prev) + len(sep)))
                continue
        merged.append((line, md_level))
        firsts.append([(page, 0)] if starts_page else [])

    out: list[str] = []
    blocks: list[Block] = []
    page_first: dict[int, int] = {}
    pos = 0
    for i, (line, md_level) in enumerate(merged):
        raw_len = len(line)
        plain_probe = line.replace("*", "")
        outline = _outline_level(plain_probe)
        whole_bold = line.startswith("**") and line.endswith("**") and line.count("**") == 2
        if md_level is None:
            line = _clean_spaces(line)
        # Strip bold markers, remembering where bold spans start.
        text_parts: list[str] = []
        bold: list[tuple[int, str]] = []
        last = 0
        length = 0
        for m in _BOLD.finditer(line):
            before = line[last:m.start()]
            text_parts.append(before)
            length += len(before)
            bold.append((length, m.group(1)))
            text_parts.append(m.group(1))
            length += len(m.group(1))
            last = m.end()
        text_parts.append(line[last:])
        text = "".join(text_parts).replace("**", "")
        if not text.strip():
            continue
        start, end = pos, pos + len(text)
        for page, raw_off in firsts[i]:
            # Offsets inside a merged line shrink with it (spaces and bold marks dropped).
            page_first[page] = start + min(len(text), round(raw_off * len(text) / max(1, raw_len)))
        is_short = len(text) <= 60 and "。" not in text[:-1]
        nxt = merged[i + 1][0] if i + 1 < len(merged) else ""
        if md_level is not None:
            # "## 三、…" takes its outline level so it nests like "三、…"; plain "#" is a title.
            level = outline if outline is not None else (0 if md_level == 1 else min(md_level - 1, 3))
            block = Block("heading", level, start, end, _label(text))
        elif outline is not None and is_short:
            block = Block("heading", outline, start, end, _label(text))
        elif whole_bold and is_short:
            block = Block("heading", 4, start, end, _label(text))
        elif guess_titles and outline is None and _is_title_line(text) and len(nxt.replace("*", "")) > len(text):
            block = Block("heading", 0, start, end, _label(text))
        else:
            block = Block("para", outline or 0, start, end)
            if outline is not None:
                # "（七）系统治理…。正文…": the opener heads this and the following paragraphs.
                m = re.search(r"[。：:！？]", text)
                block.label = _label(text[: m.end()] if m and m.end() <= 80 else text[:_LABEL_MAX])
            for off, span in bold:
                if outline is not None and off < len(block.label) + 2:
                    continue
                block.leads.append((start + off, _label(span)))
        blocks.append(block)
        out.append(text)
        pos = end + 1
    cleaned = "\n".join(out)
    page_starts: list[int] = []
    nxt_start = len(cleaned)
    for page in range(n_pages - 1, -1, -1):
        nxt_start = page_first.get(page, nxt_start)
        page_starts.append(nxt_start)
    page_starts.reverse()
    return cleaned, blocks, page_starts


def clean_text(raw: str) -> str:
    """Cleaned text of a raw document (see :func:`parse_document`)."""
    return parse_document(raw)[0]


def split_sentences(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Sentence spans (start, end) of ``text`` at Chinese/Western sentence ends, shifted by ``offset``."""
    spans = []
    for m in _SENTENCE.finditer(text):
        s, e = m.start(), m.end()
        while s < e and text[s] in " \n\t":
            s += 1
        if e > s:
            spans.append((offset + s, offset + e))
    return spans


def passage_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans of a passage, splitting also at line breaks (bullets, grouped lines)."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for line in text.split("\n"):
        for s, e in split_sentences(line, pos):
            # Trim leading bullets/whitespace so the span is the sentence itself.
            while s < e and text[s] in "◆□●•■ \t":
                s += 1
            if e > s:
                spans.append((s, e))
        pos += len(line) + 1
    return spans


def _windows(spans: list[tuple[int, int]], max_chars: int) -> list[tuple[int, int]]:
    """Group sentence spans into windows of at most ``max_chars`` with one sentence of overlap."""
    # Very long sentences are cut at commas so no window exceeds the model's 512 tokens.
    fine: list[tuple[int, int]] = []
    for s, e in spans:
        while e - s > max_chars * 1.5:
            fine.append((s, s + max_chars))
            s += max_chars
        fine.append((s, e))
    out: list[tuple[int, int]] = []
    i = 0
    while i < len(fine):
        j = i
        while j + 1 < len(fine) and fine[j + 1][1] - fine[i][0] <= max_chars:
            j += 1
        out.append((fine[i][0], fine[j][1]))
        if j + 1 >= len(fine):
            break
        i = j if j > i else j + 1
    return out


def _years(text: str) -> list[int]:
    return sorted(set(years_in(text)))


def chunk_document(doc: Document, max_chars: int = MAX_CHARS) -> list[Passage]:
    """Split a parsed document into passages (paragraphs, long ones windowed, short ones grouped).

    Args:
        doc: A document from :func:`index.ingest.make_document` (``blocks`` filled).
        max_chars: Target passage size in characters.

    Returns:
        Passages in document order; ``doc.text[p.start:p.end] == p.text`` for each; a PDF's
        passages carry the page where they start.
    """
    blocks = doc.blocks or parse_document(doc.text)[1]
    stack: dict[int, str] = {}
    groups: list[tuple[str, list[Block]]] = []

    def path() -> str:
        return SECTION_SEP.join(stack[k] for k in sorted(stack))

    for block in blocks:
        if block.kind == "heading":
            if block.level == 0:
                stack.clear()
            else:
                for k in [k for k in stack if k >= block.level]:
                    del stack[k]
            stack[block.level] = block.label
            continue
        if block.level and block.label:
            for k in [k for k in stack if k >= block.level]:
                del stack[k]
            stack[block.level] = block.label
        section = path()
        length = block.end - block.start
        if groups:
            g_section, g_blocks = groups[-1]
            g_len = g_blocks[-1].end - g_blocks[0].start
            all_short = all(b.end - b.start < 100 for b in g_blocks)
            same_page = doc.page_at(block.start) == doc.page_at(g_blocks[0].start)
            if (g_section == section and all_short and g_len + 1 + length <= max_chars and not block.leads
                    and same_page):
                g_blocks.append(block)
                continue
        groups.append((section, [block]))

    passages: list[Passage] = []
    prefix = doc.sha256[:10]
    for section, g_blocks in groups:
        start, end = g_blocks[0].start, g_blocks[-1].end
        if end - start <= max_chars:
            spans = [(start, end)]
        else:
            spans = _windows(split_sentences(doc.text[start:end], start), max_chars)
        leads = [lead for b in g_blocks for lead in b.leads]
        for s, e in spans:
            text = doc.text[s:e]
            if not text.strip():
                continue
            lead = [label for off, label in leads if off <= s + 2]
            sec = section + (SECTION_SEP + lead[-1] if lead else "") if section else (lead[-1] if lead else "")
            ordinal = len(passages)
            passages.append(Passage(
                id=f"{prefix}-{ordinal:04d}",
                doc_id=doc.doc_id,
                title=doc.title,
                date=doc.date,
                year=doc.year,
                section=sec,
                text=text,
                start=s,
                end=e,
                ordinal=ordinal,
                years_mentioned=_years(sec + text),
                covers_year=doc.covers_year,
                page=doc.page_at(s),
            ))
    return passages
