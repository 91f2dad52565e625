"""``python -m eval feedback``: what users said about the answers (the app's ``feedback.jsonl``).

    python -m eval feedback [--file PATH] [--drafts OUT.jsonl] [--top N]

Prints the votes (each answer counted once, its latest vote), the votes per knowledge base and the most
down-voted questions with their comments; ``--drafts`` turns every 👎 question into a draft gold item
(the schema of :mod:`eval.gold`, with ``answers``, ``evidence`` and ``doc`` left for a reviewer to fill,
``"draft": true`` and the user's comment), one per distinct question.

Exit codes: 0 success, 2 bad input (no such file).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from index.fileio import atomic_write
from ui.feedback import feedback_path, latest_votes, read_feedback

_CJK = re.compile(r"[\u3400-\u9fff]")
_TYPE_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("time", re.compile(r"何时|什么时候|哪一年|哪年|哪天|几月|\bwhen\b|what year|which year", re.IGNORECASE)),
    ("number", re.compile(r"多少|几个|几项|几家|几座|几条|比重|占比|增长|百分|\bhow (many|much)\b|percent|rate|"
                          r"\bnumber of\b|\bhow (large|big|long|high)\b", re.IGNORECASE)),
    ("list", re.compile(r"哪些|有哪几|包括什么|包括哪|列举|\bwhat are\b|\bwhich\b.*\b(are|were)\b|\blist\b", re.IGNORECASE)),
    ("explain", re.compile(r"为什么|为何|如何|怎样|怎么|什么意义|\bwhy\b|\bhow (do|does|did|can|will|to|is|are)\b", re.IGNORECASE)),
)


def guess_type(question: str) -> str:
    """A gold ``type`` guessed from the wording (English questions are type "en", as in the gold set)."""
    if not _CJK.search(question) and re.search(r"[A-Za-z]", question):
        return "en"
    for kind, rule in _TYPE_RULES:
        if rule.search(question):
            return kind
    return "entity"


def _norm(question: str) -> str:
    return re.sub(r"\s+", " ", question).strip().rstrip("?？").lower()


def summarise(records: list[dict[str, Any]], top: int = 10) -> dict[str, Any]:
    """Counts by vote and by knowledge base (each answer once: its latest vote) and the most down-voted questions."""
    answers = latest_votes(records)
    by_vote = Counter(a.get("vote") or "withdrawn" for a in answers)
    by_kb: dict[str, Counter] = defaultdict(Counter)
    for a in answers:
        by_kb[str(a.get("kb") or "?")][a.get("vote") or "withdrawn"] += 1
    down: dict[tuple[str, str], dict[str, Any]] = {}
    for a in answers:
        if a.get("vote") != "down":
            continue
        key = (str(a.get("kb") or ""), _norm(str(a.get("question") or "")))
        entry = down.setdefault(key, {"kb": key[0], "question": a.get("question", ""), "down": 0, "comments": []})
        entry["down"] += 1
        if a.get("comment"):
            entry["comments"].append(a["comment"])
    worst = sorted(down.values(), key=lambda e: (-e["down"], e["question"]))[:top]
    return {"records": len(records), "answers": len(answers),
            "by_vote": {v: by_vote.get(v, 0) for v in ("up", "down", "withdrawn")},
            "by_kb": {kb: dict(c) for kb, c in sorted(by_kb.items())}, "most_downvoted": worst}


def draft_items(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One draft gold item per distinct 👎 question (per knowledge base), latest answer first kept."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for a in latest_votes(records):
        question = str(a.get("question") or "").strip()
        if a.get("vote") != "down" or not question:
            continue
        kb = str(a.get("kb") or "")
        key = (kb, _norm(question))
        previous = out.get(key, {}).get("feedback_comment", "")
        comments = [c for c in (previous, str(a.get("comment") or "")) if c]
        digest = hashlib.sha1(f"{kb}\n{key[1]}".encode()).hexdigest()[:8]
        answer = a.get("answer") if isinstance(a.get("answer"), dict) else {}
        out[key] = {
            "id": f"fb-{digest}", "question": question, "answers": [], "evidence": [], "doc": [],
            "type": guess_type(question), "lang": "zh" if _CJK.search(question) else "en",
            "draft": True, "feedback_comment": " | ".join(comments),
            "feedback_kb": kb, "feedback_answer": answer.get("text") or answer.get("short_answer") or "",
            "feedback_cited_docs": sorted({str(c.get("doc_id")) for c in a.get("citations") or [] if c.get("doc_id")}),
        }
    return list(out.values())


def print_summary(summary: dict[str, Any], path: Path, bad: int) -> None:
    """The summary as plain text on stdout."""
    v = summary["by_vote"]
    print(f"{path}: {summary['records']} records, {summary['answers']} answers rated"
          + (f", {bad} unreadable lines skipped" if bad else ""))
    print(f"votes: 👍 {v['up']}  👎 {v['down']}  withdrawn {v['withdrawn']}")
    for kb, counts in summary["by_kb"].items():
        print(f"  {kb}: 👍 {counts.get('up', 0)}  👎 {counts.get('down', 0)}")
    if summary["most_downvoted"]:
        print("most down-voted questions:")
        for e in summary["most_downvoted"]:
            comments = f"  — {' | '.join(e['comments'])}" if e["comments"] else ""
            print(f"  {e['down']}× [{e['kb']}] {e['question']}{comments}")


def main(argv: list[str]) -> int:
    """Entry point of ``python -m eval feedback``."""
    p = argparse.ArgumentParser(prog="python -m eval feedback", description="Summarise the app's answer feedback.")
    p.add_argument("--file", help="feedback .jsonl (default <WENDA_HOME>/feedback.jsonl)")
    p.add_argument("--drafts", help="write draft gold items for the 👎 questions here (.jsonl)")
    p.add_argument("--top", type=int, default=10, help="most down-voted questions shown (default 10)")
    p.add_argument("--json", help="write the summary as JSON here")
    args = p.parse_args(argv)
    path = Path(args.file) if args.file else feedback_path()
    try:
        records, bad = read_feedback(path)
    except FileNotFoundError:
        print(f"error: feedback file {path} does not exist (the app writes it when a user rates an answer)",
              file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read feedback file {path}: {exc}", file=sys.stderr)
        return 2
    summary = summarise(records, top=max(1, args.top))
    print_summary(summary, path, bad)
    if args.json:
        atomic_write(Path(args.json), (json.dumps(summary, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
        print(f"wrote {args.json}")
    if args.drafts:
        drafts = draft_items(records)
        text = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in drafts)
        Path(args.drafts).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(Path(args.drafts), text.encode("utf-8"))
        print(f"wrote {len(drafts)} draft gold items to {args.drafts}")
    return 0
