"""Passage-store scaling benchmark: Milvus (embedded milvus-lite or a server) beside FAISS.

    python -m eval scale --stores milvus:/tmp/bench.db --n 100000
    python -m eval scale --stores milvus:/tmp/bench.db,milvus://127.0.0.1:19530 --n 1000000 --no-tokens
    python -m eval scale --real data/index/taiyuan,data/index/drcd,data/index/english

Per store and dense index type (FLAT, HNSW M=32 efConstruction 200, ef 128 as the store uses
them): ingest rate through ``PassageStore.upsert`` (batches of ``--batch`` records, BM25 statistics
kept current as in an incremental build), time until the first query answers (index build and
load), single-query latency of dense search, dense search under a year filter and BM25 lexical
search (sparse vectors; Milvus >= 2.4 only), recall@10 against exact inner-product search, and
the memory of the Milvus processes. FAISS flat and HNSW (the builder's settings) on the same data
are the baseline measured in the same run.

The synthetic vectors are :class:`eval.scale.SyntheticEmbeddings` (shaped like e5 vectors); passage
tokens are Zipf-distributed over a 50k vocabulary. ``--real`` measures HNSW recall on real e5
vectors instead: every passage and sentence vector of the given index directories as the database,
the gold questions of the bundled collections (embedded as queries) as the queries.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from .scale import K, SyntheticEmbeddings, pct, recall_at_k, release_memory, rss_mb

log = logging.getLogger(__name__)

VOCAB = 50_000
TOKENS_PER_PASSAGE = 40
PASSAGES_PER_DOC = 20
YEARS = 25


def synthetic_tokens(n: int, seed: int = 0) -> list[list[str]]:
    """``n`` token lists, Zipf-distributed over :data:`VOCAB` terms (like words of a corpus)."""
    rng = np.random.default_rng(seed + 7)
    ids = np.minimum(rng.zipf(1.2, (n, TOKENS_PER_PASSAGE)), VOCAB) - 1
    return [[f"t{i}" for i in row] for row in ids]


def _milvus_rss_mb() -> float:
    """Resident memory of the Milvus processes: this process's children (milvus-lite runs its core as a
    child), or the server whose PID is in ``WENDA_MILVUS_PID`` (with its children)."""
    import psutil

    total = 0.0
    pid = os.environ.get("WENDA_MILVUS_PID")
    try:
        root = psutil.Process(int(pid)) if pid else psutil.Process()
        procs = ([root] if pid else []) + root.children(recursive=True)
    except (psutil.Error, ValueError):
        return 0.0
    for child in procs:
        try:
            total += child.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def _disk_mb(spec: str) -> float:
    """Size on disk of an embedded Milvus file (0 for a server)."""
    if spec.startswith("milvus://") or not spec.startswith("milvus:"):
        return 0.0
    path = Path(spec[len("milvus:"):])
    files = [path] if path.is_file() else list(path.parent.glob(path.name + "*"))
    total = 0
    for f in files:
        total += f.stat().st_size if f.is_file() else sum(p.stat().st_size for p in f.rglob("*") if p.is_file())
    return total / 2**20


def _faiss_one(index: Any, q: np.ndarray) -> np.ndarray:
    return index.search(q[None, :], K)[1][0]


def _timed(fn, items: list, desc: str) -> tuple[list[float], list]:
    """Run ``fn(item)`` once per item; (latencies ms, results)."""
    fn(items[0])  # warm caches and lazy loads
    lat, out = [], []
    for item in tqdm(items, desc=desc, unit="q", leave=False, disable=not log.isEnabledFor(logging.INFO)):
        t0 = time.perf_counter()
        out.append(fn(item))
        lat.append((time.perf_counter() - t0) * 1000)
    return lat, out


class StoreBenchmark:
    """Measures PassageStores and FAISS on one data set.

    Args:
        xb: Database vectors (n, dim), L2-normalised float32.
        xq: Query vectors.
        stores: Store specs (``milvus:/path.db``, ``milvus://host:port``).
        index_types: Dense index types to build in each store.
        tokens: Passage tokens for BM25 (None: dense only).
        batch: Records per upsert call.
        latency_queries: Queries timed one by one.
        label: Name of the data set in the results.
        faiss_baselines: FAISS indexes measured beside the stores ("Flat", "HNSW").
    """

    def __init__(self, xb: np.ndarray, xq: np.ndarray, stores: list[str], index_types: tuple[str, ...] = ("FLAT", "HNSW"),
                 tokens: list[list[str]] | None = None, batch: int = 10_000, latency_queries: int = 200,
                 label: str = "synthetic", faiss_baselines: tuple[str, ...] = ("Flat", "HNSW")) -> None:
        self.xb, self.xq, self.stores, self.index_types = xb, xq, stores, index_types
        self.tokens, self.batch, self.nlat, self.label = tokens, batch, min(latency_queries, len(xq)), label
        self.faiss_baselines = faiss_baselines
        self.rows: list[dict[str, Any]] = []
        self.truth = self._exact()

    def _exact(self) -> np.ndarray:
        import faiss

        index = faiss.IndexFlatIP(self.xb.shape[1])
        index.add(self.xb)
        return index.search(self.xq, K)[1]

    def _row(self, store: str, index: str, **values: Any) -> None:
        row = {"data": self.label, "n": len(self.xb), "store": store, "index": index, **values}
        self.rows.append(row)
        log.info("%s", row)

    def run(self) -> list[dict[str, Any]]:
        """FAISS baselines, then every store × index type; returns the rows."""
        self._faiss()
        for spec in self.stores:
            for index_type in self.index_types:
                self._store(spec, index_type)
        return self.rows

    def _faiss(self) -> None:
        import faiss

        for name, make in (("Flat", lambda d: faiss.IndexFlatIP(d)),
                           ("HNSW M=32 efC=200 ef=128", lambda d: faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT))):
            if name.split()[0] not in self.faiss_baselines:
                continue
            release_memory()
            rss0 = rss_mb()
            t0 = time.perf_counter()
            index = make(self.xb.shape[1])
            if hasattr(index, "hnsw"):
                index.hnsw.efConstruction = 200
                index.hnsw.efSearch = 128
            index.add(self.xb)
            build = time.perf_counter() - t0
            lat, _ = _timed(partial(_faiss_one, index), list(self.xq[: self.nlat]), f"faiss {name}")
            all_found = index.search(self.xq, K)[1]
            self._row("faiss (in process)", name, ingest_per_s=round(len(self.xb) / build), ready_s=round(build, 1),
                      p50_ms=round(pct(lat, 50), 2), p95_ms=round(pct(lat, 95), 2),
                      recall=round(recall_at_k(all_found, self.truth), 4), memory_mb=round(rss_mb() - rss0))
            del index

    def _store(self, spec: str, index_type: str) -> None:
        from index.stores import Filter, PassageRecord, StoreError, open_passage_store

        name = f"bench_{len(self.xb)}_{index_type.lower()}"
        try:
            store = open_passage_store(spec, model="scale-benchmark", dim=self.xb.shape[1], name=name, index_type=index_type)
        except StoreError as exc:
            log.error("%s", exc)
            return
        if getattr(store, "index_type", index_type) != index_type:  # milvus-lite falls back to FLAT for HNSW
            log.warning("skipped %s %s: the store builds %s instead", spec, index_type, store.index_type)
            store.close()
            return
        try:
            if store.count():  # a left-over run: start from an empty version
                store.promote(store.stage())
            mem0 = _milvus_rss_mb()
            n = len(self.xb)
            t0 = time.perf_counter()
            for start in tqdm(range(0, n, self.batch), desc=f"upsert {spec} {index_type}", unit="batch",
                              disable=not log.isEnabledFor(logging.INFO)):
                end = min(n, start + self.batch)
                store.upsert([PassageRecord(f"p{i}", f"d{i // PASSAGES_PER_DOC}", 2000 + i % YEARS, self.xb[i],
                                            tokens=self.tokens[i] if self.tokens else None) for i in range(start, end)])
            ingest = time.perf_counter() - t0
            store.search(self.xq[:1], K)
            ready = time.perf_counter() - t0
            lat, _ = _timed(lambda q: store.search(q[None, :], K), list(self.xq[: self.nlat]), f"{spec} {index_type}")
            found_all = np.full((len(self.xq), K), -1, np.int64)
            for j in range(0, len(self.xq), 100):
                for r, ids in enumerate(store.search(self.xq[j:j + 100], K).ids):
                    found_all[j + r, : len(ids)] = [int(i[1:]) for i in ids]  # "p123" -> row 123
            years = np.random.default_rng(1).integers(2000, 2000 + YEARS, self.nlat)
            flat, _ = _timed(lambda j: store.search(self.xq[j][None, :], K, Filter(years=(int(years[j]),))),
                             list(range(self.nlat)), "filtered")
            values: dict[str, Any] = {
                "ingest_per_s": round(n / ingest), "ready_s": round(ready, 1), "p50_ms": round(pct(lat, 50), 2),
                "p95_ms": round(pct(lat, 95), 2), "recall": round(recall_at_k(found_all, self.truth), 4),
                "filtered_p50_ms": round(pct(flat, 50), 2), "memory_mb": round(_milvus_rss_mb() - mem0),
                "disk_mb": round(_disk_mb(spec)),
            }
            if self.tokens:
                rng = np.random.default_rng(2)
                queries = [[f"t{i}" for i in np.minimum(rng.zipf(1.5, 3), VOCAB) - 1 + 20] for _ in range(self.nlat)]
                try:
                    lex, _ = _timed(lambda q: store.bm25_search(q, K), queries, "lexical")
                    values.update(lexical_p50_ms=round(pct(lex, 50), 2), lexical_p95_ms=round(pct(lex, 95), 2))
                except StoreError as exc:  # a Milvus server before 2.4 has no sparse vectors
                    log.warning("%s", exc)
            self._row(spec.split(":")[0] + (" server" if spec.startswith("milvus://") else " lite"), index_type, **values)
            store.promote(store.stage())  # leave an empty version behind, not n rows
        except StoreError as exc:  # e.g. milvus-lite builds FLAT/IVF_FLAT/AUTOINDEX only, no HNSW
            log.warning("skipped %s %s: %s", spec, index_type, exc)
        finally:
            store.close()


def real_vectors(index_dirs: list[str], embedder: Any | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Real e5 vectors: passages and sentences of ``index_dirs``; queries: the bundled gold questions embedded."""
    import json

    from index.embed import Embedder

    xb = np.concatenate([np.load(Path(d) / name, allow_pickle=False)
                         for d in index_dirs for name in ("vectors.npy", "sentence_vectors.npy")]).astype(np.float32)
    questions = []
    root = Path(__file__).resolve().parents[1]
    for path in [root / "data/gold/taiyuan_gold.jsonl", *sorted((root / "data/collections").glob("*/gold.jsonl"))]:
        with path.open(encoding="utf-8") as f:
            questions += [json.loads(line)["question"] for line in f if line.strip()]
    embedder = embedder or Embedder()
    xq = np.asarray(embedder.encode_queries(questions), np.float32)
    return xb, xq, f"real e5 ({len(index_dirs)} indexes)"


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as one markdown table."""
    lines = [("| data | n | store | index | ingest /s | ready s | p50 ms | p95 ms | recall@10 | filtered p50 ms | "
              "BM25 p50 ms | memory MB | disk MB |"),
             "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['data']} | {r['n']:,} | {r['store']} | {r['index']} | {r['ingest_per_s']:,} | {r['ready_s']} | "
                     f"{r['p50_ms']} | {r['p95_ms']} | {r['recall']:.4f} | {r.get('filtered_p50_ms', '–')} | "
                     f"{r.get('lexical_p50_ms', '–')} | {r.get('memory_mb', '–')} | {r.get('disk_mb', '–') or '–'} |")
    return "\n".join(lines) + "\n"


def run(n: int, queries: int, stores: list[str], tokens: bool, index_types: tuple[str, ...], real: list[str],
        latency_queries: int = 200, seed: int = 0, faiss_baselines: tuple[str, ...] = ("Flat", "HNSW")) -> dict[str, Any]:
    """Synthetic run at ``n`` (when n > 0) and a real-vector run (when ``real`` names index dirs)."""
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    if real:
        xb, xq, label = real_vectors(real)
        rows += StoreBenchmark(xb, xq, stores, index_types, latency_queries=latency_queries, label=label,
                               faiss_baselines=faiss_baselines).run()
    if n:
        data = SyntheticEmbeddings(seed=seed)
        xb = data.database(n)
        toks = synthetic_tokens(n, seed) if tokens else None
        rows += StoreBenchmark(xb, data.queries(queries), stores, index_types, toks, latency_queries=latency_queries,
                               faiss_baselines=faiss_baselines).run()
    meta = {"n": n, "queries": queries, "stores": stores, "index_types": list(index_types), "tokens": tokens,
            "total_s": round(time.perf_counter() - t0), "loadavg": os.getloadavg()[0] if hasattr(os, "getloadavg") else -1}
    for spec in stores:  # embedded files are benchmark scratch
        if spec.startswith("milvus:") and not spec.startswith("milvus://"):
            path = Path(spec[len("milvus:"):])
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    return {"meta": meta, "rows": rows}
