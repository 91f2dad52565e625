"""Command line: ``python -m qa ask "问题" [--k 5] [--json]``."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import textwrap

from index.builder import IndexLoadError

from . import Assistant, QuestionError


def _print_answer(ans) -> None:
    if ans.rewritten_query != ans.question:
        print(f"理解为 / interpreted as: {ans.rewritten_query}")
    if ans.not_found:
        print(ans.message)
        for i, h in enumerate(ans.related, 1):
            p = h.passage
            print(f"  related {i}. {p.title} ({p.date}) {p.section}")
            print(textwrap.indent(textwrap.fill(p.text, 70), "     "))
        return
    if ans.short_answer:
        print(f"答案 / answer: {ans.short_answer}")
    print(f"依据 / sentence: {ans.sentence} [1]")
    if ans.summary:
        print("摘要 / summary:")
        for s in ans.summary:
            print(f"  - {s.text} [{s.citation}]")
    print(f"confidence {ans.confidence:.2f} · {ans.elapsed_ms:.0f} ms")
    print("来源 / citations:")
    for c in ans.citations:
        print(f"  [{c.n}] {c.title} ({c.date}) › {c.section or '—'}  [{c.passage_id} chars {c.start}-{c.end}]")
        print(textwrap.indent(textwrap.fill(c.span, 70), "      "))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa", description="Ask Wenda a question.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("ask", help="answer a question with citations")
    a.add_argument("question")
    a.add_argument("--k", type=int, default=5, help="passages considered (1-50)")
    a.add_argument("--index", help="index directory (default: the bundled corpus's; built if missing)")
    a.add_argument("--style", default="auto", choices=["auto", "short", "summary"])
    a.add_argument("--history", action="append", default=[], help="a previous question (repeat, oldest first)")
    a.add_argument("--json", action="store_true", help="print the answer as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        assistant = Assistant.load(args.index, build_if_missing=args.index is None)
        ans = assistant.ask(args.question, history=args.history, k=args.k, style=args.style)
    except (QuestionError, ValueError, IndexLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(ans.to_dict(), ensure_ascii=False, indent=1))
    else:
        _print_answer(ans)
    return 0


if __name__ == "__main__":
    sys.exit(main())
