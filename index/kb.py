"""The knowledge base behind the web app: list, add and delete corpus documents, keeping the index in step.

Every change writes the corpus folder first and then runs the incremental, atomic
:func:`index.builder.build_index`; when the build fails the corpus change is undone, so a
bad upload never changes anything else. Changes are serialised by a lock (and by the
builder's own file lock across processes).
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from .builder import BuildReport, IndexLoadError, build_index, read_manifest
from .chunking import chunk_document
from .embed import Embedder
from .fileio import atomic_write
from .ingest import MANIFEST_NAME, MAX_FILE_BYTES, SUPPORTED_SUFFIXES, IngestError, make_document, read_file_text

log = logging.getLogger(__name__)

MAX_NAME_BYTES = 180
ProgressFn = Callable[[float, str], Any]
_UNSAFE_CHARS = re.compile(r'[<>:"|?*\x00-\x1f\x7f]')


@dataclass
class DocInfo:
    """One indexed document as the knowledge-base table shows it.

    Attributes:
        doc_id: File name relative to the corpus folder.
        title: Title (corpus manifest, else guessed from the text).
        date: Date as precise as known, or "".
        year: Year the document speaks for, or None.
        kind: Document kind from the corpus manifest, or "".
        passages: Number of indexed passages.
        indexed_at: When the current version of the document was indexed (ISO, UTC).
    """

    doc_id: str
    title: str
    date: str
    year: int | None
    kind: str
    passages: int
    indexed_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def safe_filename(filename: str) -> str:
    """A safe corpus file name for an uploaded file.

    Keeps only the base name (no directories, no ``..``), drops control and reserved
    characters and leading dots (hidden files are not indexed), and checks the suffix.

    Raises:
        ValueError: empty name or unsupported file type.
    """
    name = unicodedata.normalize("NFC", str(filename or "")).replace("\\", "/").split("/")[-1]
    name = _UNSAFE_CHARS.sub("_", name).strip().lstrip(".").strip()
    if not name:
        raise ValueError(f"file name {filename!r} is empty or not usable; give the file a name like report.txt")
    stem, suffix = os.path.splitext(name)
    suffix = suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ValueError(
            f"{name}: unsupported file type {suffix or '(none)'!r}; use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    stem = stem.strip() or "document"
    while len((stem + suffix).encode("utf-8")) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem + suffix


class KnowledgeBase:
    """A corpus folder and its index, changed one step at a time.

    Args:
        corpus_dir: Folder of .txt/.md/.pdf/.docx files.
        index_dir: Index directory built from it.
        embedder: The embedding model the index was built with (shared with the Assistant).
    """

    def __init__(self, corpus_dir: str | Path, index_dir: str | Path, embedder: Embedder) -> None:
        self.corpus_dir = Path(corpus_dir).resolve()
        self.index_dir = Path(index_dir).resolve()
        self.embedder = embedder
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reading
    def manifest(self) -> dict:
        """The index manifest ({} when there is no index yet)."""
        try:
            return read_manifest(self.index_dir)
        except IndexLoadError as exc:
            log.warning("no readable index manifest: %s", exc)
            return {}

    def documents(self) -> list[DocInfo]:
        """Indexed documents, in corpus order."""
        manifest = self.manifest()
        docs = manifest.get("documents", {})
        out = []
        for doc_id, meta in docs.items():
            out.append(DocInfo(
                doc_id=doc_id,
                title=str(meta.get("title") or doc_id),
                date=str(meta.get("date") or ""),
                year=meta.get("year"),
                kind=str(meta.get("kind") or ""),
                passages=int(meta.get("passages") or 0),
                indexed_at=str(meta.get("indexed_at") or manifest.get("built_at", "")),
            ))
        return out

    def status(self) -> dict[str, Any]:
        """Index summary: model, passages, documents, build time, index type, failed files."""
        manifest = self.manifest()
        model = manifest.get("model", {})
        return {
            "corpus_dir": str(self.corpus_dir),
            "index_dir": str(self.index_dir),
            "model": model.get("id", ""),
            "dim": model.get("dim"),
            "documents": len(manifest.get("documents", {})),
            "passages": int(manifest.get("passages") or 0),
            "built_at": manifest.get("built_at", ""),
            "index_type": manifest.get("index_type", ""),
            "errors": dict(manifest.get("errors", {})),
        }

    # ------------------------------------------------------------------ changing
    def add_file(self, filename: str, data: bytes, progress: ProgressFn | None = None) -> BuildReport:
        """Add (or replace) a document and update the index.

        Args:
            filename: The uploaded file's name; only its base name is used.
            data: The file's bytes.
            progress: Optional ``progress(fraction, stage)`` callback.

        Returns:
            The build report.

        Raises:
            ValueError: unusable file name or type.
            IngestError: too large, empty, binary, undecodable or broken file, or the index build
                failed; the corpus and index are then left as they were.
        """
        report_progress = progress or (lambda fraction, stage: None)
        name = safe_filename(filename)
        if len(data) > MAX_FILE_BYTES:
            raise IngestError(f"{name}: {len(data) / 1e6:.1f} MB is over the {MAX_FILE_BYTES // 2**20} MB limit")
        report_progress(0.05, "validating")
        raw, encoding = read_file_text(Path(name), data)
        doc = make_document(name, raw, data, encoding, {"kind": ""})  # {} would log a "guessed title" warning twice
        if not doc.text.strip() or not chunk_document(doc):
            raise IngestError(f"{name}: no text left after cleaning")

        with self._lock:
            target = self.corpus_dir / name
            if target.resolve().parent != self.corpus_dir:
                raise ValueError(f"{filename!r} would be written outside the corpus folder")
            previous = target.read_bytes() if target.is_file() else None
            report_progress(0.15, "writing")
            atomic_write(target, data)
            log.info("%s %s (%d bytes, %s)", "replaced" if previous is not None else "added", name, len(data), encoding)
            try:
                report_progress(0.25, "indexing")
                report = build_index(self.corpus_dir, self.index_dir, self.embedder, progress=False)
                if name in report.errors:
                    raise IngestError(report.errors[name])
                if not report.per_document.get(name):
                    raise IngestError(f"{name}: the document produced no passages")
            except Exception as exc:
                log.error("adding %s failed, undoing: %s", name, exc)
                self._restore(target, previous)
                if isinstance(exc, (IngestError, ValueError)):
                    raise
                raise IngestError(f"{name}: indexing failed ({type(exc).__name__}: {exc}); nothing was changed") from exc
            report_progress(1.0, "done")
            return report

    def delete(self, doc_id: str, progress: ProgressFn | None = None) -> BuildReport:
        """Remove a document's file from the corpus folder and update the index.

        Args:
            doc_id: The document id (file name relative to the corpus folder).
            progress: Optional ``progress(fraction, stage)`` callback.

        Raises:
            ValueError: unknown document or a path outside the corpus folder.
            IngestError: the index build failed; the file is then restored.
        """
        report_progress = progress or (lambda fraction, stage: None)
        doc_id = str(doc_id or "").strip()
        if not doc_id:
            raise ValueError("no document chosen")
        with self._lock:
            path = (self.corpus_dir / doc_id).resolve()
            try:
                rel = path.relative_to(self.corpus_dir)
            except ValueError:
                raise ValueError(f"{doc_id!r} is not inside the corpus folder") from None
            if path.suffix.lower() not in SUPPORTED_SUFFIXES or any(p.startswith(".") for p in rel.parts):
                raise ValueError(f"{doc_id!r} is not a corpus document")
            indexed = doc_id in self.manifest().get("documents", {})
            if not path.is_file() and not indexed:
                raise ValueError(f"unknown document {doc_id!r}")
            previous = path.read_bytes() if path.is_file() else None
            report_progress(0.1, "deleting")
            if previous is not None:
                path.unlink()
            # Its corpus-manifest entry (title, date) goes too: a later upload under the same
            # name is a new document and must not inherit the old title.
            manifest_before = self._drop_manifest_entry(rel.as_posix())
            log.info("deleted %s", doc_id)
            try:
                report_progress(0.3, "indexing")
                report = build_index(self.corpus_dir, self.index_dir, self.embedder, progress=False)
            except Exception as exc:
                log.error("re-indexing after deleting %s failed, restoring it: %s", doc_id, exc)
                if previous is not None:
                    atomic_write(path, previous)
                if manifest_before is not None:
                    atomic_write(self.corpus_dir / MANIFEST_NAME, manifest_before)
                raise IngestError(f"{doc_id}: re-indexing failed ({type(exc).__name__}: {exc}); nothing was changed") from exc
            report_progress(1.0, "done")
            return report

    def _drop_manifest_entry(self, doc_id: str) -> bytes | None:
        """Remove ``doc_id`` from the corpus ``manifest.json``; return the old bytes (None if unchanged)."""
        path = self.corpus_dir / MANIFEST_NAME
        if not path.is_file():
            return None
        before = path.read_bytes()
        try:
            data = json.loads(before.decode("utf-8"))
        except ValueError:
            log.warning("corpus manifest %s is unreadable; left as it is", path)
            return None
        docs = data.get("documents", data) if isinstance(data, dict) else None
        if not isinstance(docs, dict) or doc_id not in docs:
            return None
        del docs[doc_id]
        atomic_write(path, (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
        return before

    def _restore(self, target: Path, previous: bytes | None) -> None:
        """Put the corpus back as it was before a failed add, and make sure the index matches it."""
        try:
            if previous is None:
                target.unlink(missing_ok=True)
            else:
                atomic_write(target, previous)
            build_index(self.corpus_dir, self.index_dir, self.embedder, progress=False)
        except Exception:  # pragma: no cover - best effort; the original error is what the user needs
            log.exception("could not fully restore the knowledge base after a failed add")
