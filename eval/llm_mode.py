"""Evaluate the generated-answer mode on the gold set, and calibrate the verifier's threshold.

    python -m eval.llm_mode [--gold FILE] [--sample N | --limit N] [--model GGUF | (WENDA_LLM_URL set)] [--json OUT]
    python -m eval.llm_mode calibrate [--gold FILE] [--json OUT]

:func:`evaluate_llm` asks every question through :func:`qa.generate.generate` and scores the answer
with the same rules as the extractive evaluation (answer_hit, CMRC EM/F1 of the short answer,
citation precision, latency), adding ``llm_supported_rate`` (share of generated sentences that
pass the verifier), ``llm_answer_rate`` (answerable questions answered by the generated mode,
not by the fallback) and the extractive metrics of the same questions for comparison.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from .gold import DEFAULT_GOLD, TYPES, GoldItem, load_assistant, load_gold
from .metrics import aggregate, contains_evidence, group_by_type, percentile
from .runner import run_meta, score_gold_item

log = logging.getLogger(__name__)

LLM_KEYS = ("llm_supported_rate", "llm_answer_rate", "llm_sentences", "llm_ms_p50")


def select_subset(items: Sequence[GoldItem], n: int) -> list[GoldItem]:
    """``n`` items evenly spaced over the gold file (so each type keeps its share of the set)."""
    items = list(items)
    if n >= len(items):
        return items
    return [items[(i * len(items)) // n] for i in range(n)]


def _llm_overall(runs: list[dict[str, Any]]) -> dict[str, Any]:
    sentences = sum(r["llm_sentences"] for r in runs)
    supported = sum(r["llm_supported"] for r in runs)
    answerable = [r for r in runs if r["answerable"]]
    llm_ms = [r["llm_ms"] for r in runs if r["llm_ms"]]
    p50 = percentile(llm_ms, 50)
    return {
        "llm_supported_rate": round(supported / sentences, 4) if sentences else None,
        "llm_answer_rate": round(sum(r["mode"] == "llm" for r in answerable) / len(answerable), 4) if answerable else None,
        "llm_sentences": sentences,
        "llm_ms_p50": round(p50, 1) if p50 is not None else None,
    }


def evaluate_llm(assistant: Any, items: Sequence[GoldItem], k: int = 10, name: str = "gold",
                 show_progress_bar: bool = True, client: Any = None, max_tokens: int | None = None,
                 n_passages: int | None = None) -> dict[str, Any]:
    """Gold-set evaluation of the generated mode (the same result shape as the extractive evaluation).

    Args:
        assistant: A loaded :class:`qa.Assistant`.
        items: Gold questions (use :func:`select_subset` for a quicker run on 2 cores).
        k: Passages retrieved per question (as ``ask(q, k=k)``).
        name: Name recorded in the meta.
        show_progress_bar: Show a tqdm bar.
        client: :class:`qa.llm.LLMClient` (default: from ``WENDA_LLM_*``; none → every answer falls back).
        max_tokens: Completion budget (default :data:`qa.llm.DEFAULT_MAX_TOKENS`).
        n_passages: Passages in the prompt (default :data:`qa.llm.DEFAULT_PASSAGES`).

    Returns:
        ``{"overall", "by_type", "extractive", "items", "meta"}``; ``overall`` holds the usual
        metrics plus :data:`LLM_KEYS`, ``extractive`` the extractive overall of the same questions.
    """
    from qa import QuestionError
    from qa.generate import generate
    from qa.llm import DEFAULT_MAX_TOKENS, DEFAULT_PASSAGES

    kwargs = {"k": k, "client": client, "max_tokens": max_tokens or DEFAULT_MAX_TOKENS,
              "n_passages": n_passages or DEFAULT_PASSAGES}
    t_start = time.perf_counter()
    results, baseline, runs = [], [], []
    for item in tqdm(list(items), desc=f"llm eval {name}", unit="q", disable=not show_progress_bar):
        t0 = time.perf_counter()
        gen, error = None, None
        try:
            gen = generate(assistant, item.question, history=item.history or None, **kwargs)
        except QuestionError as exc:
            error = f"QuestionError: {exc}"
        ms = (time.perf_counter() - t0) * 1000
        answer = gen.answer if gen else None
        res = score_gold_item(item, answer, ms, error)
        base = score_gold_item(item, gen.extractive if gen else None, gen.extractive.elapsed_ms if gen and gen.extractive else 0.0)
        v = gen.verification if gen else None
        run = {
            "answerable": item.answerable,
            "mode": answer.mode if answer else "error",
            "llm_sentences": len(v.sentences) if v else 0,
            "llm_supported": len(v.kept) if v else 0,
            "llm_ms": gen.llm_ms if gen else 0.0,
        }
        res.details.update({
            "mode": run["mode"], "fallback": gen.fallback if gen else "error", "generated": gen.raw_text if gen else "",
            "llm_ms": round(run["llm_ms"], 1), "llm_sentences": run["llm_sentences"], "llm_supported": run["llm_supported"],
            "verdicts": [{"text": s.text, "action": s.action, "passage": s.passage, "similarity": s.similarity,
                          "reason": s.reason} for s in v.sentences] if v else [],
            "extractive_short_answer": gen.extractive.short_answer if gen and gen.extractive else "",
            "extractive_hit": base.answer_hit,
        })
        results.append(res)
        baseline.append(base)
        runs.append(run)
    overall = aggregate(results)
    overall.update(_llm_overall(runs))
    return {
        "overall": overall,
        "by_type": group_by_type(results, TYPES),
        "extractive": aggregate(baseline),
        "items": [r.to_dict() for r in results],
        "meta": run_meta(assistant, name=name, k=k, mode="llm", seconds=round(time.perf_counter() - t_start, 1),
                         llm_url=getattr(getattr(client, "config", None), "base", os.environ.get("WENDA_LLM_URL", "")),
                         max_tokens=kwargs["max_tokens"], n_passages=kwargs["n_passages"]),
    }


def llm_summary(result: dict[str, Any]) -> str:
    """Two-row comparison table (extractive vs generated) of the main answer metrics."""
    cols = ("n", "answer_hit", "em", "f1", "citation_precision", "latency_ms_p50")
    ext, llm = result.get("extractive", {}), result["overall"]

    def fmt(v: Any) -> str:
        if v is None:
            return "—"
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 10 else str(round(v))
        return str(v)

    lines = ["mode        " + "  ".join(c.rjust(10) for c in cols)]
    lines.append("extractive  " + "  ".join(fmt(ext.get(c)).rjust(10) for c in cols))
    lines.append("llm         " + "  ".join(fmt(llm.get(c)).rjust(10) for c in cols))
    lines.append("  ".join(f"{k}={fmt(llm.get(k))}" for k in LLM_KEYS))
    return "\n".join(lines)


# ---------------------------------------------------------------------------- calibration
_QWORD = re.compile(r"(?:是)?(?:多少|几)[个张家所项条名位人次元亿万千百公里平方米吨台座辆户套场倍件处栋间床天年]*|什么时候|哪一年|哪些|哪个|哪里|哪位|哪家|哪所|哪项|什么|谁|何时|第几位?")


def claim_from(question: str, answer: str) -> str:
    """A declarative sentence from a gold question and its answer (增加到了多少家 → 增加到了8726家)."""
    q = question.strip().rstrip("?？")
    if re.search(r"[A-Za-z]", q) and not re.search(r"[\u4e00-\u9fff]", q):
        return f"{q}: {answer}."
    m = _QWORD.search(q)
    if m:
        return q[:m.start()] + answer + q[m.end():] + "。"
    return f"{q}：{answer}。"


def calibrate_threshold(assistant: Any, items: Sequence[GoldItem], quantile: float = 5.0) -> dict[str, Any]:
    """Similarity of gold claims to their evidence passage (positives) and to wrong passages (negatives).

    The positive of an item is the claim's best-sentence similarity to the passage holding the gold
    evidence; its negative, that to the highest-ranked retrieved passage without the evidence.
    Per language (Chinese claims; English claims matched against Chinese passages), the threshold
    is the ``quantile``-th percentile of the positives, rounded down to 0.01. The whole check
    (facts + similarity) is then run on the same claims at those thresholds.
    """
    from qa.verify import Verifier

    verifier = Verifier(assistant.embedder)
    passages = assistant.index.passages
    rows: list[dict[str, Any]] = []
    for item in items:
        if not item.answerable or not item.answers:
            continue
        gold = [p for p in passages if any(contains_evidence(p.text, e) for e in item.evidence)]
        if not gold:
            continue
        _, _, _, hits, _ = assistant.retrieve(item.question, k=10)
        wrong = next((h.passage for h in hits if not any(contains_evidence(h.passage.text, e) for e in item.evidence)), None)
        claim = claim_from(item.question, item.answers[0])
        qv = assistant.embedder.encode_queries([claim])[0]
        vecs = verifier._sentence_vectors(gold[:1] + ([wrong] if wrong else []))
        rows.append({"lang": item.lang, "claim": claim, "question": item.question,
                     "gold": gold[0], "wrong": wrong, "pos": float((vecs[0][1] @ qv).max()),
                     "neg": float((vecs[1][1] @ qv).max()) if wrong is not None else None})
    out: dict[str, Any] = {}
    for lang in ("zh", "en"):
        group = [r for r in rows if r["lang"] == lang]
        pos = [r["pos"] for r in group]
        neg = [r["neg"] for r in group if r["neg"] is not None]
        if not pos:
            continue
        threshold = int((percentile(pos, quantile) or 0.0) * 100) / 100
        if lang == "zh":
            verifier.threshold = threshold
        else:
            verifier.threshold_en = threshold
        out[lang] = {
            "n": len(pos), "threshold": threshold,
            "pos_median": round(percentile(pos, 50) or 0, 4), "neg_median": round(percentile(neg, 50) or 0, 4),
            "similarity_keeps_gold": round(sum(x >= threshold for x in pos) / len(pos), 4),
            "similarity_rejects_wrong": round(sum(x < threshold for x in neg) / len(neg), 4) if neg else None,
        }
    for lang, stats in out.items():
        group = [r for r in rows if r["lang"] == lang]
        keeps = [verifier.verify(r["claim"] + "[1]", [r["gold"]], question=r["question"]).sentences[0].supported
                 for r in group]
        rejects = [not verifier.verify(r["claim"] + "[1]", [r["wrong"]], question=r["question"]).sentences[0].supported
                   for r in group if r["wrong"] is not None]
        stats["verifier_keeps_gold"] = round(sum(keeps) / len(keeps), 4)
        stats["verifier_rejects_wrong"] = round(sum(rejects) / len(rejects), 4) if rejects else None
    return out


# ---------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    """``python -m eval.llm_mode [calibrate] ...``"""
    argv = list(argv or [])
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if argv and argv[0] == "calibrate":
        p = argparse.ArgumentParser(prog="python -m eval.llm_mode calibrate", description="Calibrate the verifier threshold.")
        p.add_argument("--gold", default=str(DEFAULT_GOLD))
        p.add_argument("--index")
        p.add_argument("--json")
        args = p.parse_args(argv[1:])
        out = calibrate_threshold(load_assistant(args.index), load_gold(args.gold))
        print(json.dumps(out, ensure_ascii=False, indent=1))
        if args.json:
            Path(args.json).write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return 0
    p = argparse.ArgumentParser(prog="python -m eval.llm_mode", description="Evaluate the generated-answer mode.")
    p.add_argument("--gold", default=str(DEFAULT_GOLD))
    p.add_argument("--index")
    p.add_argument("--limit", type=int, help="only the first N questions")
    p.add_argument("--sample", type=int, help="N questions spread over the types")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--model", help="GGUF to serve locally when WENDA_LLM_URL is unset")
    p.add_argument("--json", help="write the full result here")
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    items = load_gold(args.gold)
    if args.sample:
        items = select_subset(items, args.sample)
    elif args.limit:
        items = items[:args.limit]
    assistant = load_assistant(args.index)
    server = None
    client = None
    if not os.environ.get("WENDA_LLM_URL") and args.model:
        from qa.llm import LLMClient, LLMConfig
        from qa.llm_server import LocalLLMServer

        server = LocalLLMServer(args.model).start()
        client = LLMClient(LLMConfig(server.url))
    try:
        result = evaluate_llm(assistant, items, k=args.k, name=Path(args.gold).stem, show_progress_bar=not args.quiet,
                              client=client, max_tokens=args.max_tokens)
    finally:
        if server is not None:
            server.stop()
    print(llm_summary(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
