"""Ablation: the same index, one retrieval/answering technique added at a time.

    python -m eval ablation [--gold FILE] [--squad FILE] [--json OUT] [--markdown OUT]

Each row switches on one more technique (weights of qa/retrieval.py's RetrievalConfig, the
re-ranker, then the answerer: rules, the hybrid without and with the reader's check of the rules'
figures, the trained reader with its uncalibrated no-answer score, the reader with the fitted not-found
model); the gold set's test split is scored with the strict
metrics, the SQuAD-format file (CMRC 2018 trial by default) with open-retrieval metrics on an index
of its paragraphs built once.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
SHOW = ("recall@1", "recall@5", "short_answer_hit", "confident_wrong_rate", "f1", "refusal_accuracy",
        "false_refusal_rate")


def configurations() -> list[tuple[str, dict[str, float], bool, str]]:
    """(name, RetrievalConfig overrides, re-rank?, answerer) in the order techniques are added.

    The reader rows need trained reader weights (``python -m qa.reader train``); without them they are
    left out with a logged warning.
    """
    from qa.reader import DEFAULT_WEIGHTS

    rows = [
        ("BM25 only", {"w_dense": 0, "w_sent": 0}, False, "rules"),
        ("dense only (passages)", {"w_bm25": 0, "w_sent": 0}, False, "rules"),
        ("+ BM25 fusion (RRF)", {"w_sent": 0}, False, "rules"),
        ("+ sentence channel", {}, False, "rules"),
        ("+ feature re-ranking, rules answerer", {}, True, "rules"),
        ("hybrid answerer (reader for what/which/who), figures unchecked", {}, True, "hybrid-unchecked"),
        ("+ reader check of the rules' figures (default)", {}, True, "hybrid"),
        ("reader answerer, uncalibrated no-answer", {}, True, "reader-raw"),
        ("reader answerer + calibration", {}, True, "reader"),
    ]
    if not DEFAULT_WEIGHTS.is_file():
        log.warning("no reader weights at %s: the reader rows are left out", DEFAULT_WEIGHTS)
        rows = [r for r in rows if r[3] == "rules"]
    return rows


def _answerer(name: str, embedder: Any, cache: dict[str, Any]) -> Any:
    """One answerer per kind for the whole run (the reader loads once)."""
    from qa.answerers import make_answerer
    from qa.answerers.hybrid import HybridAnswerer
    from qa.answerers.trained import DEFAULT_REFUSAL, ReaderAnswerer

    if name not in cache:
        if name == "reader-raw":
            cache[name] = ReaderAnswerer(embedder, refusal=DEFAULT_REFUSAL)
        elif name == "hybrid-unchecked":
            cache[name] = HybridAnswerer(embedder, verify_below=0.0)
        else:
            cache[name] = make_answerer(name, embedder)
    return cache[name]


def _assistant(index: Any, embedder: Any, overrides: dict[str, float], rerank: bool, answerer: Any = None) -> Any:
    from qa import Assistant
    from qa.rerank import FEATURES, RerankWeights
    from qa.retrieval import RetrievalConfig

    config = RetrievalConfig(**overrides)
    if rerank:
        weights = None  # the fitted weights when they match the index (qa.profile), else the defaults
    else:
        only_fused = {k: (1.0 if k == "fused" else 0.0) for k in FEATURES}
        weights = RerankWeights(dict(only_fused), dict(only_fused))
    return Assistant(index, embedder, weights=weights, config=config, answerer=answerer)


def run(gold: Path, squad: Path | None) -> dict[str, Any]:
    """Score every configuration; returns {"gold": {name: overall}, "squad": {name: overall}}."""
    from index.builder import build_index, load_index
    from index.embed import Embedder

    from .gold import load_assistant, load_gold
    from .runner import GoldEvaluator
    from .squad import SquadEvaluator, load_squad, write_corpus

    embedder = Embedder()
    base = load_assistant(embedder=embedder)
    items = load_gold(gold)
    out: dict[str, Any] = {"gold": {}, "squad": {}}
    answerers: dict[str, Any] = {}
    for name, overrides, rerank, kind in configurations():
        a = _assistant(base.index, embedder, overrides, rerank, _answerer(kind, embedder, answerers))
        out["gold"][name] = GoldEvaluator(items, name=name, show_progress_bar=False).evaluate(a)["overall"]
        log.info("gold %s: %s", name, out["gold"][name])
    if squad:
        data = load_squad(squad)
        tmp = Path(tempfile.mkdtemp(prefix="wenda-ablation-"))
        try:
            build_index(write_corpus(data, tmp / "corpus"), tmp / "index", embedder, progress=True)
            index = load_index(tmp / "index", embedder)
            for name, overrides, rerank, kind in configurations():
                a = _assistant(index, embedder, overrides, rerank, _answerer(kind, embedder, answerers))
                out["squad"][name] = SquadEvaluator(data.questions, name=name, show_progress_bar=False).evaluate(a)["overall"]
                log.info("squad %s: %s", name, out["squad"][name])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def to_markdown(result: dict[str, Any]) -> str:
    """Tables of the main metrics per configuration."""
    lines = []
    for part, title in (("gold", "Gold set, test split (data/gold/taiyuan_gold.jsonl)"), ("squad", "CMRC 2018 trial, open retrieval")):
        rows = result.get(part) or {}
        if not rows:
            continue
        lines += [f"#### {title}", "", "| configuration | " + " | ".join(SHOW) + " |", "|---" * (len(SHOW) + 1) + "|"]
        for name, m in rows.items():
            cells = ["—" if m.get(k) is None else f"{m[k]:.3f}" for k in SHOW]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    p = argparse.ArgumentParser(prog="python -m eval ablation", description=__doc__.splitlines()[0])
    p.add_argument("--gold", default=str(ROOT / "data" / "gold" / "taiyuan_gold.jsonl"))
    p.add_argument("--squad", default=str(ROOT / "data" / "datasets" / "cmrc2018" / "cmrc2018_trial.json"),
                   help="SQuAD-format file ('' to skip)")
    p.add_argument("--json", help="write the result as JSON")
    p.add_argument("--markdown", help="write the tables as markdown")
    args = p.parse_args(argv)
    result = run(Path(args.gold), Path(args.squad) if args.squad else None)
    text = to_markdown(result)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    if args.markdown:
        Path(args.markdown).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
