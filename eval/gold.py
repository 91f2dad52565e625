"""The gold question set: loading (``*.jsonl``) and validation against the corpus.

One JSON object per line::

    {"id": "g001", "question": "...", "answers": ["6.6%"], "evidence": ["...6.6%..."],
     "doc": ["001_....txt"], "type": "number", "lang": "zh"}
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.fileio import atomic_write

from .metrics import strip_ws

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GOLD = PROJECT_ROOT / "data" / "gold" / "taiyuan_gold.jsonl"
DEFAULT_CORPUS = PROJECT_ROOT / "data" / "corpus" / "taiyuan"
TYPES: tuple[str, ...] = ("number", "entity", "list", "explain", "en", "paraphrase", "multi", "time", "none")
LANGS: tuple[str, ...] = ("zh", "en")
FIELDS: dict[str, type] = {
    "id": str, "question": str, "answers": list, "evidence": list, "doc": list, "type": str, "lang": str,
}
# Optional fields: earlier turns of a follow-up, the elements of a list answer, what form the answer
# takes (decides how it is scored, see eval.metrics.answer_form), and the sealed split.
OPTIONAL: dict[str, type] = {"history": list, "list": list, "form": str, "split": str}
FORMS: tuple[str, ...] = ("short", "list", "explain")
SPLITS: tuple[str, ...] = ("fit", "test")


class GoldFormatError(ValueError):
    """The gold file is missing, is not JSON lines, or an item breaks the schema."""


@dataclass
class GoldItem:
    """One gold question.

    Attributes:
        id: Unique id.
        question: The question text.
        answers: Acceptable short answers (empty for "none").
        evidence: Sentences of the corpus that hold the answer.
        doc: Corpus file names the evidence comes from.
        type: One of :data:`TYPES`.
        lang: "zh" or "en".
        history: Earlier questions of the conversation (a follow-up item), oldest first.
        elements: Elements of a list answer (JSON key ``list``; scored by list recall).
        form: "short", "list" or "explain" ("" = by type: list/explain types are their own form).
        split: "fit" (may be looked at and fitted on) or "test" (sealed: only scored); "" = unassigned.
    """

    id: str
    question: str
    answers: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    doc: list[str] = field(default_factory=list)
    type: str = "number"
    lang: str = "zh"
    history: list[str] = field(default_factory=list)
    elements: list[str] = field(default_factory=list)
    form: str = ""
    split: str = ""

    @property
    def answerable(self) -> bool:
        return self.type != "none"

    @property
    def answer_form(self) -> str:
        """How the answer is scored: "short" (the bold short answer must hold it), "list" or "explain"."""
        if self.form:
            return self.form
        if self.type in ("list", "explain"):
            return self.type
        return "list" if self.elements else "short"


def read_jsonl(path: str | Path) -> tuple[list[tuple[int, Any]], list[str]]:
    """(line number, parsed object) pairs and the problems of unparsable lines.

    Raises:
        GoldFormatError: the file does not exist or cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise GoldFormatError(f"gold file {path} does not exist")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise GoldFormatError(f"cannot read gold file {path}: {exc}") from exc
    records, problems = [], []
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append((no, json.loads(line)))
        except json.JSONDecodeError as exc:
            problems.append(f"line {no}: invalid JSON ({exc.msg} at column {exc.colno})")
    return records, problems


def schema_problems(obj: Any) -> list[str]:
    """What is wrong with one record's fields and types (empty when fine)."""
    if not isinstance(obj, dict):
        return [f"expected a JSON object, got {type(obj).__name__}"]
    out = []
    for name, kind in FIELDS.items():
        if name not in obj:
            out.append(f"missing field {name!r}")
        elif not isinstance(obj[name], kind):
            out.append(f"field {name!r} must be a {kind.__name__}, got {type(obj[name]).__name__}")
        elif kind is list and not all(isinstance(x, str) for x in obj[name]):
            out.append(f"field {name!r} must be a list of strings")
    for name, kind in OPTIONAL.items():
        if name in obj and not isinstance(obj[name], kind):
            out.append(f"field {name!r} must be a {kind.__name__}, got {type(obj[name]).__name__}")
        elif name in obj and kind is list and not all(isinstance(x, str) and x.strip() for x in obj[name]):
            out.append(f"field {name!r} must be a list of non-empty strings")
    if isinstance(obj.get("form"), str) and obj["form"] and obj["form"] not in FORMS:
        out.append(f"form {obj['form']!r} is not one of {', '.join(FORMS)}")
    if isinstance(obj.get("split"), str) and obj["split"] and obj["split"] not in SPLITS:
        out.append(f"split {obj['split']!r} is not one of {', '.join(SPLITS)}")
    if isinstance(obj.get("id"), str) and not obj["id"].strip():
        out.append("empty id")
    if isinstance(obj.get("question"), str) and not obj["question"].strip():
        out.append("empty question")
    if isinstance(obj.get("type"), str) and obj["type"] not in TYPES:
        out.append(f"type {obj['type']!r} is not one of {', '.join(TYPES)}")
    if isinstance(obj.get("lang"), str) and obj["lang"] not in LANGS:
        out.append(f"lang {obj['lang']!r} is not one of {', '.join(LANGS)}")
    return out


def load_gold(path: str | Path) -> list[GoldItem]:
    """Read and schema-check a gold file (corpus checks are :func:`validate_gold`'s job).

    Raises:
        GoldFormatError: missing file, invalid JSON, schema violation or duplicate id.
    """
    records, problems = read_jsonl(path)
    items: list[GoldItem] = []
    seen: set[str] = set()
    for no, obj in records:
        errs = schema_problems(obj)
        if errs:
            problems.append(f"line {no}: {'; '.join(errs)}")
            continue
        if obj["id"] in seen:
            problems.append(f"line {no}: duplicate id {obj['id']!r}")
            continue
        seen.add(obj["id"])
        extra = {("elements" if k == "list" else k): obj[k] for k in OPTIONAL if k in obj}
        items.append(GoldItem(**{k: obj[k] for k in FIELDS}, **extra))
    if problems:
        raise GoldFormatError(f"{path}: " + "; ".join(problems[:10]) + (" ..." if len(problems) > 10 else ""))
    if not items:
        raise GoldFormatError(f"{path} holds no questions")
    return items


@dataclass
class ValidationReport:
    """Outcome of :func:`validate_gold`."""

    path: Path
    n: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    by_lang: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and self.n > 0


def _item_problems(obj: dict[str, Any], corpus_dir: Path, doc_cache: dict[str, str | None]) -> list[str]:
    """Corpus and answer rules for one schema-valid record."""
    out: list[str] = []
    answers = [a for a in obj["answers"]]
    evidence, docs, qtype = obj["evidence"], obj["doc"], obj["type"]
    if qtype == "none":
        for name in ("answers", "evidence", "doc"):
            if obj[name]:
                out.append(f"type 'none' must have empty {name!r}")
        return out
    for name in ("answers", "evidence", "doc"):
        if not obj[name]:
            out.append(f"empty {name!r} (only type 'none' may have none)")
    if any(not strip_ws(a) for a in answers):
        out.append("an answer is blank")
    texts = []
    for d in docs:
        if d not in doc_cache:
            p = corpus_dir / d
            try:
                doc_cache[d] = strip_ws(p.read_text(encoding="utf-8")) if p.is_file() else None
            except (OSError, UnicodeDecodeError):
                doc_cache[d] = None
        if doc_cache[d] is None:
            out.append(f"document {d!r} not found in {corpus_dir}")
        else:
            texts.append(doc_cache[d])
    ev_ws = [strip_ws(e) for e in evidence]
    for e, ew in zip(evidence, ev_ws):
        if not ew:
            out.append("an evidence string is blank")
        elif texts and not any(ew in t for t in texts):
            out.append(f"evidence not found verbatim in {', '.join(docs)}: {e[:40]!r}")
    for element in obj.get("list", []):
        if not any(strip_ws(element) in ew for ew in ev_ws):
            out.append(f"list element {element!r} is not inside any evidence")
    inside = [a for a in answers if strip_ws(a) and any(strip_ws(a) in ew for ew in ev_ws)]
    if qtype == "en":
        if answers and not inside:
            out.append("no answer of this 'en' item lies inside its evidence")
    else:
        for a in answers:
            if strip_ws(a) and a not in inside:
                out.append(f"answer {a!r} is not inside any evidence")
    return out


def validate_gold(path: str | Path, corpus_dir: str | Path = DEFAULT_CORPUS) -> ValidationReport:
    """Check a gold file: schema, unique ids, evidence verbatim in its documents, answers inside evidence.

    Whitespace is ignored in every text comparison. For type "en" one answer inside the evidence is
    enough (the others may be English variants); "none" items must have empty answers, evidence and doc.

    Raises:
        GoldFormatError: the file cannot be read at all.
    """
    path, corpus_dir = Path(path), Path(corpus_dir)
    report = ValidationReport(path=path)
    records, report.failures = read_jsonl(path)
    if not corpus_dir.is_dir():
        report.failures.append(f"corpus folder {corpus_dir} does not exist (use --corpus DIR)")
    seen: dict[str, int] = {}
    doc_cache: dict[str, str | None] = {}
    types: Counter[str] = Counter()
    langs: Counter[str] = Counter()
    for no, obj in records:
        report.n += 1
        where = f"line {no}" + (f" ({obj.get('id')})" if isinstance(obj, dict) and isinstance(obj.get("id"), str) else "")
        errs = schema_problems(obj)
        if errs:
            report.failures.extend(f"{where}: {e}" for e in errs)
            continue
        types[obj["type"]] += 1
        langs[obj["lang"]] += 1
        if obj["id"] in seen:
            report.failures.append(f"{where}: duplicate id (first on line {seen[obj['id']]})")
        else:
            seen[obj["id"]] = no
        if corpus_dir.is_dir():
            report.failures.extend(f"{where}: {e}" for e in _item_problems(obj, corpus_dir, doc_cache))
    if report.n == 0 and not report.failures:
        report.failures.append(f"{path} holds no questions")
    report.by_type = {t: types[t] for t in TYPES if types[t]}
    report.by_lang = {lang: langs[lang] for lang in LANGS if langs[lang]}
    return report


def assign_splits(path: str | Path, test_share: float = 0.5) -> dict[str, int]:
    """Give every item of a gold file without a ``split`` one; existing splits never change.

    The split is made once and then sealed: items are stratified by (type, lang, follow-up or not)
    and, within a stratum, taken in the order of the sha256 of their id, each going to whichever
    split is further below its share, so the result depends only on the ids. The file is rewritten
    atomically with ``"split"`` added to the new items.

    Returns:
        Counts of items newly assigned to "fit" and "test".

    Raises:
        GoldFormatError: unreadable file or invalid records.
    """
    path = Path(path)
    load_gold(path)  # schema check first: never rewrite a broken file
    records, _ = read_jsonl(path)
    objs = [obj for _, obj in records]
    strata: dict[tuple[str, str, bool], list[dict[str, Any]]] = {}
    for obj in objs:
        strata.setdefault((obj["type"], obj["lang"], bool(obj.get("history"))), []).append(obj)
    added = {"fit": 0, "test": 0}
    for group in strata.values():
        counts = Counter(o.get("split") for o in group if o.get("split"))
        for obj in sorted((o for o in group if not o.get("split")),
                          key=lambda o: hashlib.sha256(o["id"].encode("utf-8")).hexdigest()):
            total = counts["test"] + counts["fit"] + 1
            split = "test" if counts["test"] < test_share * total else "fit"
            obj["split"] = split
            counts[split] += 1
            added[split] += 1
    atomic_write(path, "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs).encode("utf-8"))
    return added


def select_split(items: list[GoldItem], split: str) -> list[GoldItem]:
    """The items of one split ("fit", "test"; "all" keeps every item)."""
    if split == "all":
        return list(items)
    if split not in SPLITS:
        raise GoldFormatError(f"split {split!r} is not one of {', '.join(SPLITS)}, all")
    return [it for it in items if it.split == split]


def load_assistant(index: str | Path | None = None, embedder=None, corpus: str | Path | None = None):
    """The Assistant evaluated: ``index`` as given, else the development index of ``corpus`` (default the
    bundled corpus) in ``data/index/<manifest name>`` (git-ignored; built or brought up to date first),
    never the user's workspace copy."""
    from index.builder import build_index, default_index_dir
    from index.embed import Embedder
    from index.profile import read_corpus_manifest
    from qa import Assistant

    if index is not None:
        return Assistant.load(index_dir=index, embedder=embedder)
    corpus = Path(corpus or DEFAULT_CORPUS)
    if not corpus.is_dir():
        raise FileNotFoundError(f"corpus folder {corpus} does not exist")
    name = str(read_corpus_manifest(corpus).get("name") or corpus.name)
    embedder = embedder or Embedder()
    index = default_index_dir(corpus).with_name(name)
    build_index(corpus, index, embedder, progress=False)  # incremental: a no-op when up to date
    return Assistant.load(index_dir=index, embedder=embedder)
