"""Serving a workspace: one Assistant per knowledge base, loaded on first use, one shared embedder.

The web app, the API and the CLI ask through a :class:`Service`; which knowledge base answers is an
argument of each call (``kb``), so one process serves all of a user's collections.
"""
from __future__ import annotations

import logging
import threading

from index.embed import Embedder
from index.kb import KnowledgeBase
from index.workspace import KBInfo, Workspace, WorkspaceError, default_kb_name

from .assistant import Assistant

log = logging.getLogger(__name__)


class EmptyKnowledgeBase(WorkspaceError):
    """The knowledge base has no documents yet, so there is nothing to answer from."""


class Service:
    """Knowledge bases of a workspace and their assistants.

    Args:
        workspace: The workspace (default: ``WENDA_HOME``, seeded with the bundled corpus).
        embedder: Shared embedding model (default: loaded on first use).
    """

    def __init__(self, workspace: Workspace | None = None, embedder: Embedder | None = None) -> None:
        self.workspace = workspace or Workspace()
        self._embedder = embedder
        self.default = default_kb_name()  # asked when a call names no knowledge base (WENDA_KB)
        self._assistants: dict[str, Assistant] = {}
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ reading
    @property
    def embedder(self) -> Embedder:
        """The shared embedder (loaded on first use)."""
        with self._lock:
            if self._embedder is None:
                self._embedder = Embedder()
            return self._embedder

    def name(self, kb: str | None) -> str:
        """``kb`` checked to exist, or the default knowledge base."""
        name = (kb or "").strip().lower() or self.default
        self.workspace.path(name)  # raises WorkspaceError for an unknown name
        return name

    def loaded(self, kb: str | None = None) -> bool:
        """Whether the knowledge base's assistant is in memory (its first question does not wait)."""
        return (kb or self.default) in self._assistants

    def list(self) -> list[KBInfo]:
        """The knowledge bases, default first."""
        return self.workspace.list()

    def kb(self, kb: str | None = None) -> KnowledgeBase:
        """Corpus and index of a knowledge base, for adding and deleting documents."""
        return self.workspace.kb(self.name(kb), self.embedder)

    def assistant(self, kb: str | None = None) -> Assistant:
        """The assistant of a knowledge base, building its index first when there is none.

        Raises:
            WorkspaceError: unknown knowledge base.
            EmptyKnowledgeBase: it has no documents yet.
        """
        name = self.name(kb)
        with self._lock:
            if name not in self._assistants:
                base = self.workspace.kb(name, self.embedder)
                if not (base.index_dir / "manifest.json").exists() and not self.workspace.info(name).documents:
                    raise EmptyKnowledgeBase(f"knowledge base {name!r} has no documents yet; upload some first")
                assistant = Assistant.load(base.index_dir, self.embedder, base.corpus_dir, build_if_missing=True)
                self._assistants[name] = assistant
                log.info("knowledge base %s ready: %d passages", name, len(assistant.index.passages))
            return self._assistants[name]

    # ------------------------------------------------------------------ changing
    def changed(self, kb: str | None = None) -> None:
        """Documents of ``kb`` changed: reload its index for new questions (or forget it when now empty)."""
        name = self.name(kb)
        with self._lock:
            assistant = self._assistants.get(name)
            if assistant is None:
                return
            if self.workspace.info(name).documents:
                assistant.reload()
            else:
                del self._assistants[name]

    def create(self, name: str, title: str = "") -> KBInfo:
        """Create an empty knowledge base."""
        return self.workspace.create(name, title)

    def delete(self, kb: str) -> None:
        """Delete a knowledge base (not the default one) and drop its assistant."""
        name = self.name(kb)
        with self._lock:
            self._assistants.pop(name, None)
            self.workspace.delete(name)

    def preload(self) -> None:
        """Load the default knowledge base in the background so the first question does not wait."""
        def run() -> None:
            try:
                self.assistant()
            except Exception:  # retried on the next request
                log.exception("loading the default knowledge base failed; it will be retried on the next request")

        threading.Thread(target=run, name="wenda-preload", daemon=True).start()
