"""The catalog side of an index directory: file names, manifest and passage readers, and loading.

:func:`load_index` reads what :func:`index.builder.build_index` wrote and opens the store searches
run in (the directory's own FAISS/bm25s files, or the external store ``WENDA_STORE`` names, see
``index/mirror.py``).
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .embed import Embedder
from .mirror import open_index_store
from .profile import PROFILE, CorpusProfile
from .stores import BM25Store, FaissStore, PassageStore, StoreError
from .stores.local_store import LocalPassageStore
from .textproc import TextProcessor
from .types import Passage

log = logging.getLogger(__name__)

FORMAT_VERSION = 5  # 5: profile.json (per-index tokenizer, stopwords, fitted parameters); covers_year
MANIFEST = "manifest.json"
PASSAGES = "passages.jsonl"
VECTORS = "vectors.npy"
SENTENCES = "sentences.npy"
SENTENCE_VECTORS = "sentence_vectors.npy"


class IndexLoadError(ValueError):
    """The index directory is missing, corrupt, or was built for another model or format."""


def rebuild_hint(index_dir: Path) -> str:
    return f"rebuild it with: python -m index build CORPUS_DIR --out {index_dir}"


def read_manifest(index_dir: Path) -> dict:
    """The manifest of an index directory.

    Raises:
        IndexLoadError: missing or unreadable manifest.
    """
    path = Path(index_dir) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexLoadError(f"no index at {index_dir} (missing {MANIFEST}); {rebuild_hint(Path(index_dir))}") from exc
    except (OSError, ValueError) as exc:
        raise IndexLoadError(f"{path} is corrupt ({exc}); {rebuild_hint(Path(index_dir))}") from exc


def _recover(index_dir: Path) -> None:
    """Finish an interrupted swap: if the index is missing but the previous one was moved aside, restore it."""
    if index_dir.exists():
        return
    olds = sorted(index_dir.parent.glob(f".{index_dir.name}.old-*"))
    if olds:
        log.warning("restoring previous index %s after an interrupted swap", olds[-1])
        os.rename(olds[-1], index_dir)


def _read_passages(index_dir: Path) -> list[Passage]:
    path = Path(index_dir) / PASSAGES
    try:
        with path.open(encoding="utf-8") as f:
            return [Passage.from_dict(json.loads(line)) for line in f if line.strip()]
    except (OSError, ValueError, TypeError) as exc:
        raise IndexLoadError(f"{path} is missing or corrupt ({exc}); {rebuild_hint(Path(index_dir))}") from exc


@dataclass
class LoadedIndex:
    """An index directory loaded into memory: the catalog (passages, vectors, profile) and its stores.

    Attributes:
        store: Where dense and sentence search run (default: a view on ``faiss`` and the sentence vectors).
        lexical: Where BM25 runs (the same store, or the local bm25s for a Milvus server without sparse vectors).
        row_of: Passage id → row of ``passages`` (stores answer with ids).
    """

    directory: Path
    manifest: dict
    passages: list[Passage]
    vectors: np.ndarray
    faiss: FaissStore
    bm25: BM25Store
    profile: CorpusProfile
    sentences: np.ndarray
    sentence_vectors: np.ndarray
    store: PassageStore | None = None
    lexical: PassageStore | None = None
    text: TextProcessor = field(init=False, repr=False)
    row_of: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # The index's own tokenizer: its mined terms and collection stopwords, shared with no other index.
        self.text = self.profile.text_processor()
        self.row_of = {p.id: i for i, p in enumerate(self.passages)}
        if self.store is None:
            self.store = self.local_store()
        if self.lexical is None:
            # An external store without sparse vectors (Milvus < 2.4): BM25 from the catalog's bm25s.
            self.lexical = self.store if isinstance(self.store, LocalPassageStore) else self.local_store()

    def local_store(self) -> LocalPassageStore:
        """The in-process store over this directory's FAISS, bm25s and sentence files."""
        return LocalPassageStore(
            [p.id for p in self.passages], [p.doc_id for p in self.passages], [p.year or 0 for p in self.passages],
            self.faiss, self.bm25, self.sentences[:, 0] if len(self.sentences) else np.zeros(0, np.int64),
            self.sentence_vectors, self.manifest.get("model", {}).get("id", ""),
        )

    @property
    def documents(self) -> dict[str, dict]:
        return self.manifest.get("documents", {})

    def close(self) -> None:
        """Release an external store's connection (the local files need nothing)."""
        for s in {id(self.store): self.store, id(self.lexical): self.lexical}.values():
            if s is not None and not isinstance(s, LocalPassageStore):
                s.close()


def load_index(index_dir: str | Path, embedder: Embedder | None = None) -> LoadedIndex:
    """Load and check an index directory.

    Args:
        index_dir: Directory written by :func:`build_index`.
        embedder: When given, the index must have been built with the same model and weights.

    Raises:
        IndexLoadError: missing, corrupt, other format version, or other model, or the configured
            external store (``WENDA_STORE``) does not mirror this catalog or is unreachable; the
            message says which command rebuilds.
    """
    index_dir = Path(index_dir)
    _recover(index_dir)
    manifest = read_manifest(index_dir)
    hint = rebuild_hint(index_dir)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexLoadError(
            f"index {index_dir} has format version {manifest.get('format_version')!r}, "
            f"this Wenda reads version {FORMAT_VERSION}; {hint}"
        )
    model = manifest.get("model", {})
    if embedder is not None and (model.get("id") != embedder.model_id or model.get("sha256") != embedder.weights_sha256):
        raise IndexLoadError(
            f"index {index_dir} was built with model {model.get('id')!r} (sha256 {str(model.get('sha256'))[:12]}…) "
            f"but the current model is {embedder.model_id!r} (sha256 {embedder.weights_sha256[:12]}…); {hint}"
        )
    passages = _read_passages(index_dir)
    try:
        vectors = np.load(index_dir / VECTORS, allow_pickle=False)
        faiss_store = FaissStore.load(index_dir)
        bm25 = BM25Store.load(index_dir)
        profile = CorpusProfile.from_dict(json.loads((index_dir / PROFILE).read_text(encoding="utf-8")))
        sentences = np.load(index_dir / SENTENCES, allow_pickle=False)
        sentence_vectors = np.load(index_dir / SENTENCE_VECTORS, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise IndexLoadError(f"index {index_dir} is corrupt ({exc}); {hint}") from exc
    n = len(passages)
    if not (faiss_store.size == n == len(vectors) == bm25.size == manifest.get("passages")):
        raise IndexLoadError(
            f"index {index_dir} is inconsistent (passages {n}, vectors {len(vectors)}, faiss {faiss_store.size}, "
            f"bm25 {bm25.size}, manifest {manifest.get('passages')}); {hint}"
        )
    if len(sentences) != len(sentence_vectors) or (len(sentences) and sentences[:, 0].max() >= n):
        raise IndexLoadError(f"index {index_dir}: sentence tables are inconsistent; {hint}")
    if n and vectors.shape[1] != model.get("dim"):
        raise IndexLoadError(f"index {index_dir}: vector dimension {vectors.shape[1]} != manifest {model.get('dim')}; {hint}")
    try:
        external = open_index_store(index_dir, manifest, n)
    except StoreError as exc:
        raise IndexLoadError(str(exc)) from None
    lexical = external if external is not None and getattr(external, "supports_sparse", True) else None
    return LoadedIndex(index_dir, manifest, passages, vectors, faiss_store, bm25, profile, sentences, sentence_vectors,
                       store=external, lexical=lexical)
