"""Read a corpus folder: decode files (UTF-8, BOM, GBK/GB18030, UTF-16), PDFs and DOCX, attach metadata.

Every format's text is normalised (look-alike radicals and compatibility characters, see
:mod:`index.normalize`); PDFs also keep their page boundaries and large-font headings (:mod:`index.pdf`).

One bad file never stops a build: it is reported in ``IngestResult.errors`` with the reason.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from .chunking import parse_pages
from .normalize import normalize_text
from .pdf import PAGE_BREAK, extract_pdf_text
from .textproc import years_in
from .types import Document

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".pdf", ".docx")
MAX_FILE_BYTES = 20 * 1024 * 1024
MANIFEST_NAME = "manifest.json"


class IngestError(ValueError):
    """A file could not be read as text; the message names the file and the reason."""


@dataclass
class IngestResult:
    """Documents read from a folder and the files that failed, with reasons."""

    documents: list[Document] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def decode_bytes(data: bytes, name: str = "<bytes>") -> tuple[str, str]:
    """Decode raw bytes as text.

    Tries UTF-8 (with or without BOM), UTF-16 with BOM, GB18030 (a superset of GBK), then
    charset-normalizer's best guess.

    Returns:
        (text, encoding name).

    Raises:
        IngestError: when the bytes are empty, binary, or no encoding fits.
    """
    if not data.strip():
        raise IngestError(f"{name}: file is empty")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict"), "utf-8-sig"
    # UTF-16 without BOM shows as many NUL bytes; plain text has none.
    if data.count(b"\x00") > len(data) // 8:
        for enc in ("utf-16-le", "utf-16-be"):
            try:
                text = data.decode(enc)
            except UnicodeDecodeError:
                continue
            if _looks_like_text(text):
                return text, enc
        raise IngestError(f"{name}: looks binary (NUL bytes), not a text file")
    for enc in ("utf-8", "gb18030"):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if _looks_like_text(text):
            return text, enc
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is not None and _looks_like_text(str(best)):
        return str(best), best.encoding
    raise IngestError(
        f"{name}: cannot decode as UTF-8, UTF-16, GBK/GB18030 or any detected encoding; "
        "save it as UTF-8 and try again"
    )


def _looks_like_text(text: str) -> bool:
    """True when control characters (binary noise) are rare."""
    if not text.strip():
        return False
    bad = sum(1 for ch in text if (ord(ch) < 32 and ch not in "\n\r\t\f") or 0xE000 <= ord(ch) <= 0xF8FF)
    return bad <= max(2, len(text) // 200)


def read_file_text(path: Path, data: bytes | None = None) -> tuple[str, str]:
    """Extract text from a .txt/.md/.pdf/.docx file.

    Returns:
        (raw text, encoding or format name).

    Raises:
        IngestError: unsupported type, too large, empty, binary, or unreadable.
    """
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise IngestError(f"{path.name}: unsupported file type {suffix!r}; use one of {', '.join(SUPPORTED_SUFFIXES)}")
    if data is None:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise IngestError(f"{path.name}: {size / 1e6:.1f} MB is over the {MAX_FILE_BYTES // 2**20} MB limit")
        data = path.read_bytes()
    elif len(data) > MAX_FILE_BYTES:
        raise IngestError(f"{path.name}: {len(data) / 1e6:.1f} MB is over the {MAX_FILE_BYTES // 2**20} MB limit")
    if suffix in (".txt", ".md"):
        return decode_bytes(data, path.name)
    if suffix == ".pdf":
        return _read_pdf(data, path.name), "pdf"
    return _read_docx(data, path.name), "docx"


def _read_pdf(data: bytes, name: str) -> str:
    """PDF text with pages separated by form feeds and large-font lines marked as headings."""
    from pypdf.errors import PdfReadError

    try:
        text = extract_pdf_text(data)
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise IngestError(f"{name}: not a readable PDF ({exc})") from exc
    if not text.replace(PAGE_BREAK, "").strip():
        raise IngestError(f"{name}: the PDF has no text layer (scanned?); OCR it first")
    return text


def _read_docx(data: bytes, name: str) -> str:
    import io
    import zipfile

    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise IngestError(f"{name}: not a readable .docx file ({exc})") from exc
    except Exception as exc:  # python-docx raises assorted errors on broken packages
        raise IngestError(f"{name}: not a readable .docx file ({type(exc).__name__}: {exc})") from exc
    lines = []
    for para in document.paragraphs:
        style = (para.style.name or "").lower() if para.style is not None else ""
        text = para.text.strip()
        if text and style.startswith("heading"):
            level = re.sub(r"\D", "", style) or "1"
            text = "#" * min(int(level), 6) + " " + text
        lines.append(text)
    text = "\n\n".join(lines)
    if not text.strip():
        raise IngestError(f"{name}: the .docx file has no text")
    return text


def guess_year(text: str) -> int | None:
    """The year a document speaks for: the latest year among those it mentions most in its opening."""
    head = text[:2000]
    years = years_in(head) or years_in(text)
    if not years:
        return None
    counts: dict[int, int] = {}
    for y in years:
        counts[y] = counts.get(y, 0) + 1
    return max(counts, key=lambda y: (counts[y], y))


def guess_title(text: str, fallback: str) -> str:
    """First markdown heading, else the first non-empty line (shortened)."""
    for line in text.splitlines():
        s = line.strip().strip("#").strip().strip("*").strip()
        if s:
            return s[:60]
    return fallback


def load_manifest(folder: Path) -> dict[str, dict]:
    """Per-document metadata from ``manifest.json`` in the folder, or {} when absent or broken."""
    path = folder / MANIFEST_NAME
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return {}
    docs = data.get("documents", data) if isinstance(data, dict) else {}
    return {k: v for k, v in docs.items() if isinstance(v, dict)}


def make_document(doc_id: str, raw: str, data: bytes, encoding: str, meta: dict | None) -> Document:
    """Normalise and clean the text, attach metadata (manifest entry, else guessed with a warning).

    Look-alike characters are normalised for every format (:func:`index.normalize.normalize_text`);
    a PDF (``encoding == "pdf"``) also gets its page offsets.
    """
    text, blocks, page_starts = parse_pages(normalize_text(raw), paged=encoding == "pdf")
    meta = meta or {}
    if not meta:
        log.warning("%s: no manifest entry; title and year guessed from the text", doc_id)
    # A manifest entry without a year says the document speaks for none (an encyclopedia article);
    # only a document the manifest does not describe gets a guessed one.
    year = meta.get("year") if meta else guess_year(text)
    date = str(meta.get("date") or (str(year) if year else ""))
    return Document(
        doc_id=doc_id,
        title=meta.get("title") or guess_title(text, Path(doc_id).stem),
        date=date,
        year=int(year) if year else None,
        text=text,
        sha256=hashlib.sha256(data).hexdigest(),
        kind=meta.get("kind", ""),
        description=meta.get("description", ""),
        encoding=encoding,
        covers_year=int(meta["covers_year"]) if str(meta.get("covers_year") or "").isdigit() else None,
        blocks=blocks,
        page_starts=page_starts,
    )


def iter_corpus_files(folder: Path) -> list[Path]:
    """Supported files directly in ``folder`` or below, sorted, hidden files skipped."""
    files = [
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(files)


def load_corpus(folder: str | Path) -> IngestResult:
    """Read every supported file of a folder into cleaned ``Document``s.

    Args:
        folder: Corpus directory (optionally with a ``manifest.json``).

    Raises:
        FileNotFoundError: when the folder does not exist.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"corpus folder {folder} does not exist; pass a folder of .txt/.md/.pdf/.docx files")
    manifest = load_manifest(folder)
    result = IngestResult()
    for path in iter_corpus_files(folder):
        doc_id = path.relative_to(folder).as_posix()
        try:
            data = path.read_bytes() if path.stat().st_size <= MAX_FILE_BYTES else None
            raw, encoding = read_file_text(path, data)
            doc = make_document(doc_id, raw, data or b"", encoding, manifest.get(doc_id))
            if not doc.text.strip():
                raise IngestError(f"{doc_id}: no text left after cleaning")
        except IngestError as exc:
            log.error("skipping %s", exc)
            result.errors[doc_id] = str(exc)
            continue
        except OSError as exc:
            log.error("skipping %s: %s", doc_id, exc)
            result.errors[doc_id] = f"{doc_id}: {exc}"
            continue
        result.documents.append(doc)
    if not result.documents and not result.errors:
        log.warning("no supported files in %s", folder)
    return result
