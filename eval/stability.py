"""Stability: adding unrelated documents must not change the answers to questions they have nothing to do with.

``python -m eval stability --extra data/datasets/cmrc2018/cmrc2018_trial.json`` builds the bundled corpus's
index, asks the gold questions of a split, adds N paragraphs of another collection as documents (an
incremental build: the original passages keep their vectors), asks again and lists every answer that
changed, and why it may have: the new answer cites an added document (``new_source``: acceptable when
that document is the better source), an added document is among the passages the answer was built from
(``retrieved``: the retriever judged it related, so it competes for the answer), or neither
(``unexplained``: collection statistics leaking into an unrelated question; the target is none).
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .gold import DEFAULT_CORPUS, DEFAULT_GOLD, GoldItem, load_gold, select_split

log = logging.getLogger(__name__)


@dataclass
class AnswerKey:
    """What a user sees of an answer: the bold answer, whether it was refused, and where it is from."""

    short_answer: str
    not_found: bool
    sentence: str
    doc_id: str

    @classmethod
    def of(cls, answer) -> "AnswerKey":
        doc = answer.citations[0].doc_id if answer.citations else ""
        return cls(answer.short_answer, bool(answer.not_found), answer.sentence, doc)


@dataclass
class Change:
    """One question whose answer changed."""

    id: str
    question: str
    before: AnswerKey
    after: AnswerKey
    new_source: bool  # the new answer cites an added document
    retrieved: bool  # an added document is among the hits the new answer was built from

    @property
    def reason(self) -> str:
        return "new_source" if self.new_source else "retrieved" if self.retrieved else "unexplained"


def extra_documents(path: str | Path, n: int) -> list[tuple[str, str]]:
    """(file name, text) of the first ``n`` paragraphs of a SQuAD-format file."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    out: list[tuple[str, str]] = []
    for article in data["data"]:
        for para in article["paragraphs"]:
            if len(out) >= n:
                return out
            title = article.get("title") or para.get("id", f"p{len(out)}")
            out.append((f"zz_extra_{len(out):03d}.txt", f"{title}\n\n{para['context'].strip()}\n"))
    return out


def ask_all(assistant, items: list[GoldItem], desc: str, progress: bool) -> dict[str, tuple[AnswerKey, set[str]]]:
    """The answer key of every item and the documents of the hits it was built from (follow-ups asked
    with their history)."""
    out = {}
    for it in tqdm(items, desc=desc, disable=not progress):
        answer = assistant.ask(it.question, history=it.history or None, k=10)
        out[it.id] = AnswerKey.of(answer), {h.passage.doc_id for h in answer.hits}
    return out


def measure_stability(items: list[GoldItem], extra: list[tuple[str, str]], corpus: Path = DEFAULT_CORPUS,
                      embedder=None, progress: bool = True, workdir: Path | None = None) -> dict[str, Any]:
    """Answers before and after adding ``extra`` documents to a copy of ``corpus``.

    Returns:
        ``{"overall": {"changed", "changed_new_source", "changed_retrieved", "changed_unexplained", "n",
        "stable_rate"}, "changes": [...]}``; the primary metric is ``stable_rate``.
    """
    from index.builder import build_index
    from index.embed import Embedder
    from qa import Assistant

    embedder = embedder or Embedder()
    tmp = Path(tempfile.mkdtemp(prefix="wenda-stability-", dir=workdir))
    try:
        docs, index = tmp / "corpus", tmp / "index"
        shutil.copytree(corpus, docs)
        build_index(docs, index, embedder, progress=progress)
        before = ask_all(Assistant.load(index_dir=index, embedder=embedder), items, "before", progress)
        for name, text in extra:
            (docs / name).write_text(text, encoding="utf-8")
        build_index(docs, index, embedder, progress=progress)
        after = ask_all(Assistant.load(index_dir=index, embedder=embedder), items, "after", progress)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    added = {name for name, _ in extra}
    changes = [Change(it.id, it.question, before[it.id][0], after[it.id][0], after[it.id][0].doc_id in added,
                      bool(after[it.id][1] & added))
               for it in items if before[it.id][0] != after[it.id][0]]
    reasons = [c.reason for c in changes]
    overall = {"n": len(items), "added_documents": len(extra), "changed": len(changes),
               **{f"changed_{r}": reasons.count(r) for r in ("new_source", "retrieved", "unexplained")},
               "stable_rate": round(1 - len(changes) / max(1, len(items)), 4)}
    return {"overall": overall, "primary": "stable_rate",
            "changes": [{**asdict(c), "reason": c.reason} for c in changes]}


def main(argv: list[str] | None = None) -> int:
    """``python -m eval stability``: answers before/after adding unrelated documents."""
    p = argparse.ArgumentParser(prog="python -m eval stability", description=__doc__.split("\n")[0])
    p.add_argument("--extra", default="data/datasets/cmrc2018/cmrc2018_trial.json",
                   help="SQuAD-format file whose paragraphs are added as documents")
    p.add_argument("--n", type=int, default=20, help="paragraphs added (default 20)")
    p.add_argument("--gold", default=str(DEFAULT_GOLD))
    p.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    p.add_argument("--split", choices=("test", "fit", "all"), default="test")
    p.add_argument("--json", help="write the result here")
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    items = select_split(load_gold(args.gold), args.split)
    result = measure_stability(items, extra_documents(args.extra, args.n), Path(args.corpus), progress=not args.quiet)
    if args.json:
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    for c in result["changes"]:
        b, a = c["before"], c["after"]
        print(f"{c['id']} ({c['reason']}) {c['question'][:40]}\n   before: {'(not found)' if b['not_found'] else b['short_answer']} "
              f"[{b['doc_id']}]\n   after:  {'(not found)' if a['not_found'] else a['short_answer']} [{a['doc_id']}]")
    print(json.dumps(result["overall"], ensure_ascii=False), file=sys.stdout)
    return 0
