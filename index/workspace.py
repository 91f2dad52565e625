"""The workspace: the user's knowledge bases, outside the source tree.

Layout (``WENDA_HOME``, default ``~/.local/share/wenda``)::

    kbs/<name>/kb.json     name, title, created_at, seed (where the first documents came from)
    kbs/<name>/corpus/     the documents (and an optional corpus manifest.json)
    kbs/<name>/index/      the index built from them

The corpora bundled in ``data/corpus/`` are read-only seeds: each is copied into the workspace as a
knowledge base of the same name the first time the workspace is used, so uploads and deletions
never touch the repository; the first of them is the default knowledge base unless ``WENDA_KB``
names another. Creating and deleting knowledge bases is atomic (temporary folder + rename).
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .embed import Embedder
from .fileio import atomic_write
from .ingest import MANIFEST_NAME, SUPPORTED_SUFFIXES
from .kb import KnowledgeBase
from .profile import manifest_strings, read_corpus_manifest

log = logging.getLogger(__name__)

ENV_HOME = "WENDA_HOME"
ENV_KB = "WENDA_KB"
BUNDLED = Path(__file__).resolve().parent.parent / "data" / "corpus"
KB_FILE = "kb.json"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class WorkspaceError(ValueError):
    """A knowledge base that does not exist, already exists, or has an unusable name."""


def workspace_home() -> Path:
    """``WENDA_HOME`` or ``~/.local/share/wenda``."""
    return Path(os.environ.get(ENV_HOME) or "~/.local/share/wenda").expanduser()


def bundled_corpora() -> list[Path]:
    """Corpus folders shipped in ``data/corpus/`` (those with a manifest), sorted by name."""
    if not BUNDLED.is_dir():
        return []
    return sorted(p for p in BUNDLED.iterdir() if (p / MANIFEST_NAME).is_file() and _NAME.match(p.name))


def default_kb_name() -> str:
    """``WENDA_KB``, else the first bundled corpus's name, else ``default``."""
    seeds = bundled_corpora()
    return (os.environ.get(ENV_KB) or (seeds[0].name if seeds else "default")).strip().lower()


def corpus_profile(corpus_dir: Path) -> dict[str, Any]:
    """What a corpus manifest says about the whole collection: ``title``, ``title_en``, ``examples``
    (questions the UI offers); empty values when it says nothing."""
    data = read_corpus_manifest(corpus_dir)
    return {"title": str(data.get("title") or ""), "title_en": str(data.get("title_en") or ""),
            "examples": manifest_strings(data.get("examples"), 8)}


@dataclass
class KBInfo:
    """One knowledge base as listed.

    Attributes:
        name: Folder name (lower-case letters, digits, ``-`` and ``_``).
        title: Display title.
        created_at: ISO time (UTC).
        seed: Folder its first documents were copied from, or "".
        documents: Number of documents in its corpus folder.
        indexed: Whether an index has been built.
    """

    name: str
    title: str
    created_at: str
    seed: str
    documents: int
    indexed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Workspace:
    """The knowledge bases under one home folder.

    Args:
        home: Workspace folder (default :func:`workspace_home`).
        seed: Copy the bundled corpora in as knowledge bases the first time (a marker file
            remembers it, so a deleted seed knowledge base stays deleted).
    """

    def __init__(self, home: str | Path | None = None, seed: bool = True) -> None:
        self.home = Path(home).expanduser() if home else workspace_home()
        self.root = self.home / "kbs"
        self._lock = threading.Lock()
        marker = self.home / ".seeded"
        if seed and not marker.exists():
            for corpus in bundled_corpora():
                if not (self.root / corpus.name).exists():
                    try:
                        self.create(corpus.name, seed=corpus)
                    except WorkspaceError:
                        pass  # created meanwhile by another process
            self.home.mkdir(parents=True, exist_ok=True)
            marker.touch()

    # ------------------------------------------------------------------ reading
    def path(self, name: str) -> Path:
        """The folder of knowledge base ``name`` (which must exist)."""
        name = check_name(name)
        folder = self.root / name
        if not (folder / KB_FILE).is_file():
            known = ", ".join(self.names()) or "none"
            raise WorkspaceError(f"no knowledge base named {name!r} (known: {known}); "
                                 f"create it with: python -m index kb create {name}")
        return folder

    def names(self) -> list[str]:
        """Names of the knowledge bases, default first."""
        if not self.root.is_dir():
            return []
        names = sorted(p.name for p in self.root.iterdir() if (p / KB_FILE).is_file() and _NAME.match(p.name))
        return sorted(names, key=lambda n: n != default_kb_name())

    def info(self, name: str) -> KBInfo:
        """Listing entry of one knowledge base."""
        folder = self.path(name)
        meta = json.loads((folder / KB_FILE).read_text(encoding="utf-8"))
        corpus = folder / "corpus"
        docs = sum(1 for p in corpus.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(corpus).parts))
        return KBInfo(name=name, title=str(meta.get("title") or name), created_at=str(meta.get("created_at", "")),
                      seed=str(meta.get("seed") or ""), documents=docs,
                      indexed=(folder / "index" / "manifest.json").is_file())

    def list(self) -> list[KBInfo]:
        """All knowledge bases, default first."""
        return [self.info(n) for n in self.names()]

    def kb(self, name: str, embedder: Embedder) -> KnowledgeBase:
        """The :class:`KnowledgeBase` (corpus + index) of ``name``."""
        folder = self.path(name)
        return KnowledgeBase(folder / "corpus", folder / "index", embedder)

    # ------------------------------------------------------------------ changing
    def create(self, name: str, title: str = "", seed: str | Path | None = None) -> KBInfo:
        """Create an empty knowledge base, or one holding a copy of the documents in ``seed``.

        Raises:
            WorkspaceError: bad name, the name is taken, or ``seed`` is not a folder.
        """
        name = check_name(name)
        if seed is not None and not Path(seed).is_dir():
            raise WorkspaceError(f"seed folder {seed} does not exist")
        with self._lock:
            folder = self.root / name
            if folder.exists():
                raise WorkspaceError(f"a knowledge base named {name!r} already exists")
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = self.root / f".{name}.tmp-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            if seed is not None:
                shutil.copytree(seed, tmp / "corpus", ignore=shutil.ignore_patterns(".*"))
            else:
                (tmp / "corpus").mkdir(parents=True)
            meta = {"name": name, "title": (title or "").strip() or corpus_profile(tmp / "corpus")["title"] or name,
                    "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "seed": str(Path(seed).resolve()) if seed is not None else ""}
            atomic_write(tmp / KB_FILE, (json.dumps(meta, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
            try:
                os.rename(tmp, folder)
            except OSError as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                raise WorkspaceError(f"a knowledge base named {name!r} already exists") from exc
            log.info("created knowledge base %s in %s%s", name, folder, f" (seeded from {seed})" if seed else "")
        return self.info(name)

    def delete(self, name: str) -> None:
        """Delete a knowledge base with its documents and index (the default one cannot be deleted).

        Raises:
            WorkspaceError: unknown name or the default knowledge base.
        """
        folder = self.path(name)
        if name == default_kb_name():
            raise WorkspaceError(f"{name!r} is the default knowledge base and cannot be deleted; "
                                 "delete its documents instead")
        with self._lock:
            trash = self.root / f".{name}.deleted-{os.getpid()}"
            os.rename(folder, trash)  # atomic: the name disappears at once, the files follow
            shutil.rmtree(trash, ignore_errors=True)
        log.info("deleted knowledge base %s", name)


def check_name(name: str) -> str:
    """A valid knowledge-base name, lower-cased.

    Raises:
        WorkspaceError: the name does not match ``[a-z0-9][a-z0-9_-]{0,39}``.
    """
    value = str(name or "").strip().lower()
    if not _NAME.match(value):
        raise WorkspaceError(f"knowledge-base name {name!r} is not usable: use 1-40 lower-case letters, digits, "
                             "'-' or '_', starting with a letter or digit (e.g. reports-2025)")
    return value
