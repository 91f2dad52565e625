"""Speed and memory benchmark on a corpus: index build, re-index, ask latency vs a BM25-only baseline."""
from __future__ import annotations

import logging
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from .gold import DEFAULT_CORPUS, DEFAULT_GOLD, load_gold
from .metrics import percentile
from .runner import run_meta

log = logging.getLogger(__name__)


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (``ru_maxrss``)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KB on Linux


def _time_each(fn: Any, questions: Sequence[str], desc: str, show: bool) -> list[float]:
    out = []
    for q in tqdm(questions, desc=desc, unit="q", disable=not show):
        t0 = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def run_bench(corpus_dir: str | Path = DEFAULT_CORPUS, gold_path: str | Path = DEFAULT_GOLD, warmup: int = 5,
              limit: int | None = None, embedder: Any = None, show_progress_bar: bool = True) -> dict[str, Any]:
    """Time a cold index build and an unchanged re-run, ask latency and the BM25-only baseline.

    The model is loaded before timing (conversion excluded); the index is built in a fresh
    temporary directory and removed afterwards.

    Args:
        corpus_dir: Corpus to index.
        gold_path: Gold file whose questions are timed.
        warmup: Questions asked before timing starts.
        limit: Time only the first N questions.
        embedder: Embedding model (default the offline e5-small).
        show_progress_bar: Show tqdm bars.

    Returns:
        ``{"overall": {...}, "meta": {...}}``.
    """
    from index.builder import build_index, load_index
    from index.embed import Embedder
    from qa import Assistant

    questions = [it.question for it in load_gold(gold_path)]
    if limit is not None:
        questions = questions[:limit]
    embedder = embedder or Embedder()
    _ = embedder.dim  # load (and if needed convert) the model before any timing
    tmp = Path(tempfile.mkdtemp(prefix="wenda-bench-"))
    try:
        index_dir = tmp / "index"
        t0 = time.perf_counter()
        cold = build_index(corpus_dir, index_dir, embedder, progress=show_progress_bar)
        index_build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = build_index(corpus_dir, index_dir, embedder, progress=False)
        reindex_s = time.perf_counter() - t0
        if not again.unchanged:
            log.warning("re-running the build on an unchanged corpus re-embedded %d passages", again.embedded)

        assistant = Assistant(load_index(index_dir, embedder), embedder)
        assistant.retriever.warm_up()
        for q in questions[:warmup]:
            assistant.ask(q, k=10)
        ask_ms = _time_each(lambda q: assistant.ask(q, k=10), questions, "bench ask", show_progress_bar)

        bm25, tokenize = assistant.index.bm25, assistant.index.text.tokenize
        assistant.index.text.cache_clear()  # the asks above tokenised these questions: time BM25 with its own tokenisation
        for q in questions[:warmup]:
            bm25.search(tokenize(q), 10)
        bm25_ms = _time_each(lambda q: bm25.search(tokenize(q), 10), questions, "bench bm25", show_progress_bar)

        p50, bm25_p50 = percentile(ask_ms, 50), percentile(bm25_ms, 50)
        overall = {
            "index_build_s": round(index_build_s, 2),
            "reindex_unchanged_s": round(reindex_s, 3),
            "latency_ms_p50": round(p50, 1),
            "latency_ms_p95": round(percentile(ask_ms, 95), 1),
            "bm25_latency_ms_p50": round(bm25_p50, 2),
            "latency_ratio_vs_bm25": round(p50 / bm25_p50, 1) if bm25_p50 else None,
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }
        meta = run_meta(assistant, name="bench", corpus=str(corpus_dir), gold=str(gold_path),
                        questions=len(questions), warmup=warmup, passages=cold.passages,
                        embedded=cold.embedded, reindex_unchanged=again.unchanged)
        meta["index_dir"] = None  # temporary, removed below
        return {"overall": overall, "meta": meta}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
