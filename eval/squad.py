"""Open-retrieval benchmark on any SQuAD-format file: :class:`SquadEvaluator` and :func:`run_squad`.

Every paragraph becomes one document (``<paragraph id>.txt``) of a temporary corpus, indexed with
the real builder; every question is asked against the whole corpus. A retrieved passage is a hit
when it comes from the question's own paragraph.
"""
from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from .metrics import ItemResult, aggregate, answer_hit, cmrc_em, cmrc_f1, confident_wrong, group_by_type, strict_hit
from .runner import run_meta, timed_ask, warm_up

log = logging.getLogger(__name__)


class SquadFormatError(ValueError):
    """The file is missing, not JSON, or not shaped like SQuAD."""


@dataclass
class SquadQuestion:
    """A question of a SQuAD-format file.

    Attributes:
        id: Question id.
        question: Question text.
        answers: Gold answer texts (empty for unanswerable SQuAD 2.0 questions).
        doc_id: File name of its paragraph in the temporary corpus.
        answerable: False for ``is_impossible`` questions.
    """

    id: str
    question: str
    answers: list[str] = field(default_factory=list)
    doc_id: str = ""
    answerable: bool = True


@dataclass
class SquadData:
    """Paragraphs (file name → context, title) and questions of a SQuAD-format file."""

    paragraphs: dict[str, str] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    questions: list[SquadQuestion] = field(default_factory=list)


def _read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise SquadFormatError(f"file {path} does not exist")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SquadFormatError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SquadFormatError(f"cannot read {path}: {exc}") from exc


def _safe_name(name: str) -> str:
    return re.sub(r"[^\w.\-]+", "_", name).strip("._") or "p"


def _articles(data: Any, path: Path) -> list[dict]:
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise SquadFormatError(f"{path} is not SQuAD format: expected {{\"data\": [articles...]}}")
    return data["data"]


def load_squad(path: str | Path) -> SquadData:
    """Read a SQuAD-format file into paragraphs and questions.

    Raises:
        SquadFormatError: missing file, invalid JSON or not SQuAD-shaped.
    """
    path = Path(path)
    out = SquadData()
    for ai, article in enumerate(_articles(_read_json(path), path)):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise SquadFormatError(f"{path}: article {ai} has no 'paragraphs' list")
        for pi, para in enumerate(paragraphs):
            if not isinstance(para, dict) or not isinstance(para.get("context"), str):
                raise SquadFormatError(f"{path}: article {ai} paragraph {pi} has no 'context' text")
            stem = _safe_name(str(para.get("id") or f"a{ai:04d}_p{pi:03d}"))
            doc_id, n = f"{stem}.txt", 1
            while doc_id in out.paragraphs:
                n += 1
                doc_id = f"{stem}_{n}.txt"
            out.paragraphs[doc_id] = para["context"]
            out.titles[doc_id] = str(article.get("title") or stem)
            for qi, qa in enumerate(para.get("qas", [])):
                if not isinstance(qa, dict) or not isinstance(qa.get("question"), str):
                    raise SquadFormatError(f"{path}: {doc_id} question {qi} has no 'question' text")
                answers = [a.get("text", "") for a in qa.get("answers", []) if isinstance(a, dict)]
                answers = [a for a in answers if isinstance(a, str) and a.strip()]
                impossible = bool(qa.get("is_impossible")) or not answers
                out.questions.append(SquadQuestion(
                    id=str(qa.get("id") or f"{stem}_q{qi}"), question=qa["question"], answers=answers,
                    doc_id=doc_id, answerable=not impossible,
                ))
    if not out.paragraphs:
        raise SquadFormatError(f"{path} holds no paragraphs")
    return out


def replace_questions(questions: Sequence[SquadQuestion], path: str | Path) -> list[SquadQuestion]:
    """The same questions with their text taken from a second SQuAD file (matched by question id).

    Questions whose id the second file lacks are dropped (with a warning).

    Raises:
        SquadFormatError: unreadable file, or no id in common.
    """
    path = Path(path)
    texts: dict[str, str] = {}
    for article in _articles(_read_json(path), path):
        for para in article.get("paragraphs", []) if isinstance(article, dict) else []:
            for qa in para.get("qas", []) if isinstance(para, dict) else []:
                if isinstance(qa, dict) and isinstance(qa.get("question"), str) and qa.get("id") is not None:
                    texts[str(qa["id"])] = qa["question"]
    out = [SquadQuestion(q.id, texts[q.id], q.answers, q.doc_id, q.answerable) for q in questions if q.id in texts]
    if not out:
        raise SquadFormatError(f"{path} shares no question id with the data file")
    if len(out) < len(questions):
        log.warning("%d of %d questions have no counterpart in %s and are skipped",
                    len(questions) - len(out), len(questions), path)
    return out


def write_corpus(data: SquadData, folder: str | Path) -> Path:
    """Write each paragraph as ``<paragraph id>.txt`` plus a manifest with the article titles."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for doc_id, context in data.paragraphs.items():
        (folder / doc_id).write_text(context, encoding="utf-8")
    manifest = {"name": folder.name, "documents": {
        d: {"title": data.titles.get(d, d), "kind": "squad paragraph"} for d in data.paragraphs
    }}
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return folder


def score_squad_item(q: SquadQuestion, answer: Any, latency_ms: float, error: str | None = None) -> ItemResult:
    """Score one question: hits and citations must come from its own paragraph."""
    hits = answer.hits if answer is not None else []
    cits = answer.citations if answer is not None else []
    not_found = answer.not_found if answer is not None else True
    short = "" if answer is None or not_found else answer.short_answer
    sentence = answer.sentence if answer is not None else ""
    summary = [s.text for s in answer.summary] if answer is not None else []
    r = ItemResult(id=q.id, type="squad" if q.answerable else "none", answerable=q.answerable,
                   not_found=not_found, latency_ms=latency_ms)
    if q.answerable:
        r.rank = next((i for i, h in enumerate(hits, 1) if h.passage.doc_id == q.doc_id), None)
        r.answer_hit = answer_hit(q.answers, short, sentence, summary, not_found)
        r.strict_hit = strict_hit(q.answers, "short", short, sentence, summary, not_found)
        r.em = cmrc_em(q.answers, short)
        r.f1 = cmrc_f1(q.answers, short)
        r.cited_total = len(cits)
        r.cited_ok = sum(1 for c in cits if c.doc_id == q.doc_id)
    r.confident_wrong = confident_wrong(q.answerable, "short", r.strict_hit, short, not_found)
    r.details = {
        "question": q.question, "gold_answers": q.answers, "gold_doc": q.doc_id,
        "short_answer": answer.short_answer if answer is not None else "", "sentence": sentence,
        "top_doc": hits[0].passage.doc_id if hits else None, "error": error,
    }
    return r


class SquadEvaluator:
    """Evaluate an Assistant whose index holds the SQuAD paragraphs (see :func:`write_corpus`).

    ``evaluator(assistant)`` returns the overall metrics; :meth:`evaluate` the full result.

    Args:
        questions: Questions to ask.
        k: Passages requested per question.
        name: Name recorded in the result's meta.
        show_progress_bar: Show a tqdm bar.
        warmup: Questions asked once, untimed and unscored, before the run (steadier latency).
    """

    primary_metric = "answer_hit"

    def __init__(self, questions: Sequence[SquadQuestion], k: int = 10, name: str = "squad",
                 show_progress_bar: bool = True, warmup: int = 1) -> None:
        self.questions = list(questions)
        self.k = k
        self.name = name
        self.show_progress_bar = show_progress_bar
        self.warmup = warmup
        self.last_result: dict[str, Any] | None = None

    def evaluate(self, assistant: Any) -> dict[str, Any]:
        """Full result: ``overall``, ``by_type``, ``items`` and ``meta``."""
        t0 = time.perf_counter()
        warm_up(assistant, [q.question for q in self.questions[:self.warmup]], self.k)
        results = []
        for q in tqdm(self.questions, desc=f"eval {self.name}", unit="q", disable=not self.show_progress_bar):
            answer, ms, error = timed_ask(assistant, q.question, self.k)
            results.append(score_squad_item(q, answer, ms, error))
        out = {
            "overall": aggregate(results),
            "by_type": group_by_type(results, ("squad", "none")),
            "items": [r.to_dict() for r in results],
            "meta": run_meta(assistant, name=self.name, k=self.k, seconds=round(time.perf_counter() - t0, 1)),
        }
        self.last_result = out
        return out

    def __call__(self, assistant: Any) -> dict[str, float]:
        """Overall metrics (``None`` values where undefined)."""
        return self.evaluate(assistant)["overall"]


def run_squad(data_path: str | Path, questions_path: str | Path | None = None, limit: int | None = None,
              k: int = 10, embedder: Any = None, show_progress_bar: bool = True) -> dict[str, Any]:
    """Index a SQuAD file's paragraphs in a temporary directory and evaluate its questions.

    Args:
        data_path: SQuAD-format file giving paragraphs, question ids and answers.
        questions_path: Optional second SQuAD file whose questions (same ids) are asked instead.
        limit: Ask only the first N questions (all paragraphs are still indexed).
        k: Passages per question.
        embedder: Embedding model (default the offline e5-small).
        show_progress_bar: Show tqdm bars.

    Raises:
        SquadFormatError: unreadable or malformed input.
    """
    from index.builder import build_index, load_index
    from index.embed import Embedder
    from qa import Assistant

    data = load_squad(data_path)
    questions = data.questions
    if questions_path:
        questions = replace_questions(questions, questions_path)
    if limit is not None:
        questions = questions[:limit]
    if not questions:
        raise SquadFormatError(f"{data_path} holds no questions")
    embedder = embedder or Embedder()
    tmp = Path(tempfile.mkdtemp(prefix="wenda-squad-"))
    try:
        corpus = write_corpus(data, tmp / "corpus")
        index_dir = tmp / "index"
        build = build_index(corpus, index_dir, embedder, progress=show_progress_bar)
        if build.errors:
            log.warning("%d paragraphs failed to index: %s", len(build.errors), list(build.errors)[:5])
        assistant = Assistant(load_index(index_dir, embedder), embedder)
        assistant.retriever.warm_up()
        name = Path(data_path).stem + (f"+{Path(questions_path).stem}" if questions_path else "")
        result = SquadEvaluator(questions, k=k, name=name, show_progress_bar=show_progress_bar).evaluate(assistant)
        result["meta"].update({
            "data": str(data_path), "questions": str(questions_path) if questions_path else None,
            "paragraphs": len(data.paragraphs), "index_passages": build.passages,
            "index_build_s": round(build.seconds, 1),
        })
        result["meta"]["index_dir"] = None  # temporary, removed below
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
