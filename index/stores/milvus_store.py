"""PassageStore on Milvus (pymilvus ``MilvusClient``): embedded milvus-lite file or a Milvus server.

URIs: ``milvus:./wenda.db`` (embedded milvus-lite, one process per file) or ``milvus://host:19530``.
Each version is a set of collections ``<name>_vN`` (passages: id, doc_id, year, dense, sparse, tf)
and ``<name>_vN_sent`` (sentence vectors); ``<name>_meta`` holds the active-version pointer and the
BM25 statistics per version. Servers also get the alias ``<name>`` (switched with ``alter_alias``);
milvus-lite 2.5 has no aliases, so the pointer row is the switch there. Reads and writes use Strong
consistency, except searches long after this store object last wrote or opened a version: on a
server a Strong search waits for the next time tick (about 200 ms per search, docs/scaling.md),
so those read with Bounded consistency (2-4 ms). A replica that sees a new build reopens the store
and reads Strong again for :data:`FRESH_S` seconds. The passages collection's description records
model id, dimension and BM25 k1/b.
"""
from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException

from .base import (
    Filter,
    PassageRecord,
    PassageStore,
    SearchResults,
    SparseWeights,
    StoreError,
)
from .bm25_stats import BM25Stats

log = logging.getLogger(__name__)

FORMAT = 1
STRONG = "Strong"
BOUNDED = "Bounded"
LITE_INDEX_TYPES = ("FLAT", "IVF_FLAT", "AUTOINDEX")
# Longer than Milvus' default bounded staleness (common.gracefulTime, 5 s): a Bounded read this long
# after the last write or open sees every write acknowledged before it.
FRESH_S = 10.0
MAX_K = 16384  # Milvus' topk / query limit
BATCH = 1000
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")


def parse_uri(uri: str) -> tuple[str, bool]:
    """``milvus:./x.db`` → (absolute file path, True); ``milvus://host:port`` → ("http://host:port", False)."""
    if uri.startswith("milvus://"):
        return "http://" + uri[len("milvus://"):], False
    if uri.startswith("milvus:"):
        path = uri[len("milvus:"):]
        if not path.endswith(".db"):  # pymilvus takes anything else for a server address
            raise StoreError(f"{uri}: an embedded Milvus file must end in .db (milvus:./wenda.db)")
        return str(Path(path).expanduser().resolve()), True
    raise StoreError(f"{uri}: not a Milvus URI (milvus:./wenda.db or milvus://host:19530)")


def _expr(where: Filter | None) -> str:
    """Milvus boolean expression for a filter ('' = everything)."""
    parts = []
    if where is not None and where.doc_ids is not None:
        parts.append(f"doc_id in {json.dumps(list(where.doc_ids), ensure_ascii=False)}")
    if where is not None and where.years is not None:
        parts.append(f"year in {json.dumps(list(where.years))}")
    return " and ".join(parts)


def _chunks(items: Sequence, n: int = BATCH) -> Iterator[Sequence]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


class MilvusPassageStore(PassageStore):
    """PassageStore on Milvus.

    Args:
        uri: ``milvus:./path.db`` or ``milvus://host:port``.
        model: Embedding model id; a store built with another model (or dim) raises :class:`StoreError`.
        dim: Expected vector dimension (None: from the first upsert or the existing collection).
        name: Collection/alias base name.
        index_type: Dense index, "FLAT" (exact) or "HNSW" (M=32, efConstruction 200).
        timeout: Seconds to wait for the server when connecting.
        k1: BM25 term-frequency saturation (for a new store).
        b: BM25 length normalisation (for a new store).
    """

    kind = "milvus"

    def __init__(self, uri: str, model: str = "", dim: int | None = None, name: str = "wenda", index_type: str = "FLAT",
                 timeout: float = 10.0, k1: float = 1.2, b: float = 0.75) -> None:
        super().__init__(model, k1, b)
        if not _NAME.match(name):
            raise ValueError(f"collection name {name!r} must be letters, digits and _")
        self.uri, self.name, self.index_type = uri, name, index_type.upper()
        self._staged = False  # True for a store from stage() until promoted
        self._fresh_until = time.monotonic() + FRESH_S  # searches read Strong until then
        target, self.lite = parse_uri(uri)
        if self.lite:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            if self.index_type not in LITE_INDEX_TYPES:
                # milvus-lite refuses HNSW ("local mode only support FLAT IVF_FLAT AUTOINDEX"); exact
                # search is what it can do, and it stays correct, only slower at 1M (docs/scaling.md).
                log.info("%s: milvus-lite builds no %s index; using FLAT", uri, self.index_type)
                self.index_type = "FLAT"
        try:
            self.client = MilvusClient(target, timeout=timeout)
            self._sparse_ok = self.lite or self._server_version() >= (2, 4)
            self._ensure_meta()
            self._coll = self._active()
        except MilvusException as exc:
            hint = "; an embedded file serves one process at a time, replicas need milvus://host:port" if self.lite else ""
            raise StoreError(f"{uri}: Milvus is unreachable or failed ({exc.message}{hint})") from None
        self.dim = dim
        if self._coll is not None:
            self._guard(self._open_existing, dim)

    # ---- setup -----------------------------------------------------------------------------------
    def _server_version(self) -> tuple[int, int]:
        m = re.search(r"(\d+)\.(\d+)", self.client.get_server_version() or "")
        return (int(m.group(1)), int(m.group(2))) if m else (99, 0)

    def _ensure_meta(self) -> None:
        meta = f"{self.name}_meta"
        if self.client.has_collection(meta):
            self.client.load_collection(meta)  # a restarted server reloads collections lazily
            return
        s = self.client.create_schema(auto_id=False, enable_dynamic_field=False, description="wenda store metadata")
        s.add_field("key", DataType.VARCHAR, is_primary=True, max_length=4096)
        s.add_field("num", DataType.INT64)
        s.add_field("tid", DataType.INT64)
        s.add_field("text", DataType.VARCHAR, max_length=1024)
        s.add_field("_v", DataType.FLOAT_VECTOR, dim=2)  # Milvus needs one vector field
        ip = self.client.prepare_index_params()
        ip.add_index("_v", index_type="FLAT", metric_type="L2")
        self.client.create_collection(meta, schema=s, index_params=ip, consistency_level=STRONG)

    def _meta_rows(self, expr: str, fields: list[str]) -> list[dict]:
        it = self.client.query_iterator(f"{self.name}_meta", batch_size=BATCH, filter=expr, output_fields=fields,
                                        consistency_level=STRONG)
        out: list[dict] = []
        while batch := it.next():
            out.extend(batch)
        it.close()
        return out

    def _put_meta(self, rows: list[dict]) -> None:
        for chunk in _chunks([{"num": 0, "tid": 0, "text": "", "_v": [0.0, 0.0], **r} for r in rows]):
            self.client.upsert(f"{self.name}_meta", list(chunk))

    def _active(self) -> str | None:
        rows = self.client.query(f"{self.name}_meta", ids=["active"], output_fields=["text"], consistency_level=STRONG)
        return rows[0]["text"] if rows else None

    def _open_existing(self, dim: int | None) -> None:
        try:
            desc = json.loads(self.client.describe_collection(self._coll).get("description") or "{}")
        except (MilvusException, ValueError) as exc:
            raise StoreError(f"{self.uri}: collection {self._coll} is missing or unreadable ({exc})") from None
        if (self.model and desc.get("model") != self.model) or (dim is not None and desc.get("dim") != dim):
            raise StoreError(
                f"{self.uri}: collection {self._coll} was built with model {desc.get('model')!r} (dim {desc.get('dim')}), "
                f"not {self.model!r} (dim {dim}); rebuild the index"
            )
        self.model, self.dim = desc.get("model", self.model), desc.get("dim")
        self.client.load_collection(self._coll)
        self.client.load_collection(self._coll + "_sent")
        self.stats = self._load_stats(self._coll, float(desc.get("k1", 1.2)), float(desc.get("b", 0.75)))

    def _load_stats(self, coll: str, k1: float, b: float) -> BM25Stats:
        stats = BM25Stats(k1, b)
        for r in self._meta_rows(f'key like "{coll}|%"', ["key", "num", "tid"]):
            kind, _, token = r["key"][len(coll) + 1 :].partition("|")
            if kind == "g":
                stats.n, stats.total_dl = int(r["num"]), int(r["tid"])
            else:
                stats.df[token], stats.tid[token] = int(r["num"]), int(r["tid"])
        return stats

    def _create_version(self, coll: str, dim: int) -> None:
        desc = json.dumps({"format": FORMAT, "model": self.model, "dim": dim, "k1": self.stats.k1, "b": self.stats.b})
        s = self.client.create_schema(auto_id=False, enable_dynamic_field=False, description=desc)
        s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=512)
        s.add_field("doc_id", DataType.VARCHAR, max_length=512)
        s.add_field("year", DataType.INT64)
        s.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
        if self._sparse_ok:
            s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        s.add_field("tf", DataType.JSON)
        ip = self.client.prepare_index_params()
        params = {"M": 32, "efConstruction": 200} if self.index_type == "HNSW" else {}
        ip.add_index("dense", index_type=self.index_type, metric_type="IP", params=params)
        if self._sparse_ok:
            ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        self.client.create_collection(coll, schema=s, index_params=ip, consistency_level=STRONG)
        s = self.client.create_schema(auto_id=False, enable_dynamic_field=False, description=desc)
        s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=600)
        s.add_field("passage_id", DataType.VARCHAR, max_length=512)
        s.add_field("doc_id", DataType.VARCHAR, max_length=512)
        s.add_field("year", DataType.INT64)
        s.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
        ip = self.client.prepare_index_params()
        ip.add_index("dense", index_type=self.index_type, metric_type="IP", params=params)
        self.client.create_collection(coll + "_sent", schema=s, index_params=ip, consistency_level=STRONG)
        log.info("created Milvus collections %s, %s_sent (dim %d) at %s", coll, coll, dim, self.uri)

    def _ensure_dim(self, dim: int) -> None:
        super()._ensure_dim(dim)
        if self._coll is None:
            self._coll = self._next_version()
            self._create_version(self._coll, dim)
            if not self._staged:
                self._switch(self._coll)
        elif not self.client.has_collection(self._coll):
            self._create_version(self._coll, dim)

    def _next_version(self) -> str:
        pat = re.compile(rf"^{self.name}_v(\d+)$")
        nums = [int(m.group(1)) for c in self.client.list_collections() if (m := pat.match(c))]
        return f"{self.name}_v{max(nums, default=0) + 1}"

    def _switch(self, coll: str) -> None:
        """Point readers at ``coll``: alias on a server (atomic ``alter_alias``), pointer row always."""
        if not self.lite:
            if self.name in self.client.list_aliases().get("aliases", []):
                self.client.alter_alias(coll, self.name)
            else:
                self.client.create_alias(coll, self.name)
        self._put_meta([{"key": "active", "text": coll}])

    def refresh(self) -> bool:
        """Follow a version switch made by another process (a replica); True when the version changed."""
        active = self._guard(self._active)
        if active == self._coll or active is None:
            return False
        self._coll = active
        self._fresh_until = time.monotonic() + FRESH_S
        self._guard(self._open_existing, None)
        return True

    def _read_level(self) -> str:
        """Strong right after this object wrote, opened or switched a version; Bounded otherwise."""
        return STRONG if time.monotonic() < self._fresh_until else BOUNDED

    def _guard(self, fn, *args, **kwargs):
        """Call ``fn``, turning Milvus failures into a one-line :class:`StoreError` naming the URI."""
        try:
            return fn(*args, **kwargs)
        except MilvusException as exc:
            raise StoreError(f"{self.uri}: Milvus failed ({exc.message})") from None

    # ---- public verbs: Milvus failures become StoreError -------------------------------------------
    def upsert(self, records: Sequence[PassageRecord]) -> int:
        return self._guard(super().upsert, records)

    def delete(self, ids: Sequence[str] | None = None, doc_ids: Sequence[str] | None = None) -> int:
        return self._guard(super().delete, ids, doc_ids)

    def search(self, vectors: np.ndarray, k: int, where: Filter | None = None) -> SearchResults:
        return self._guard(super().search, vectors, k, where)

    def sentence_search(self, vectors: np.ndarray, k: int, where: Filter | None = None) -> SearchResults:
        return self._guard(super().sentence_search, vectors, k, where)

    def lexical_search(self, weights: SparseWeights | Sequence[SparseWeights], k: int, where: Filter | None = None) -> SearchResults:
        return self._guard(super().lexical_search, weights, k, where)

    # ---- reads -----------------------------------------------------------------------------------
    def count(self) -> int:
        if self._coll is None or self.dim is None:
            return 0
        rows = self._guard(self.client.query, self._coll, filter="", output_fields=["count(*)"], consistency_level=STRONG)
        return int(rows[0]["count(*)"])

    def _hits(self, res: list, positive: bool = False, key: str = "id") -> SearchResults:
        ids, scores = [], []
        for hits in res:
            hits = [h for h in hits if not positive or h["distance"] > 0]
            ids.append([h["entity"][key] if key != "id" else h["id"] for h in hits])
            scores.append(np.asarray([h["distance"] for h in hits], np.float32))
        return SearchResults(ids, scores)

    def _search(self, queries: np.ndarray, k: int, where: Filter | None) -> SearchResults:
        res = self.client.search(self._coll, queries.tolist(), anns_field="dense", limit=min(k, MAX_K), filter=_expr(where),
                                 search_params={"metric_type": "IP", "params": {"ef": max(128, k)}},
                                 consistency_level=self._read_level())
        return self._hits(res)

    def _sentence_search(self, queries: np.ndarray, k: int, where: Filter | None) -> SearchResults:
        res = self.client.search(self._coll + "_sent", queries.tolist(), anns_field="dense", limit=min(k, MAX_K),
                                 filter=_expr(where), group_by_field="passage_id", output_fields=["passage_id"],
                                 search_params={"metric_type": "IP", "params": {"ef": max(128, k)}},
                                 consistency_level=self._read_level())
        return self._hits(res, key="passage_id")

    def _lexical(self, queries: list[dict[int, float]], k: int, where: Filter | None) -> SearchResults:
        if not self._sparse_ok:
            raise StoreError(f"{self.uri}: this Milvus server has no sparse vectors (needs Milvus >= 2.4)")
        out = SearchResults.empty(len(queries))
        todo = [j for j, q in enumerate(queries) if q]
        if self._coll is None or self.dim is None or not todo:
            return out
        res = self.client.search(self._coll, [queries[j] for j in todo], anns_field="sparse", limit=min(k, MAX_K),
                                 filter=_expr(where), search_params={"metric_type": "IP", "params": {"drop_ratio_search": 0.0}},
                                 consistency_level=self._read_level())
        hits = self._hits(res, positive=True)
        for j, i, s in zip(todo, hits.ids, hits.scores):
            out.ids[j], out.scores[j] = i, s
        return out

    # ---- writes ----------------------------------------------------------------------------------
    def _fetch_tf(self, ids: list[str]) -> dict[str, dict[str, int] | None]:
        out: dict[str, dict[str, int] | None] = {}
        if self._coll is None or self.dim is None or not ids:
            return out
        for chunk in _chunks(ids):
            for r in self.client.query(self._coll, ids=list(chunk), output_fields=["tf"], consistency_level=STRONG):
                out[r["id"]] = r["tf"].get("tf") if isinstance(r["tf"], dict) else None
        return out

    def _fetch_tf_of_docs(self, doc_ids: list[str]) -> dict[str, dict[str, int] | None]:
        out: dict[str, dict[str, int] | None] = {}
        if self._coll is None or self.dim is None:
            return out
        it = self.client.query_iterator(self._coll, batch_size=BATCH, filter=_expr(Filter(doc_ids=doc_ids)),
                                        output_fields=["tf"], consistency_level=STRONG)
        while batch := it.next():
            out.update({r["id"]: r["tf"].get("tf") if isinstance(r["tf"], dict) else None for r in batch})
        it.close()
        return out

    def _write(self, records: Sequence[PassageRecord], sparse: list[dict[int, float]], tfs: list[dict[str, int] | None],
               existing: set[str]) -> None:
        rows, sents = [], []
        for r, sp, tf in zip(records, sparse, tfs):
            row = {"id": r.id, "doc_id": str(r.doc_id), "year": int(r.year), "tf": {"tf": tf},
                   "dense": np.asarray(r.vector, np.float32).reshape(-1).tolist()}
            if self._sparse_ok:
                row["sparse"] = sp or {0: 0.0}  # an empty sparse row is refused; a zero never scores
            rows.append(row)
            for i, v in enumerate(np.asarray(r.sentence_vectors if r.sentence_vectors is not None else [], np.float32)):
                sents.append({"id": f"{r.id}#{i}", "passage_id": r.id, "doc_id": str(r.doc_id), "year": int(r.year),
                              "dense": v.reshape(-1).tolist()})
        self._fresh_until = time.monotonic() + FRESH_S
        ids = [r.id for r in records if r.id in existing]
        for chunk in _chunks(ids):  # old sentences go first, so a passage with fewer sentences keeps none stale
            self.client.delete(self._coll + "_sent", filter=f"passage_id in {json.dumps(list(chunk), ensure_ascii=False)}")
        for chunk in _chunks(rows):
            self.client.upsert(self._coll, list(chunk))
        for chunk in _chunks(sents):
            self.client.insert(self._coll + "_sent", list(chunk))

    def _remove(self, ids: list[str]) -> int:
        self._fresh_until = time.monotonic() + FRESH_S
        for chunk in _chunks(ids):
            quoted = json.dumps(list(chunk), ensure_ascii=False)
            self.client.delete(self._coll + "_sent", filter=f"passage_id in {quoted}")
            self.client.delete(self._coll, ids=list(chunk))
        return len(ids)

    def _save_stats(self) -> None:
        if self._coll is None:
            return
        rows = [{"key": f"{self._coll}|t|{t}", "num": self.stats.df.get(t, 0), "tid": self.stats.tid[t]} for t in self.stats.dirty]
        rows.append({"key": f"{self._coll}|g", "num": self.stats.n, "tid": self.stats.total_dl})
        self._put_meta(rows)
        self.stats.dirty.clear()

    # ---- versions --------------------------------------------------------------------------------
    def stage(self) -> MilvusPassageStore:
        staged = object.__new__(MilvusPassageStore)
        staged.__dict__.update(self.__dict__)
        staged.stats, staged.dim, staged._staged = BM25Stats(self.stats.k1, self.stats.b), None, True
        staged._coll = self._guard(self._next_version)
        return staged

    def promote(self, staged: PassageStore, drop_old: bool = True) -> None:
        self._guard(self._promote, staged, drop_old)

    def _promote(self, staged: PassageStore, drop_old: bool) -> None:
        if not isinstance(staged, MilvusPassageStore) or staged.client is not self.client or not staged._staged:
            raise TypeError("promote() needs a store from this store's stage()")
        if not self.client.has_collection(staged._coll):
            staged._create_version(staged._coll, staged.dim or self.dim or 1)
            staged._save_stats()
        old = self._coll
        self._fresh_until = time.monotonic() + FRESH_S
        self._switch(staged._coll)
        self._coll, self.stats, self.dim = staged._coll, staged.stats, staged.dim or self.dim
        staged._staged = False
        log.info("%s now serves %s (was %s)", self.uri, self._coll, old)
        if drop_old and old is not None and old != self._coll:
            for c in (old, old + "_sent"):
                if self.client.has_collection(c):
                    self.client.drop_collection(c)
            self.client.delete(f"{self.name}_meta", filter=f'key like "{old}|%"')

    @property
    def supports_sparse(self) -> bool:
        """Whether this Milvus has sparse vectors (lexical search); servers before 2.4 do not."""
        return self._sparse_ok

    @property
    def version(self) -> str | None:
        """Name of the collection this store serves."""
        return self._coll

    def close(self) -> None:
        self.client.close()
