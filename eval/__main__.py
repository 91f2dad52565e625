"""Command line of the evaluation harness.

    python -m eval [--gold FILE] [--split test|fit|all] [--index DIR] [--json OUT] [--report OUT.md] [--check T.json]
    python -m eval validate FILE [--corpus DIR]
    python -m eval split FILE            (give new items a sealed fit/test split; existing ones never move)
    python -m eval fit [--gold FILE]     (fit re-ranking weights and the not-found model on the fit split)
    python -m eval thresholds --result eval/reports/taiyuan_gold.json [--out eval/thresholds.json]
    python -m eval squad --data FILE.json [--questions FILE2.json] [--json OUT] [--report OUT.md] [--limit N]
    python -m eval bench [--json OUT] [--corpus DIR] [--gold FILE] [--limit N]
    python -m eval feedback [--file PATH] [--drafts OUT.jsonl]   (the app's 👍/👎; 👎 → draft gold items)

Exit codes: 0 success, 1 failed check (validation or thresholds), 2 bad input (missing file, bad JSON).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from .gold import (
    DEFAULT_CORPUS,
    DEFAULT_GOLD,
    GoldFormatError,
    assign_splits,
    load_assistant,
    load_gold,
    validate_gold,
)
from .metrics import ThresholdError, check_thresholds
from .report import summary_table, write_markdown

SUBCOMMANDS = ("gold", "validate", "split", "fit", "thresholds", "squad", "bench", "ablation", "scale", "loadtest", "channels",
               "profile", "stability", "feedback")


class UsageError(Exception):
    """Bad input: the message is printed and the exit code is 2."""


def _write_json(data: Any, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def _read_thresholds(path: str | None) -> dict | None:
    if not path:
        return None
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"thresholds file {p} does not exist")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UsageError(f"thresholds file {p} is not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    try:
        check_thresholds({"overall": {}, "by_type": {}}, data)  # shape check before the long run
    except ThresholdError as exc:
        raise UsageError(f"thresholds file {p}: {exc}") from exc
    return data


def _finish(result: dict, args: argparse.Namespace, thresholds: dict | None, title: str) -> int:
    print(summary_table(result))
    if args.json:
        _write_json(result, args.json)
    if args.report:
        print(f"wrote {write_markdown(result, args.report, title=title)}")
    if thresholds is not None:
        failures = check_thresholds(result, thresholds)
        if failures:
            print(f"FAILED {len(failures)} threshold(s) of {args.check}:", file=sys.stderr)
            for f in failures:
                print(f"  {f}", file=sys.stderr)
            return 1
        print(f"all thresholds of {args.check} met")
    return 0


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return n


def cmd_gold(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m eval", description="Evaluate the Assistant on a gold set.")
    p.add_argument("--gold", default=str(DEFAULT_GOLD), help="gold .jsonl (default data/gold/taiyuan_gold.jsonl)")
    p.add_argument("--index", help="index directory (default data/index/<corpus name>, built or updated first)")
    p.add_argument("--corpus", help="corpus folder the gold set is about (default the bundled one)")
    p.add_argument("--json", help="write the full result (overall, by_type, items, meta) here")
    p.add_argument("--report", help="write a markdown report here (+ a .png chart beside it)")
    p.add_argument("--check", help="thresholds JSON; exit 1 when a metric misses its bound")
    p.add_argument("--limit", type=_positive, help="evaluate only the first N questions")
    p.add_argument("--k", type=_positive, default=10, help="passages per question (default 10)")
    p.add_argument("--split", choices=("test", "fit", "all"), default="test",
                   help="split reported at the top level and checked by --check (default test; all splits are scored)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--mode", choices=("extractive", "llm"), default="extractive",
                   help="llm: generated + verified answers via WENDA_LLM_URL (adds llm_supported_rate)")
    args = p.parse_args(argv)
    thresholds = _read_thresholds(args.check)
    try:
        items = load_gold(args.gold)
    except GoldFormatError as exc:
        raise UsageError(str(exc)) from exc
    if args.limit:
        items = items[:args.limit]

    from index.builder import IndexLoadError

    from .runner import GoldEvaluator

    if args.index and not Path(args.index).is_dir():
        raise UsageError(f"index directory {args.index} does not exist")
    try:
        assistant = load_assistant(args.index, corpus=args.corpus)
    except (IndexLoadError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from exc
    if args.mode == "llm":
        from .llm_mode import evaluate_llm

        result = evaluate_llm(assistant, items, k=args.k, name=Path(args.gold).stem, show_progress_bar=not args.quiet)
    else:
        evaluator = GoldEvaluator(items, k=args.k, name=Path(args.gold).stem, show_progress_bar=not args.quiet,
                                  split=args.split)
        result = evaluator.evaluate(assistant)
    result["meta"]["gold"] = str(args.gold)
    return _finish(result, args, thresholds, title=f"Wenda evaluation — {Path(args.gold).stem}")


def cmd_validate(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m eval validate", description="Check a gold file against its corpus.")
    p.add_argument("file", help="gold .jsonl")
    p.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="folder of the documents named in 'doc'")
    args = p.parse_args(argv)
    try:
        report = validate_gold(args.file, args.corpus)
    except GoldFormatError as exc:
        raise UsageError(str(exc)) from exc
    types = ", ".join(f"{t} {n}" for t, n in report.by_type.items())
    langs = ", ".join(f"{lang} {n}" for lang, n in report.by_lang.items())
    counts = f" ({types}; {langs})" if types else ""
    print(f"{report.path}: {report.n} items{counts}")
    if report.ok:
        print("OK: schema, unique ids, evidence in documents, answers in evidence")
        return 0
    print(f"FAILED: {len(report.failures)} problem(s)", file=sys.stderr)
    for f in report.failures:
        print(f"  {f}", file=sys.stderr)
    return 1


def cmd_split(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m eval split",
                                description="Assign the sealed fit/test split to gold items that have none.")
    p.add_argument("file", nargs="?", default=str(DEFAULT_GOLD), help="gold .jsonl (rewritten in place, atomically)")
    args = p.parse_args(argv)
    try:
        added = assign_splits(args.file)
        items = load_gold(args.file)
    except GoldFormatError as exc:
        raise UsageError(str(exc)) from exc
    total = {s: sum(1 for it in items if it.split == s) for s in ("fit", "test")}
    print(f"{args.file}: assigned fit {added['fit']}, test {added['test']}; now fit {total['fit']}, test {total['test']}")
    return 0


GATE_MIN = ("recall@1", "recall@5", "short_answer_hit", "list_recall", "f1", "refusal_accuracy", "citation_precision")
GATE_MAX = ("confident_wrong_rate", "false_refusal_rate")
GATE_TYPE_MIN = ("recall@5", "short_answer_hit", "refusal_accuracy")


def derive_thresholds(result: dict[str, Any], margin: float = 0.03) -> dict[str, Any]:
    """The CI gate from a measured result (its reported split): minimums = measured − margin, maximums =
    measured + margin; per type and language the margin is at least one question's share, so one
    borderline item cannot fail the gate."""
    def lo(v: float, m: float) -> float:
        return max(0.0, round(v - m - 0.005, 2))

    def hi(v: float, m: float) -> float:
        return min(1.0, round(v + m + 0.005, 2))

    out: dict[str, Any] = {"overall": {}, "by_type": {}, "max": {"overall": {}, "by_type": {}}}
    o = result["overall"]
    out["overall"] = {k: lo(o[k], margin) for k in GATE_MIN if o.get(k) is not None}
    out["max"]["overall"] = {k: hi(o[k], margin) for k in GATE_MAX if o.get(k) is not None}
    for t, m in result.get("by_type", {}).items():
        share = max(margin, 1.0 / max(1, m["n"]))
        mins = {k: lo(m[k], share) for k in GATE_TYPE_MIN if m.get(k) is not None}
        if mins:
            out["by_type"][t] = mins
        if m.get("confident_wrong_rate") is not None:
            out["max"]["by_type"][t] = {"confident_wrong_rate": hi(m["confident_wrong_rate"], share)}
    out["_note"] = (f"Derived by `python -m eval thresholds` from the {result.get('split', 'all')} split of a measured "
                    f"result: minimums = measured − {margin}, maximums = measured + {margin}, per type at least one "
                    "question's share. Strict metrics (short_answer_hit, confident_wrong_rate). No latency: speed is "
                    "measured by `python -m eval bench`, never by a timed test. Re-derive with every improvement.")
    return out


def cmd_thresholds(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m eval thresholds", description="Derive the CI gate from a result.")
    p.add_argument("--result", default="eval/reports/taiyuan_gold.json", help="a result written by python -m eval --json")
    p.add_argument("--out", default="eval/thresholds.json")
    p.add_argument("--margin", type=float, default=0.03)
    args = p.parse_args(argv)
    try:
        result = json.loads(Path(args.result).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read result {args.result}: {exc}") from exc
    _write_json(derive_thresholds(result, args.margin), args.out)
    return 0


def cmd_squad(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m eval squad", description="Open-retrieval benchmark on a SQuAD file.")
    p.add_argument("--data", required=True, help="SQuAD-format JSON (paragraphs become documents)")
    p.add_argument("--questions", help="second SQuAD file whose questions (same ids) are asked instead")
    p.add_argument("--json", help="write the full result here")
    p.add_argument("--report", help="write a markdown report here (+ .png)")
    p.add_argument("--check", help="thresholds JSON; exit 1 when a metric misses its bound")
    p.add_argument("--limit", type=_positive, help="ask only the first N questions")
    p.add_argument("--k", type=_positive, default=10, help="passages per question (default 10)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    thresholds = _read_thresholds(args.check)

    from .squad import SquadFormatError, load_squad, run_squad

    try:
        load_squad(args.data)  # fail fast on bad input before loading the model
        result = run_squad(args.data, args.questions, limit=args.limit, k=args.k, show_progress_bar=not args.quiet)
    except SquadFormatError as exc:
        raise UsageError(str(exc)) from exc
    return _finish(result, args, thresholds, title=f"Wenda open-retrieval benchmark — {Path(args.data).stem}")


def cmd_bench(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m eval bench", description="Index build time, latency, memory.")
    p.add_argument("--json", help="write the result here")
    p.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="corpus to index (default the bundled one)")
    p.add_argument("--gold", default=str(DEFAULT_GOLD), help="gold file whose questions are timed")
    p.add_argument("--limit", type=_positive, help="time only the first N questions")
    p.add_argument("--warmup", type=int, default=5, help="questions asked before timing (default 5)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if not Path(args.corpus).is_dir():
        raise UsageError(f"corpus folder {args.corpus} does not exist")
    try:
        load_gold(args.gold)
    except GoldFormatError as exc:
        raise UsageError(str(exc)) from exc

    from .bench import run_bench

    result = run_bench(args.corpus, args.gold, warmup=args.warmup, limit=args.limit, show_progress_bar=not args.quiet)
    width = max(len(k) for k in result["overall"])
    for key, value in result["overall"].items():
        print(f"{key.ljust(width)}  {value}")
    if args.json:
        _write_json(result, args.json)
    return 0


def _lazy(module: str):
    """Entry point of a heavier subcommand module, imported only when asked for."""
    def run(argv: list[str]) -> int:
        import importlib

        return importlib.import_module(f"eval.{module}").main(argv)
    return run


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a subcommand (the gold evaluation when none is named)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cmd = argv.pop(0) if argv and argv[0] in SUBCOMMANDS else "gold"
    handlers = {"gold": cmd_gold, "validate": cmd_validate, "split": cmd_split, "fit": _lazy("fit"), "thresholds": cmd_thresholds, "squad": cmd_squad, "bench": cmd_bench,
                "ablation": _lazy("ablation"), "scale": _lazy("scale"), "loadtest": _lazy("loadtest"),
                "channels": _lazy("channels"), "profile": _lazy("profile"), "stability": _lazy("stability"),
                "feedback": _lazy("feedback")}
    handler = handlers[cmd]
    try:
        return handler(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
