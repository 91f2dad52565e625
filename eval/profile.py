"""Profile the ask path with pyinstrument and say which stage the time goes to.

    python -m eval profile [--index DIR] [--gold FILE] [--limit N] [--out eval/reports/profile_ask.txt]

Loads the assistant once (model, index, warm-up: as the app does), asks every gold question
once untimed, then asks them again under pyinstrument's sampling profiler. Prints a stage table
(each sampled frame's own time goes to the nearest enclosing stage function, so nested stages
are not counted twice) and the call tree, and writes both to ``--out``. pyinstrument is a
development dependency (``requirements-dev.txt``).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

from .gold import DEFAULT_GOLD, load_assistant, load_gold

log = logging.getLogger(__name__)

# (class name or None, function name) → stage label. The innermost match owns a frame's time.
STAGES: dict[tuple[str | None, str], str] = {
    ("Embedder", "encode_queries"): "query encoding (e5 forward pass)",
    ("HybridRetriever", "_dense"): "dense passage search (FAISS)",
    ("HybridRetriever", "_sentences"): "sentence channel (mat-vec over sentences)",
    ("BM25Store", "search"): "BM25 (bm25s)",
    ("LexicalStore", "search"): "BM25 (bm25s)",
    ("HybridRetriever", "analyze"): "question analysis (jieba, years)",
    ("HybridRetriever", "search"): "fusion and year features",
    ("Reranker", "rerank"): "re-ranking features",
    (None, "rank_sentences"): "answer: sentence scoring",
    (None, "extract_short"): "answer: short-answer extraction",
    (None, "mmr_summary"): "answer: MMR summary",
    ("Assistant", "refusal_features"): "not-found model",
    ("Assistant", "confidence"): "not-found model",
    (None, "rewrite"): "follow-up rewriting",
    ("Assistant", "ask"): "other (validation, filters, answer assembly)",
}


def stage_times(root: Any) -> dict[str, float]:
    """Seconds per stage from a pyinstrument frame tree (exclusive: nested stages are separate)."""
    out: dict[str, float] = {}
    stack = [(root, "outside ask")]
    while stack:
        frame, stage = stack.pop()
        label = STAGES.get((frame.class_name, frame.function)) or STAGES.get((None, frame.function))
        stage = label or stage
        own = frame.time - sum(c.time for c in frame.children)
        out[stage] = out.get(stage, 0.0) + max(own, 0.0)
        stack.extend((c, stage) for c in frame.children)
    return out


def stage_table(times: dict[str, float], n_questions: int) -> str:
    """Markdown table: stage, ms per question, share of the ask time."""
    total = sum(v for k, v in times.items() if k != "outside ask") or 1.0
    lines = ["| stage | ms per question | share |", "|---|---:|---:|"]
    for stage, secs in sorted(times.items(), key=lambda kv: -kv[1]):
        if stage == "outside ask" or secs <= 0:
            continue
        lines.append(f"| {stage} | {secs / n_questions * 1000:.2f} | {secs / total:.1%} |")
    lines.append(f"| **total** | **{total / n_questions * 1000:.2f}** | 100% |")
    return "\n".join(lines)


def run_profile(index_dir: str | None = None, gold_path: str | Path = DEFAULT_GOLD, limit: int | None = None,
                interval: float = 0.0005, assistant: Any = None) -> tuple[str, str, dict[str, Any]]:
    """Profile ``Assistant.ask`` over the gold questions.

    Args:
        index_dir: Index directory (default: the bundled corpus's, built when missing).
        gold_path: Questions to ask.
        limit: Only the first N questions.
        interval: Sampling interval in seconds.
        assistant: An already loaded Assistant (``index_dir`` is then ignored).

    Returns:
        ``(stage table markdown, pyinstrument call tree text, figures)``.
    """
    try:
        from pyinstrument import Profiler
    except ImportError as exc:  # a dev dependency
        raise RuntimeError("pyinstrument is not installed: pip install -r requirements-dev.txt") from exc

    questions = [it.question for it in load_gold(gold_path)]
    if limit is not None:
        questions = questions[:limit]
    if not questions:
        raise ValueError(f"no questions in {gold_path}")
    assistant = assistant or load_assistant(index_dir)
    assistant.retriever.warm_up()
    for q in questions:  # untimed pass: the profile shows the steady state, not first-use costs
        assistant.ask(q, k=10)
    profiler = Profiler(interval=interval)
    t0 = time.perf_counter()
    profiler.start()
    for q in questions:
        assistant.ask(q, k=10)
    profiler.stop()
    wall = time.perf_counter() - t0
    session = profiler.last_session
    times = stage_times(session.root_frame())
    table = stage_table(times, len(questions))
    tree = profiler.output_text(unicode=True, color=False, show_all=False)
    figures = {"questions": len(questions), "wall_ms_per_question": round(wall / len(questions) * 1000, 2),
               "samples": session.sample_count, "stages_ms": {k: round(v / len(questions) * 1000, 3)
                                                              for k, v in times.items()}}
    return table, tree, figures


def main(argv: list[str] | None = None) -> int:
    """CLI entry point (``python -m eval profile``)."""
    p = argparse.ArgumentParser(prog="python -m eval profile", description=__doc__.splitlines()[0])
    p.add_argument("--index", help="index directory (default data/index/taiyuan, built when missing)")
    p.add_argument("--gold", default=str(DEFAULT_GOLD), help="questions to ask (gold .jsonl)")
    p.add_argument("--limit", type=int, help="only the first N questions")
    p.add_argument("--out", help="write the stage table and call tree here")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        print(f"error: --limit must be positive, got {args.limit}", file=sys.stderr)
        return 2
    try:
        table, tree, fig = run_profile(args.index, args.gold, args.limit)
    except (RuntimeError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    head = (f"ask path, {fig['questions']} gold questions after one untimed pass; "
            f"{fig['wall_ms_per_question']} ms per question under the profiler ({fig['samples']} samples)")
    text = f"{head}\n\n{table}\n\n{tree}"
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
