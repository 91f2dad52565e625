"""Answer feedback (👍/👎 and an optional comment) as JSON lines in ``<WENDA_HOME>/feedback.jsonl``.

One line per vote or comment::

    {"time", "kb", "answer_id", "answered_at", "question", "rewritten_query", "lang",
     "answer": {"short_answer", "sentence", "text", "not_found", "mode"},
     "citations": [{"n", "doc_id", "title", "section", "page", "span"}],
     "vote": "up" | "down" | "" (withdrawn), "comment", "model": {"id", "sha256"},
     "index": {"built_at", "format_version"}}

A later line about the same ``answer_id`` replaces the vote of an earlier one (:func:`latest_votes`).
Lines are appended whole (one ``write`` of an ``O_APPEND`` file under a process lock and ``flock``),
so concurrent writers never interleave. No Gradio import: ``python -m eval feedback`` reads it too.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("wenda.feedback")

FEEDBACK_FILE = "feedback.jsonl"
VOTES = ("up", "down", "")
MAX_COMMENT = 2000
MAX_FIELD = 4000
_LOCK = threading.Lock()


def feedback_path(home: str | Path | None = None) -> Path:
    """The feedback file of a workspace (default ``WENDA_HOME``)."""
    if home is None:
        from index.workspace import workspace_home

        home = workspace_home()
    return Path(home) / FEEDBACK_FILE


def _text(value: Any, limit: int = MAX_FIELD) -> str:
    return str(value if value is not None else "")[:limit]


def now_iso() -> str:
    """The current time, ISO 8601 in UTC, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def build_record(turn: dict[str, Any], vote: str, comment: str = "") -> dict[str, Any]:
    """The feedback line for one conversation turn (see :mod:`ui.conversation` for the turn's fields).

    Args:
        turn: The answered turn.
        vote: "up", "down" or "" (vote withdrawn).
        comment: Optional free text.

    Raises:
        ValueError: an unknown vote.
    """
    if vote not in VOTES:
        raise ValueError(f"vote must be one of {VOTES}, not {vote!r}")
    answer = turn.get("answer") if isinstance(turn.get("answer"), dict) else {}
    citations = [
        {"n": c.get("n"), "doc_id": _text(c.get("doc_id")), "title": _text(c.get("title")),
         "section": _text(c.get("section")), "page": c.get("page"),
         "span": _text(c.get("text", ""))[int(c.get("start") or 0):int(c.get("end") or 0)]}
        for c in answer.get("citations", []) if isinstance(c, dict)
    ]
    versions = turn.get("versions") if isinstance(turn.get("versions"), dict) else {}
    return {
        "time": now_iso(),
        "kb": _text(turn.get("kb")),
        "answer_id": _text(turn.get("id"), 64),
        "answered_at": _text(turn.get("time"), 64),
        "question": _text(turn.get("question")),
        "rewritten_query": _text(turn.get("rewritten_query")),
        "lang": _text(answer.get("lang") or turn.get("lang") or "", 8),
        "answer": {
            "short_answer": _text(answer.get("short_answer")),
            "sentence": _text(answer.get("sentence")),
            "text": _text(turn.get("answer_text") or turn.get("message")),
            "not_found": bool(answer.get("not_found", not answer)),
            "mode": _text(answer.get("mode"), 20),
        },
        "citations": citations,
        "vote": vote,
        "comment": _text(comment, MAX_COMMENT).strip(),
        "model": dict(versions.get("model") or {}),
        "index": dict(versions.get("index") or {}),
    }


def append_record(record: dict[str, Any], path: str | Path | None = None) -> Path:
    """Append one record as a single JSON line (whole, even with concurrent writers).

    Returns:
        The feedback file written.
    """
    target = Path(path) if path is not None else feedback_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    with _LOCK:
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
    log.info("feedback %r on %r written to %s", record.get("vote"), record.get("question"), target)
    return target


def read_feedback(path: str | Path) -> tuple[list[dict[str, Any]], int]:
    """The records of a feedback file, oldest first.

    Returns:
        (records, number of unreadable lines skipped).

    Raises:
        FileNotFoundError: no such file.
    """
    records: list[dict[str, Any]] = []
    bad = 0
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if not isinstance(obj, dict) or obj.get("vote") not in VOTES:
                log.warning("%s:%d: not a feedback record, skipped", path, lineno)
                bad += 1
                continue
            records.append(obj)
    return records, bad


def latest_votes(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per answer: its latest vote, with the latest non-empty comment given about it.

    Withdrawn votes (``""``) are kept, so callers can count or skip them.
    """
    merged: dict[str, dict[str, Any]] = {}
    for i, rec in enumerate(records):
        key = str(rec.get("answer_id") or f"line-{i}")
        comment = str(rec.get("comment") or "") or str(merged.get(key, {}).get("comment") or "")
        merged[key] = {**rec, "comment": comment}
    return list(merged.values())
