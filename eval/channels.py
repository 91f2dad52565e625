"""Per-query cost of the dense channels at scale: the retriever's code on synthetic vectors.

    python -m eval channels --sizes 50000,100000 [--queries 100] [--json OUT]

For each corpus size (passages, ≈ ``--sentences-per-passage`` sentences each) this times, one
query per call, the code paths of :class:`qa.retrieval.HybridRetriever` that grow with the corpus:

* the sentence channel as shipped (``LocalPassageStore.sentence_search``, what the retriever's
  sentence channel calls on the default store: one matrix-vector product
  over all sentence vectors, scatter-max into passages, top-n selection), the product alone,
  and the same sentences searched by a single-query FAISS flat index (the alternative);
* passage search by FAISS flat (k = 50);
* passage search with a document filter: the previous way (ask for all n rows, filter
  afterwards) and the shipped one (the mask pushed down into FAISS, k = 50).

Figures are medians over ``--queries`` queries, printed with ratios against the alternative
measured in the same run. Vectors come from :class:`eval.scale.SyntheticEmbeddings`.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def _median_ms(fn: Any, queries: np.ndarray) -> float:
    fn(queries[0])  # warm-up
    out = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - t0) * 1000)
    return float(np.median(out))


def _fake_index(n: int, per: int, data: Any, store_cls: Any, progress: bool) -> SimpleNamespace:
    """Just enough of a LoadedIndex for the default store's dense channels."""
    rng = np.random.default_rng(7)
    counts = rng.integers(1, 2 * per, n)  # 1 .. 2·per-1 sentences, mean ≈ per
    rows = np.repeat(np.arange(n), counts)
    m = len(rows)
    sentences = np.zeros((m, 3), np.int64)
    sentences[:, 0] = rows
    sentences[:, 1] = np.arange(m)  # offsets only need to be distinct here
    sentences[:, 2] = np.arange(m) + 1
    sent_vecs = data.database(m, progress=progress)
    # A passage vector is the normalised mean of its sentences (what a paragraph embedding resembles).
    vecs = np.zeros((n, sent_vecs.shape[1]), np.float32)
    np.add.at(vecs, rows, sent_vecs)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    faiss_store = store_cls("flat")
    faiss_store.index(vecs)
    passages = [SimpleNamespace(id=f"p{i}", year=None, years_mentioned=[]) for i in range(n)]
    return SimpleNamespace(passages=passages, sentences=sentences, sentence_vectors=sent_vecs, vectors=vecs,
                           faiss=faiss_store)


def measure(n: int, queries: int = 100, per: int = 4, candidates: int = 50, filter_share: float = 0.02,
            progress: bool = True) -> dict[str, Any]:
    """Time the channels at one corpus size (see the module docstring)."""
    from index.stores import BM25Store, FaissStore
    from index.stores.local_store import LocalPassageStore

    from .scale import SyntheticEmbeddings

    data = SyntheticEmbeddings()
    index = _fake_index(n, per, data, FaissStore, progress)
    sent_passage = index.sentences[:, 0]
    store = LocalPassageStore([p.id for p in index.passages], ["d"] * n, [0] * n, index.faiss, BM25Store(),
                              sent_passage, index.sentence_vectors)
    xq = data.queries(queries)

    def shipped(q: np.ndarray) -> None:
        store.sentence_search(q[None, :], candidates)

    sent_store = FaissStore("flat")
    sent_store.index(index.sentence_vectors)

    def faiss_sentences(q: np.ndarray) -> None:
        sent_store.search(q[None, :], candidates * per * 2)

    # A document filter: a contiguous block of passages (one document's worth).
    allowed = np.zeros(n, bool)
    allowed[: max(1, int(n * filter_share))] = True

    def filter_after(q: np.ndarray) -> None:
        scores, rows = index.faiss.search(q[None, :], n)
        keep = allowed[rows[0]]
        _ = rows[0][keep][:candidates]

    def filter_pushed(q: np.ndarray) -> None:
        index.faiss.search(q[None, :], candidates, allowed=allowed)

    row = {
        "passages": n,
        "sentences": int(len(sent_passage)),
        "sentence_channel_ms": round(_median_ms(shipped, xq), 2),
        "sentence_matvec_ms": round(_median_ms(lambda q: index.sentence_vectors @ q, xq), 2),
        "sentence_faiss_flat_ms": round(_median_ms(faiss_sentences, xq), 2),
        "passage_faiss_flat_ms": round(_median_ms(lambda q: index.faiss.search(q[None, :], candidates), xq), 2),
        "filter_after_ms": round(_median_ms(filter_after, xq), 2),
        "filter_pushed_ms": round(_median_ms(filter_pushed, xq), 2),
    }
    row["sentence_vs_faiss"] = round(row["sentence_faiss_flat_ms"] / row["sentence_channel_ms"], 1)
    row["filter_speedup"] = round(row["filter_after_ms"] / row["filter_pushed_ms"], 1)
    return row


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as a markdown table."""
    lines = ["| passages | sentences | sentence channel (shipped) | of which mat-vec | same sentences by FAISS flat "
             "| FAISS / shipped | passage FAISS flat k=50 | filter after search (k = n) | filter pushed down | ratio |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['passages']:,} | {r['sentences']:,} | {r['sentence_channel_ms']} ms | {r['sentence_matvec_ms']} ms "
                     f"| {r['sentence_faiss_flat_ms']} ms | {r['sentence_vs_faiss']}× | {r['passage_faiss_flat_ms']} ms "
                     f"| {r['filter_after_ms']} ms | {r['filter_pushed_ms']} ms | {r['filter_speedup']}× |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point (``python -m eval channels``)."""
    p = argparse.ArgumentParser(prog="python -m eval channels", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="50000,100000", help="passage counts, comma-separated")
    p.add_argument("--queries", type=int, default=100, help="timed queries per size")
    p.add_argument("--sentences-per-passage", type=int, default=4)
    p.add_argument("--threads", type=int, default=2, help="torch/faiss threads")
    p.add_argument("--json", help="write the rows as JSON here")
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        print(f"error: --sizes must be integers separated by commas, got {args.sizes!r}", file=sys.stderr)
        return 2
    if not sizes or min(sizes) < 100 or args.queries < 1:
        print("error: sizes must be at least 100 and --queries positive", file=sys.stderr)
        return 2
    import faiss

    faiss.omp_set_num_threads(args.threads)
    rows = [measure(n, args.queries, args.sentences_per_passage, progress=not args.quiet) for n in sizes]
    print(to_markdown(rows))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
