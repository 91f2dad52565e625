"""The passage store an index is searched in (``WENDA_STORE``): configuration, mirroring, opening.

The index directory is always the catalog (passages, vectors, sentences, profile, manifest) and,
by default, also the store: its FAISS and bm25s files are searched in process. With
``WENDA_STORE=milvus:./wenda.db`` (embedded milvus-lite) or ``WENDA_STORE=milvus://host:19530`` the
builder mirrors every build into a Milvus collection named after the knowledge base:

* a full build (first mirror, another model, an unsynced or altered store) writes a staged version
  and promotes it in one switch, so readers see the old version or the new one;
* an incremental build upserts the passages whose document, year, text or BM25 tokens changed and
  deletes the passages of removed documents (by doc_id) and of shortened ones (by id).

The manifest's ``store`` entry records the store (kind, URI without credentials, collection,
version, count, and the catalog build it mirrors); :func:`open_index_store` refuses a store that
is unreachable, built with another model, or does not mirror this catalog, in one line that names
the command which brings it up to date.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .stores import PassageRecord, PassageStore, StoreError, open_passage_store
from .stores.faiss_store import HNSW_THRESHOLD
from .types import Passage

log = logging.getLogger(__name__)

ENV_STORE = "WENDA_STORE"
LOCAL = "local"
SIGNATURES = "passage_sigs.npy"  # uint64 per passage row: what the store holds of it (doc, year, text, tokens)
CONNECT_TIMEOUT = 10.0  # seconds to wait for a Milvus server before the one-line "unreachable" error


@dataclass(frozen=True)
class StoreConfig:
    """The configured store.

    Attributes:
        spec: ``local`` or a Milvus URI (``milvus:/abs/path.db``, ``milvus://host:port``).
    """

    spec: str = LOCAL

    @property
    def kind(self) -> str:
        """``local`` or ``milvus``."""
        return LOCAL if self.spec == LOCAL else self.spec.split(":", 1)[0]

    @property
    def external(self) -> bool:
        """Whether search runs outside the index directory's files."""
        return self.kind != LOCAL

    @property
    def uri(self) -> str:
        """The spec without credentials (``milvus://user:secret@host`` → ``milvus://host``): safe to record and log."""
        return re.sub(r"^(milvus://)[^@/]*@", r"\1", self.spec)


def store_config(spec: str | None = None) -> StoreConfig:
    """The store named by ``spec`` or ``WENDA_STORE`` (unset, ``local`` or ``faiss``: the index directory's files).

    Raises:
        StoreError: an unknown kind of store.
    """
    spec = (spec if spec is not None else os.environ.get(ENV_STORE, "")).strip()
    if spec in ("", LOCAL, "faiss"):
        return StoreConfig(LOCAL)
    if spec.startswith("milvus://"):
        return StoreConfig(spec)
    if spec.startswith("milvus:"):
        path = spec[len("milvus:"):]
        if not path.endswith(".db"):
            raise StoreError(f"{ENV_STORE}={spec}: an embedded Milvus file must end in .db (milvus:./wenda.db)")
        return StoreConfig("milvus:" + str(Path(path).expanduser().resolve()))
    raise StoreError(f"{ENV_STORE}={spec}: unknown store (local, milvus:./wenda.db, milvus://host:19530)")


def collection_name(index_dir: Path) -> str:
    """Collection base name of an index: ``wenda_<knowledge base>`` (``kbs/<name>/index``) or ``wenda_<index folder>``."""
    index_dir = Path(index_dir)
    name = index_dir.parent.name if index_dir.name == "index" else index_dir.name
    name = re.sub(r"[^a-z0-9_]", "_", name.lower()).strip("_") or "index"
    return f"wenda_{name}"[:60]


@dataclass
class StoreRecord:
    """The manifest's ``store`` entry.

    Attributes:
        kind: ``local`` or ``milvus``.
        uri: Store URI without credentials ("" for local).
        collection: Collection base name ("" for local).
        version: The store's active version when the build finished.
        count: Passages the store held when the build finished.
        build_id: The catalog build the store mirrors ("" while a mirror is pending or failed).
    """

    kind: str = LOCAL
    uri: str = ""
    collection: str = ""
    version: str = ""
    count: int = 0
    build_id: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_manifest(cls, manifest: dict) -> StoreRecord:
        d = manifest.get("store") or {}
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def same_target(self, config: StoreConfig, collection: str) -> bool:
        """Whether this record describes the configured store and collection."""
        return self.kind == config.kind and (not config.external or (self.uri == config.uri and self.collection == collection))


def rebuild_command(index_dir: Path, manifest: dict) -> str:
    """The command that brings an index (and its store) up to date."""
    index_dir = Path(index_dir)
    if index_dir.name == "index" and (index_dir.parent / "kb.json").is_file():
        return f"python -m index kb build {index_dir.parent.name}"
    return f"python -m index build {manifest.get('corpus_dir') or 'CORPUS_DIR'} --out {index_dir}"


def open_store(config: StoreConfig, collection: str, model: str, dim: int | None, n_passages: int = 0) -> PassageStore:
    """Open (or create empty) the configured external store for one index."""
    index_type = "HNSW" if n_passages >= HNSW_THRESHOLD else "FLAT"
    return open_passage_store(config.spec, model, dim, name=collection, index_type=index_type, timeout=CONNECT_TIMEOUT)


def passage_signatures(passages: Sequence[Passage], tokens: Sequence[Sequence[str]]) -> np.ndarray:
    """One uint64 per passage over what the store holds of it: document, year, indexed text, BM25 tokens."""
    out = np.zeros(len(passages), np.uint64)
    for i, (p, toks) in enumerate(zip(passages, tokens)):
        h = hashlib.blake2b(digest_size=8)
        h.update("\x1e".join([p.id, p.doc_id, str(p.year or 0), p.index_text(), "\x1f".join(toks)]).encode("utf-8"))
        out[i] = int.from_bytes(h.digest(), "little")
    return out


@dataclass
class Catalog:
    """What the builder wrote, as the mirror needs it (rows aligned with ``passages.jsonl``)."""

    passages: list[Passage]
    vectors: np.ndarray
    tokens: list[list[str]]
    sentences: np.ndarray  # int32 (m, 3): passage row, start, end
    sentence_vectors: np.ndarray
    signatures: np.ndarray

    def records(self, rows: Sequence[int]) -> list[PassageRecord]:
        """Store records of the given passage rows (with their sentence vectors)."""
        by_row: dict[int, list[int]] = {}
        for j, row in enumerate(self.sentences[:, 0] if len(self.sentences) else []):
            by_row.setdefault(int(row), []).append(j)
        out = []
        for row in rows:
            p = self.passages[row]
            sent = by_row.get(row)
            out.append(PassageRecord(p.id, p.doc_id, int(p.year or 0), self.vectors[row], tokens=list(self.tokens[row]),
                                     sentence_vectors=self.sentence_vectors[sent] if sent else None))
        return out


@dataclass
class Previous:
    """The catalog a build replaces: its manifest and passage ids/signatures (None when unusable)."""

    manifest: dict
    ids: list[str]
    doc_ids: list[str]
    signatures: np.ndarray | None


def read_previous(index_dir: Path, manifest: dict, passages: list[Passage]) -> Previous:
    """The replaced catalog's passage ids and signatures (``signatures`` None when missing or stale)."""
    try:
        sigs = np.load(Path(index_dir) / SIGNATURES, allow_pickle=False)
    except (OSError, ValueError):
        sigs = None
    if sigs is not None and len(sigs) != len(passages):
        sigs = None
    return Previous(manifest, [p.id for p in passages], [p.doc_id for p in passages], sigs)


def sync_store(config: StoreConfig, index_dir: Path, catalog: Catalog, model: str, dim: int, build_id: str,
               previous: Previous | None, force: bool = False) -> StoreRecord:
    """Bring the external store up to date with a freshly written catalog.

    Incremental when the previous build's store record is intact (same target, mirrored that build,
    the store still at that version and count) and ``force`` is off; a staged full rewrite otherwise.

    Raises:
        StoreError: unreachable store, another model, or a failed write (one line).
    """
    collection = collection_name(index_dir)
    store = open_store(config, collection, model, dim, len(catalog.passages))
    try:
        old = StoreRecord.from_manifest(previous.manifest) if previous else None
        incremental = (
            not force and previous is not None and previous.signatures is not None and old is not None
            and old.same_target(config, collection) and old.build_id == previous.manifest.get("build_id")
            and previous.manifest.get("model", {}).get("id") == model
            and getattr(store, "version", None) == old.version and store.count() == old.count == len(previous.ids)
        )
        if incremental:
            _sync_changes(store, catalog, previous)
        else:
            staged = store.stage()
            staged.upsert(catalog.records(range(len(catalog.passages))))
            store.promote(staged)
            log.info("%s: wrote %d passages into a new version %s", config.uri, len(catalog.passages), store.version)
        count = store.count()
        if count != len(catalog.passages):
            raise StoreError(f"{config.uri}: collection {collection} holds {count} passages after the build, "
                             f"the catalog {len(catalog.passages)}")
        return StoreRecord(config.kind, config.uri, collection, str(getattr(store, "version", "") or ""), count, build_id)
    finally:
        store.close()


def _sync_changes(store: PassageStore, catalog: Catalog, previous: Previous) -> None:
    """Upsert changed and new passages first, then delete what is gone, so a document is never missing."""
    old_sig = dict(zip(previous.ids, previous.signatures.tolist()))
    new_ids = {p.id for p in catalog.passages}
    changed = [i for i, (p, s) in enumerate(zip(catalog.passages, catalog.signatures.tolist())) if old_sig.get(p.id) != s]
    new_docs = {p.doc_id for p in catalog.passages}
    removed_docs = sorted(set(previous.doc_ids) - new_docs)
    gone = [i for i, d in zip(previous.ids, previous.doc_ids) if i not in new_ids and d in new_docs]
    if changed:
        store.upsert(catalog.records(changed))
    if removed_docs:
        store.delete(doc_ids=removed_docs)
    if gone:
        store.delete(ids=gone)
    log.info("store updated: %d passages upserted, %d documents and %d passages deleted", len(changed), len(removed_docs), len(gone))


def open_index_store(index_dir: Path, manifest: dict, n_passages: int, config: StoreConfig | None = None) -> PassageStore | None:
    """The external store of a loaded catalog (None when the configured store is the local files).

    Raises:
        StoreError: not mirrored into the configured store, unreachable, another model, or a count
            that differs from the catalog's; one line naming the command that rebuilds.
    """
    config = config or store_config()
    if not config.external:
        return None
    collection = collection_name(index_dir)
    fix = f"run: {ENV_STORE}={config.uri} {rebuild_command(index_dir, manifest)}"
    rec = StoreRecord.from_manifest(manifest)
    if not rec.same_target(config, collection) or not rec.build_id or rec.build_id != manifest.get("build_id"):
        raise StoreError(f"index {index_dir} is not mirrored into {config.uri} (collection {collection}); {fix}")
    model = manifest.get("model", {})
    try:
        store = open_store(config, collection, model.get("id", ""), model.get("dim"), n_passages)
    except StoreError as exc:
        raise StoreError(f"{exc}; {fix}") from None
    count = store.count()
    if count != n_passages:
        store.close()
        raise StoreError(f"{config.uri}: collection {collection} holds {count} passages, the catalog {index_dir} "
                         f"{n_passages}; {fix}")
    return store


def store_in_sync(index_dir: Path, manifest: dict, config: StoreConfig | None = None) -> bool:
    """Whether a catalog's store record matches the configured store and its live count (for the builder's
    "up to date" check; an unreachable store counts as out of sync, so the build reports the error)."""
    config = config or store_config()
    if not config.external:
        return True
    try:
        open_index_store(index_dir, manifest, int(manifest.get("passages", 0)), config).close()
    except StoreError as exc:
        log.info("store not in sync: %s", exc)
        return False
    return True
