"""Run the gold set through the real Assistant: :class:`GoldEvaluator`."""
from __future__ import annotations

import logging
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm import tqdm

from .gold import TYPES, GoldItem
from .metrics import (ItemResult, aggregate, answer_hit, cmrc_em, cmrc_f1, confident_wrong, first_hit_rank,
                      group_by_type, list_recall, strict_hit, supports)

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def git_commit(root: Path = PROJECT_ROOT) -> str | None:
    """The checked-out commit read from ``.git`` files (no git process), or None."""
    git = root / ".git"
    try:
        if git.is_file():  # a worktree: "gitdir: <path>"
            git = (root / git.read_text(encoding="utf-8").split(":", 1)[1].strip()).resolve()
        head = (git / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref:"):
            return head or None
        ref = head.split(":", 1)[1].strip()
        bases = [git]
        if (git / "commondir").is_file():
            bases.append((git / (git / "commondir").read_text(encoding="utf-8").strip()).resolve())
        for base in bases:
            ref_file = base / ref
            if ref_file.is_file():
                return ref_file.read_text(encoding="utf-8").strip() or None
            packed = base / "packed-refs"
            if packed.is_file():
                for line in packed.read_text(encoding="utf-8").splitlines():
                    if line.endswith(" " + ref):
                        return line.split()[0]
    except (OSError, IndexError):
        pass
    return None


def run_meta(assistant: Any = None, **extra: Any) -> dict[str, Any]:
    """Date, model id, index directory, git commit and platform of a run."""
    meta: dict[str, Any] = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    index = getattr(assistant, "index", None)
    if index is not None:
        manifest = getattr(index, "manifest", {}) or {}
        meta["model"] = manifest.get("model", {}).get("id")
        meta["index_dir"] = str(index.directory)
        meta["index_built_at"] = manifest.get("built_at")
        meta["passages"] = manifest.get("passages")
    meta["git_commit"] = git_commit()
    meta["python"] = platform.python_version()
    meta.update(extra)
    return meta


def timed_ask(assistant: Any, question: str, k: int,
              history: Sequence[str] | None = None) -> tuple[Any, float, str | None]:
    """(answer or None, wall-clock ms, error message) for one question (a follow-up gets its history)."""
    from qa import QuestionError

    t0 = time.perf_counter()
    try:
        answer = assistant.ask(question, history=list(history) if history else None, k=k)
        error = None
    except QuestionError as exc:
        answer, error = None, f"QuestionError: {exc}"
    return answer, (time.perf_counter() - t0) * 1000, error


def warm_up(assistant: Any, questions: Sequence[str], k: int) -> None:
    """Ask questions once, untimed and unscored (first-call costs stay out of the latency)."""
    for q in questions:
        timed_ask(assistant, q, k)


def _answer_fields(answer: Any) -> dict[str, Any]:
    if answer is None:
        return {"short_answer": "", "sentence": "", "summary": [], "not_found": True, "hits": [], "citations": []}
    return {
        "short_answer": answer.short_answer, "sentence": answer.sentence,
        "summary": [s.text for s in answer.summary], "not_found": answer.not_found,
        "hits": answer.hits, "citations": answer.citations,
    }


def score_gold_item(item: GoldItem, answer: Any, latency_ms: float, error: str | None = None) -> ItemResult:
    """Score one gold question from the Assistant's answer (None when it raised)."""
    f = _answer_fields(answer)
    texts = [h.passage.text for h in f["hits"]]
    result = ItemResult(id=item.id, type=item.type, answerable=item.answerable, not_found=f["not_found"],
                        latency_ms=latency_ms)
    if item.answerable:
        result.rank = first_hit_rank(texts, item.evidence)
        result.answer_hit = answer_hit(item.answers, f["short_answer"], f["sentence"], f["summary"], f["not_found"])
        result.strict_hit = strict_hit(item.answers, item.answer_form, f["short_answer"], f["sentence"], f["summary"],
                                       f["not_found"])
        result.list_recall = list_recall(item.elements, f["short_answer"], f["sentence"], f["summary"], f["not_found"])
        short = "" if f["not_found"] else f["short_answer"]
        result.em = cmrc_em(item.answers, short)
        result.f1 = cmrc_f1(item.answers, short)
        result.cited_total = len(f["citations"])
        result.cited_ok = sum(1 for c in f["citations"] if supports(c.text, item.evidence, item.answers))
    result.confident_wrong = confident_wrong(item.answerable, item.answer_form, result.strict_hit, f["short_answer"],
                                             f["not_found"], result.list_recall)
    result.details = {
        "question": item.question,
        "history": item.history,
        "lang": item.lang,
        "split": item.split or "all",
        "form": item.answer_form,
        "gold_answers": item.answers,
        "gold_doc": item.doc,
        "short_answer": f["short_answer"],
        "sentence": f["sentence"],
        "summary": f["summary"],
        "confidence": round(float(getattr(answer, "confidence", 0.0)), 4) if answer is not None else None,
        "top_doc": f["hits"][0].passage.doc_id if f["hits"] else None,
        "hit_docs": [h.passage.doc_id for h in f["hits"]],
        "rewritten_query": getattr(answer, "rewritten_query", None),
        "error": error,
    }
    return result


def summarize(results: Sequence[ItemResult]) -> dict[str, Any]:
    """Metrics of a group: ``overall``, ``by_type``, ``by_lang`` and ``followup`` (items with a history)."""
    followups = [r for r in results if r.details.get("history")]
    return {
        "overall": aggregate(results),
        "by_type": group_by_type(results, TYPES),
        "by_lang": group_by_type(results, ("zh", "en"), key=lambda r: r.details.get("lang", "zh")),
        "followup": aggregate(followups) if followups else None,
    }


def summarize_splits(results: Sequence[ItemResult], primary: str = "test") -> dict[str, Any]:
    """:func:`summarize` of every split present (and "all"), the ``primary`` one also at the top level.

    Falls back to "all" when no item carries the primary split (a gold file without splits).
    """
    splits = {s: [r for r in results if r.details.get("split") == s] for s in ("test", "fit")}
    summaries = {s: summarize(rs) for s, rs in splits.items() if rs}
    summaries["all"] = summarize(results)
    chosen = primary if primary in summaries else "all"
    return {**summaries[chosen], "split": chosen, "splits": summaries}


class GoldEvaluator:
    """Evaluate an Assistant on gold items (sentence-transformers style callable).

    ``evaluator(assistant)`` returns the overall metrics; :meth:`evaluate` returns the full result
    (``overall``, ``by_type``, ``items``, ``meta``).

    Args:
        items: Gold questions.
        k: Passages requested per question (``ask(q, k=k)``).
        name: Name recorded in the result's meta.
        show_progress_bar: Show a tqdm bar.
        warmup: Questions asked once, untimed and unscored, before the run (steadier latency).
        split: The split reported at the top level ("test", "fit" or "all"); items of the other
            split are scored too and reported under ``splits``.
    """

    primary_metric = "short_answer_hit"

    def __init__(self, items: Sequence[GoldItem], k: int = 10, name: str = "gold", show_progress_bar: bool = True,
                 warmup: int = 1, split: str = "test") -> None:
        self.items = list(items)
        self.split = split
        self.k = k
        self.name = name
        self.show_progress_bar = show_progress_bar
        self.warmup = warmup
        self.last_result: dict[str, Any] | None = None

    def run(self, assistant: Any, on_item: Callable[[ItemResult], None] | None = None) -> list[ItemResult]:
        """Ask every question and score it."""
        warm_up(assistant, [it.question for it in self.items[:self.warmup]], self.k)
        results = []
        bar = tqdm(self.items, desc=f"eval {self.name}", unit="q", disable=not self.show_progress_bar)
        for item in bar:
            answer, ms, error = timed_ask(assistant, item.question, self.k, item.history)
            if error:
                log.warning("%s: %s", item.id, error)
            res = score_gold_item(item, answer, ms, error)
            results.append(res)
            if on_item:
                on_item(res)
        return results

    def evaluate(self, assistant: Any) -> dict[str, Any]:
        """Full result: the primary split's ``overall``, ``by_type``, ``by_lang``, ``followup``; every
        split under ``splits``; ``items`` and ``meta``.

        The primary split is ``self.split``: "test" (the sealed split, default when the items have
        one), "fit", or "all".
        """
        t0 = time.perf_counter()
        results = self.run(assistant)
        out = summarize_splits(results, self.split)
        out["items"] = [r.to_dict() for r in results]
        out["meta"] = run_meta(assistant, name=self.name, k=self.k, split=out["split"],
                               seconds=round(time.perf_counter() - t0, 1))
        self.last_result = out
        return out

    def __call__(self, assistant: Any) -> dict[str, float]:
        """Overall metrics (``None`` values where undefined)."""
        return self.evaluate(assistant)["overall"]
