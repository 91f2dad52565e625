"""Vector-index scaling benchmark on synthetic embeddings: FAISS flat vs HNSW vs IVF (Flat, SQ8, PQ).

    python -m eval.scale --n 1000000 [--queries 1000] [--json OUT] [--markdown OUT]
    python -m eval scale --n 100000 --hnsw 16:40,32:80,32:200

The data imitate sentence embeddings: ``--clusters`` topic centres on the unit sphere, each
point its centre plus noise that lives mostly in a shared low-rank subspace (real text
embeddings have a low intrinsic dimension) plus a little isotropic noise, L2-normalised,
float32, 384-d. Queries are drawn the same way around random centres. Ground truth is exact
inner-product search (``IndexFlatIP``); every other index is scored by recall@10 against it.

Per index: build time (train + add; IVF variants share one coarse k-means and one assignment
pass, whose times are added to each so the figure is what a standalone build would cost),
serialised size (``faiss.serialize_index``), RSS growth of this process while building, and
single-query search latency (one query per call, ``faiss.omp_set_num_threads(--threads)``).
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import logging
import math
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

log = logging.getLogger(__name__)

DIM = 384
K = 10
CHUNK = 100_000


# --------------------------------------------------------------------------- helpers
def rss_mb() -> float:
    """Current resident set size of this process in MB."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc), so RSS deltas stay honest."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (linear interpolation) of a non-empty list."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def parse_pairs(text: str) -> list[tuple[int, int]]:
    """``"16:40,32:80"`` → [(16, 40), (32, 80)] (HNSW M:efConstruction)."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m, _, ef = part.partition(":")
        out.append((int(m), int(ef or 40)))
    return out


def parse_ints(text: str) -> list[int]:
    """``"8,32"`` → [8, 32] (empty string → [])."""
    return [int(p) for p in text.split(",") if p.strip()]


# --------------------------------------------------------------------------- data
class SyntheticEmbeddings:
    """Clustered, anisotropic, L2-normalised float32 vectors shaped like sentence embeddings (deterministic).

    A point is ``normalize(alpha * mean + u)`` with ``u = normalize(centre + noise)``: topic centres
    live in a ``centre_rank``-dimensional subspace, within-topic variation mostly in a shared
    ``rank``-dimensional subspace plus a little isotropic noise, and a common ``mean`` direction
    makes unrelated texts look alike (``alpha`` from ``mean_cos``), as e5 vectors do (random pairs
    of the bundled corpus have cosine ≈ 0.89, nearest neighbours ≈ 0.95).

    Args:
        dim: Vector dimension.
        clusters: Number of topic centres.
        centre_rank: Dimension of the subspace the centres span.
        rank: Dimension of the shared subspace most within-cluster variation lives in.
        sub_noise: Scale of the low-rank noise (per subspace coordinate).
        iso_noise: Scale of the isotropic noise (per coordinate).
        mean_cos: Target cosine of two unrelated vectors (the anisotropy); 0 for none.
        seed: Random seed.
    """

    def __init__(self, dim: int = DIM, clusters: int = 1000, centre_rank: int = 128, rank: int = 64,
                 sub_noise: float = 0.09, iso_noise: float = 0.015, mean_cos: float = 0.89, seed: int = 0) -> None:
        self.dim, self.clusters, self.centre_rank, self.rank = dim, clusters, centre_rank, rank
        self.sub_noise, self.iso_noise, self.mean_cos, self.seed = sub_noise, iso_noise, mean_cos, seed
        rng = np.random.default_rng(seed)
        q, _ = np.linalg.qr(rng.standard_normal((dim, centre_rank + rank + 1)))
        q = q.T.astype(np.float32)  # orthonormal rows: centre subspace, noise subspace, mean direction
        c = rng.standard_normal((clusters, centre_rank), dtype=np.float32) @ q[:centre_rank]
        self.centres = c / np.linalg.norm(c, axis=1, keepdims=True)
        self.basis = q[centre_rank:centre_rank + rank]
        self.mean = q[-1]
        self.alpha = float(np.sqrt(mean_cos / (1 - mean_cos))) if mean_cos > 0 else 0.0

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        labels = rng.integers(0, self.clusters, n)
        x = self.centres[labels]
        x += self.sub_noise * (rng.standard_normal((n, self.rank), dtype=np.float32) @ self.basis)
        x += self.iso_noise * rng.standard_normal((n, self.dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        x += self.alpha * self.mean
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x

    def database(self, n: int, progress: bool = True) -> np.ndarray:
        """``n`` database vectors, generated in chunks to bound temporary memory."""
        out = np.empty((n, self.dim), np.float32)
        rng = np.random.default_rng(self.seed + 1)
        for start in tqdm(range(0, n, CHUNK), desc="generating vectors", unit="chunk", disable=not progress):
            end = min(n, start + CHUNK)
            out[start:end] = self._draw(rng, end - start)
        return out

    def queries(self, n: int) -> np.ndarray:
        """``n`` query vectors near random cluster centres (independent of the database draw)."""
        return self._draw(np.random.default_rng(self.seed + 2), n)

    def describe(self) -> dict[str, Any]:
        return {"dim": self.dim, "clusters": self.clusters, "centre_rank": self.centre_rank, "rank": self.rank,
                "sub_noise": self.sub_noise, "iso_noise": self.iso_noise, "mean_cos": self.mean_cos,
                "seed": self.seed}


# --------------------------------------------------------------------------- measuring
def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int = K) -> float:
    """Mean share of the true top-k rows found in the returned top-k."""
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth)]))


def time_single_queries(index: Any, xq: np.ndarray, k: int = K, limit: int | None = None,
                        desc: str = "") -> tuple[list[float], np.ndarray]:
    """Search one query per call. Returns (latencies in ms, rows (limit, k))."""
    n = len(xq) if limit is None else min(limit, len(xq))
    rows = np.empty((n, k), np.int64)
    lat = []
    index.search(xq[:1], k)  # warm caches / lazy tables
    for i in tqdm(range(n), desc=desc or "searching", unit="q", leave=False, disable=not log.isEnabledFor(logging.INFO)):
        t0 = time.perf_counter()
        _, r = index.search(xq[i:i + 1], k)
        lat.append((time.perf_counter() - t0) * 1000)
        rows[i] = r[0]
    return lat, rows


def index_bytes(index: Any) -> int:
    """Serialised size of a FAISS index."""
    import faiss

    return int(faiss.serialize_index(index).nbytes)


class ScaleBenchmark:
    """Runs every index family over one synthetic data set.

    Args:
        n: Database size.
        queries: Number of queries (recall is averaged over all of them).
        threads: OpenMP threads for FAISS.
        hnsw: (M, efConstruction) pairs to build.
        ef_search: HNSW efSearch values.
        nprobe: IVF nprobe values.
        pq_m: IVF-PQ sub-quantiser counts (8-bit codes).
        refine_k: k_factor of the exact re-ranking stage on IVF-PQ (0 = no refine rows).
        nlist: IVF lists (default ~4·sqrt(n)).
        flat_latency_queries: Single-query timings of the exact index (it is slow at 1M).
        flat_curve: Database sizes at which exact search latency is also timed (prefixes of the data).
        data: The synthetic data generator.
        progress: Show tqdm bars.
    """

    def __init__(self, n: int, queries: int = 1000, threads: int = 2,
                 hnsw: list[tuple[int, int]] | None = None, ef_search: list[int] | None = None,
                 nprobe: list[int] | None = None, pq_m: list[int] | None = None, refine_k: int = 4,
                 nlist: int | None = None, flat_latency_queries: int = 200, flat_curve: list[int] | None = None,
                 data: SyntheticEmbeddings | None = None, progress: bool = True) -> None:
        self.n, self.nq, self.threads = n, queries, threads
        self.hnsw = hnsw if hnsw is not None else [(16, 40), (32, 80)]
        self.ef_search = ef_search if ef_search is not None else [32, 64, 128]
        self.nprobe = nprobe if nprobe is not None else [8, 32]
        self.pq_m = pq_m if pq_m is not None else [48, 96]
        self.refine_k = refine_k
        self.nlist = nlist or max(16, int(round(4 * math.sqrt(n))))
        self.flat_latency_queries = flat_latency_queries
        self.flat_curve = flat_curve if flat_curve is not None else [10_000, 50_000, 100_000, 200_000, 500_000, 1_000_000]
        self.data = data or SyntheticEmbeddings()
        self.progress = progress
        self.rows: list[dict[str, Any]] = []
        self.curve: list[dict[str, Any]] = []

    # ---- bookkeeping
    def _add_row(self, family: str, params: str, build_s: float, size: int, rss_delta: float,
                 recall: float, lat: list[float], extra: dict[str, Any] | None = None) -> None:
        row = {
            "index": family, "params": params, "build_s": round(build_s, 2), "size_mb": round(size / 2**20, 1),
            "bytes_per_vector": round(size / self.n, 1), "rss_delta_mb": round(rss_delta, 1),
            "recall@10": round(recall, 4), "p50_ms": round(pct(lat, 50), 3), "p95_ms": round(pct(lat, 95), 3),
            "latency_queries": len(lat), **(extra or {}),
        }
        self.rows.append(row)
        log.info("%s %s: recall@10 %.4f, p50 %.3f ms, build %.1f s, %.1f MB", family, params, recall,
                 row["p50_ms"], build_s, row["size_mb"])

    def _measure(self, build: Callable[[], Any]) -> tuple[Any, float, float]:
        """(index, build seconds, RSS growth MB) of ``build()``."""
        release_memory()
        before = rss_mb()
        t0 = time.perf_counter()
        index = build()
        seconds = time.perf_counter() - t0
        return index, seconds, rss_mb() - before

    # ---- the families
    def run(self) -> dict[str, Any]:
        """Build and measure everything; returns ``{"meta", "rows", "flat_curve"}``."""
        import faiss

        faiss.omp_set_num_threads(self.threads)
        t_start = time.perf_counter()
        load_start = _loadavg()
        rss0 = rss_mb()
        t0 = time.perf_counter()
        xb = self.data.database(self.n, progress=self.progress)
        xq = self.data.queries(self.nq)
        gen_s = time.perf_counter() - t0
        log.info("generated %d x %d vectors in %.1f s (RSS +%.0f MB)", self.n, self.data.dim, gen_s, rss_mb() - rss0)

        truth, stats = self._flat(xb, xq)
        self._flat_curve(xb, xq)
        for m, efc in self.hnsw:
            self._hnsw(xb, xq, truth, m, efc)
        if self.nprobe:
            self._ivf(xb, xq, truth)
        meta = {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "n": self.n, "queries": self.nq, "k": K, "threads": self.threads, "nlist": self.nlist,
            "data": {**self.data.describe(), **stats, "generate_s": round(gen_s, 1)},
            "faiss": faiss.__version__, "numpy": np.__version__, "python": platform.python_version(),
            "cpu": _cpu_name(), "cores": os.cpu_count(), "total_s": round(time.perf_counter() - t_start, 1),
            "loadavg_start": load_start, "loadavg_end": _loadavg(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default: active)"),
        }
        return {"meta": meta, "rows": self.rows, "flat_curve": self.curve}

    def _flat(self, xb: np.ndarray, xq: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        import faiss

        def build() -> Any:
            idx = faiss.IndexFlatIP(xb.shape[1])
            idx.add(xb)
            return idx

        index, build_s, rss = self._measure(build)
        t0 = time.perf_counter()
        scores, truth = index.search(xq, K)  # batched (BLAS): the ground truth
        batch_s = time.perf_counter() - t0
        lat, rows = time_single_queries(index, xq, limit=self.flat_latency_queries, desc="flat")
        assert np.array_equal(rows[:, 0], truth[: len(rows), 0]) or recall_at_k(rows, truth) > 0.99
        stats = {"mean_top1_cos": round(float(scores[:, 0].mean()), 4),
                 "mean_top10_cos": round(float(scores[:, -1].mean()), 4),
                 "mean_random_cos": round(float((xq[:200] @ xb[:2000].T).mean()), 4),
                 "flat_batch_search_s": round(batch_s, 2)}
        self._add_row("Flat (exact)", "IndexFlatIP", build_s, index_bytes(index), rss, 1.0, lat)
        self.curve.append({"n": self.n, "p50_ms": round(pct(lat, 50), 3), "p95_ms": round(pct(lat, 95), 3)})
        del index
        release_memory()
        return truth, stats

    def _flat_curve(self, xb: np.ndarray, xq: np.ndarray) -> None:
        """Exact single-query latency on prefixes of the data (where flat stops being cheap)."""
        import faiss

        for size in [s for s in self.flat_curve if s < self.n]:
            idx = faiss.IndexFlatIP(xb.shape[1])
            idx.add(xb[:size])
            lat, _ = time_single_queries(idx, xq, limit=min(len(xq), 200), desc=f"flat@{size}")
            self.curve.append({"n": size, "p50_ms": round(pct(lat, 50), 3), "p95_ms": round(pct(lat, 95), 3)})
            del idx
        self.curve.sort(key=lambda c: c["n"])
        release_memory()

    def _hnsw(self, xb: np.ndarray, xq: np.ndarray, truth: np.ndarray, m: int, ef_construction: int) -> None:
        import faiss

        def build() -> Any:
            idx = faiss.IndexHNSWFlat(xb.shape[1], m, faiss.METRIC_INNER_PRODUCT)
            idx.hnsw.efConstruction = ef_construction
            for start in tqdm(range(0, len(xb), CHUNK), desc=f"HNSW M={m} efC={ef_construction}", unit="chunk",
                              disable=not self.progress):
                idx.add(xb[start:start + CHUNK])
            return idx

        index, build_s, rss = self._measure(build)
        size = index_bytes(index)
        for ef in self.ef_search:
            index.hnsw.efSearch = ef
            lat, rows = time_single_queries(index, xq, desc=f"HNSW{m} ef{ef}")
            self._add_row("HNSW", f"M={m} efC={ef_construction} efSearch={ef}", build_s, size, rss,
                          recall_at_k(rows, truth), lat)
        del index
        release_memory()

    def _ivf(self, xb: np.ndarray, xq: np.ndarray, truth: np.ndarray) -> None:
        import faiss
        from faiss.contrib.ivf_tools import add_preassigned

        d, nlist = xb.shape[1], self.nlist
        rng = np.random.default_rng(7)
        n_train = min(len(xb), 64 * nlist)
        train = xb[np.sort(rng.choice(len(xb), n_train, replace=False))] if n_train < len(xb) else xb
        t0 = time.perf_counter()
        km = faiss.Kmeans(d, nlist, niter=10, spherical=True, seed=1234, max_points_per_centroid=64,
                          verbose=False)
        km.train(train)
        quantizer = faiss.IndexFlatIP(d)
        quantizer.add(km.centroids)
        kmeans_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        assign = np.empty(len(xb), np.int64)
        for start in tqdm(range(0, len(xb), CHUNK), desc=f"IVF assign (nlist={nlist})", unit="chunk",
                          disable=not self.progress):
            assign[start:start + CHUNK] = quantizer.search(xb[start:start + CHUNK], 1)[1][:, 0]
        assign_s = time.perf_counter() - t0
        shared_s = kmeans_s + assign_s
        log.info("IVF coarse k-means (%d lists, %d training points) %.1f s, assignment %.1f s",
                 nlist, n_train, kmeans_s, assign_s)
        extra = {"coarse_train_s": round(kmeans_s, 1), "assign_s": round(assign_s, 1)}

        variants: list[tuple[str, str, Callable[[], Any]]] = [
            ("IVF-Flat", f"nlist={nlist}",
             lambda: faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)),
            ("IVF-SQ8", f"nlist={nlist}",
             lambda: faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit,
                                                   faiss.METRIC_INNER_PRODUCT)),
        ]
        for m in self.pq_m:
            variants.append((f"IVF-PQ{m}", f"nlist={nlist} m={m}x8bit",
                             lambda m=m: faiss.IndexIVFPQ(quantizer, d, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)))

        for family, params, make in variants:
            def build() -> Any:
                idx = make()
                idx.train(train)  # the quantizer is trained already: only SQ ranges / PQ codebooks
                for start in range(0, len(xb), CHUNK):
                    add_preassigned(idx, xb[start:start + CHUNK], assign[start:start + CHUNK])
                return idx

            index, own_s, rss = self._measure(build)
            size = index_bytes(index)
            for nprobe in self.nprobe:
                index.nprobe = nprobe
                lat, rows = time_single_queries(index, xq, desc=f"{family} nprobe{nprobe}")
                self._add_row(family, f"{params} nprobe={nprobe}", shared_s + own_s, size, rss,
                              recall_at_k(rows, truth), lat, extra)
            if family.startswith("IVF-PQ") and self.refine_k and family == f"IVF-PQ{self.pq_m[0]}":
                self._refine(index, xb, xq, truth, family, params, shared_s + own_s, size, extra)
            del index
            release_memory()

    def _refine(self, base: Any, xb: np.ndarray, xq: np.ndarray, truth: np.ndarray, family: str, params: str,
                base_s: float, base_size: int, extra: dict[str, Any]) -> None:
        """IVF-PQ candidates re-scored exactly against the float vectors (k_factor × k candidates)."""
        import faiss

        def build() -> Any:
            flat = faiss.IndexFlatIP(xb.shape[1])
            flat.add(xb)
            idx = faiss.IndexRefine(base, flat)
            idx.k_factor = self.refine_k
            idx.own_fields = False
            self._keepalive = (base, flat)  # the C++ index borrows both
            return idx

        index, own_s, rss = self._measure(build)
        size = index_bytes(index)
        for nprobe in self.nprobe:
            base.nprobe = nprobe
            lat, rows = time_single_queries(index, xq, desc=f"{family}+refine nprobe{nprobe}")
            self._add_row(f"{family}+refine", f"{params} nprobe={nprobe} k_factor={self.refine_k}",
                          base_s + own_s, size, rss, recall_at_k(rows, truth), lat, extra)
        del index
        release_memory()


def _loadavg() -> float:
    """1-minute load average (other processes on the machine skew latencies)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return -1.0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# --------------------------------------------------------------------------- output
def to_markdown(result: dict[str, Any]) -> str:
    """The result as markdown: main table and exact-search latency curve."""
    meta = result["meta"]
    lines = [
        f"### n = {meta['n']:,} vectors × {meta['data']['dim']} d, {meta['queries']} queries, "
        f"{meta['threads']} threads ({meta['cpu']})",
        "",
        f"Data: {meta['data']['clusters']} clusters, mean cosine of the true top-1 {meta['data']['mean_top1_cos']}, "
        f"of the true 10th {meta['data']['mean_top10_cos']}, of unrelated pairs {meta['data']['mean_random_cos']}. "
        f"Total run {meta['total_s']:.0f} s; load average {meta['loadavg_start']} at start, {meta['loadavg_end']} at end.",
        "",
        "| index | parameters | recall@10 | p50 ms | p95 ms | build s | size MB | B/vector | RSS Δ MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['index']} | {r['params']} | {r['recall@10']:.3f} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | "
            f"{r['build_s']:.1f} | {r['size_mb']:.1f} | {r['bytes_per_vector']:.0f} | {r['rss_delta_mb']:.0f} |"
        )
    ivf = next((r for r in result["rows"] if "coarse_train_s" in r), None)
    if ivf:
        lines += ["", f"IVF build times include the shared coarse k-means ({ivf['coarse_train_s']} s, nlist "
                      f"{meta['nlist']}) and assignment of all vectors ({ivf['assign_s']} s)."]
    if result.get("flat_curve"):
        lines += ["", "Exact (flat) single-query latency by database size:", "",
                  "| n | p50 ms | p95 ms |", "|---:|---:|---:|"]
        lines += [f"| {c['n']:,} | {c['p50_ms']:.2f} | {c['p95_ms']:.2f} |" for c in result["flat_curve"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """CLI entry point (``python -m eval scale`` / ``python -m eval.scale``)."""
    p = argparse.ArgumentParser(prog="python -m eval scale", description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000, help="database vectors (default 100000)")
    p.add_argument("--queries", type=int, default=1000, help="queries (default 1000)")
    p.add_argument("--clusters", type=int, default=1000, help="gaussian clusters (default 1000)")
    p.add_argument("--sub-noise", type=float, default=0.09, help="within-cluster low-rank noise (default 0.09)")
    p.add_argument("--iso-noise", type=float, default=0.015, help="isotropic noise (default 0.015)")
    p.add_argument("--threads", type=int, default=2, help="FAISS OpenMP threads (default 2)")
    p.add_argument("--hnsw", default="16:40,32:80", help="HNSW M:efConstruction pairs ('' to skip)")
    p.add_argument("--ef-search", default="32,64,128", help="HNSW efSearch values")
    p.add_argument("--nprobe", default="8,32", help="IVF nprobe values ('' to skip IVF)")
    p.add_argument("--pq-m", default="48,96", help="IVF-PQ sub-quantisers ('' to skip PQ)")
    p.add_argument("--refine", type=int, default=4, help="k_factor of exact refine on the first IVF-PQ (0: none)")
    p.add_argument("--nlist", type=int, help="IVF lists (default 4*sqrt(n))")
    p.add_argument("--flat-latency-queries", type=int, default=200, help="single-query timings of exact search")
    p.add_argument("--flat-curve", default="10000,50000,100000,200000,500000,1000000",
                   help="sizes at which exact latency is timed ('' to skip)")
    p.add_argument("--omp-wait-policy", default="PASSIVE", choices=["PASSIVE", "ACTIVE", "default"],
                   help="OMP_WAIT_POLICY set before faiss loads (default PASSIVE: FAISS's OpenMP and its "
                        "OpenMP OpenBLAS otherwise spin against each other on few cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stores", default="", help="PassageStores to measure beside FAISS instead of the FAISS index "
                   "families: milvus:/tmp/bench.db (embedded), milvus://host:port (server), comma-separated")
    p.add_argument("--store-index", default="FLAT,HNSW", help="dense index types built in each store")
    p.add_argument("--no-tokens", action="store_true", help="stores: dense only, no BM25 sparse vectors")
    p.add_argument("--real", default="", help="index directories whose real e5 vectors measure recall "
                   "(comma-separated; the store benchmark; --n 0 skips the synthetic set)")
    p.add_argument("--latency-queries", type=int, default=200, help="stores: queries timed one by one")
    p.add_argument("--store-faiss", default="Flat,HNSW", help="stores: FAISS baselines measured beside them")
    p.add_argument("--json", help="write the result as JSON here")
    p.add_argument("--markdown", help="write the tables as markdown here")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.stores or args.real:
        return _stores_main(args)
    if args.n < 1000 or args.queries < 1:
        print("error: --n must be at least 1000 and --queries positive", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)  # also under `python -m eval`'s WARNING root
    if args.omp_wait_policy != "default":
        if "faiss" in sys.modules and os.environ.get("OMP_WAIT_POLICY") != args.omp_wait_policy:
            log.warning("faiss is already loaded: OMP_WAIT_POLICY=%s comes too late to apply", args.omp_wait_policy)
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy
    bench = ScaleBenchmark(
        args.n, args.queries, threads=args.threads, hnsw=parse_pairs(args.hnsw), ef_search=parse_ints(args.ef_search),
        nprobe=parse_ints(args.nprobe), pq_m=parse_ints(args.pq_m), refine_k=args.refine, nlist=args.nlist,
        flat_latency_queries=args.flat_latency_queries, flat_curve=parse_ints(args.flat_curve),
        data=SyntheticEmbeddings(clusters=args.clusters, sub_noise=args.sub_noise, iso_noise=args.iso_noise,
                                 seed=args.seed), progress=not args.quiet,
    )
    result = bench.run()
    _emit(args, result, to_markdown(result))
    return 0


def _stores_main(args: argparse.Namespace) -> int:
    """``--stores``/``--real``: the PassageStore benchmark (eval/scale_stores.py)."""
    from . import scale_stores

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in (__name__, scale_stores.__name__):
        logging.getLogger(name).setLevel(logging.WARNING if args.quiet else logging.INFO)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE" if args.omp_wait_policy == "default" else args.omp_wait_policy)
    result = scale_stores.run(
        args.n, args.queries, [s for s in args.stores.split(",") if s], tokens=not args.no_tokens,
        index_types=tuple(t.strip().upper() for t in args.store_index.split(",") if t.strip()),
        real=[d for d in args.real.split(",") if d], latency_queries=args.latency_queries, seed=args.seed,
        faiss_baselines=tuple(b.strip() for b in args.store_faiss.split(",") if b.strip()),
    )
    _emit(args, result, scale_stores.to_markdown(result["rows"]))
    return 0


def _emit(args: argparse.Namespace, result: dict[str, Any], text: str) -> None:
    """Print the markdown and write the requested files."""
    print(text)
    for path, content in ((args.json, json.dumps(result, ensure_ascii=False, indent=1) + "\n"), (args.markdown, text)):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(content, encoding="utf-8")
            print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
