"""Strict answer metrics, sealed splits and follow-up items, pinned on hand-made cases (no model)."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from eval.gold import GoldItem, assign_splits, load_gold, select_split
from eval.metrics import aggregate, confident_wrong, contains_answer, list_recall, strict_hit
from eval.report import write_markdown
from eval.runner import GoldEvaluator, score_gold_item
from qa.types import Answer, SummarySentence

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("gold, text, expected", [
    ("45", "共12345辆", False),          # inside a longer number
    ("7", "新增17个", False),
    ("7", "增长7.5%", False),            # a decimal is a different figure
    ("2", "2,000张", False),             # a grouped number too
    ("45", "救护车45辆", True),
    ("7", "第7位", True),
    ("2000张", "新增养老床位2000张", True),
    ("2000张", "新增养老床位12000张", False),
    ("6.6%", "年均增长6.6%", True),
    ("6.6%", "年均增长16.6%", False),
    ("第15位", "上升到 第 15 位", True),  # whitespace ignored
    ("Taiyuan", "taiyuan city", True),  # case ignored
    ("水塔醋业", "水塔醋业、紫林醋业", True),
    ("", "anything", False),
])
def test_contains_answer_number_boundaries(gold: str, text: str, expected: bool) -> None:
    assert contains_answer(gold, text) is expected


def test_strict_hit_short_form_needs_the_short_answer() -> None:
    golds = ["8万人"]
    assert strict_hit(golds, "short", "8万人", "城镇新增就业8万人")
    assert not strict_hit(golds, "short", "", "城镇新增就业8万人")       # the sentence does not count
    assert not strict_hit(golds, "short", "8万", "城镇新增就业8万人")     # partial
    assert not strict_hit(golds, "short", "18万人")                     # number boundary
    assert not strict_hit(golds, "short", "8万人", not_found=True)
    # list/explain: the sentence or summary counts
    assert strict_hit(["全链条改造"], "explain", "", "进行全方位、全角度、全链条改造")
    assert strict_hit(["全链条改造"], "explain", "", "", ["其一。", "全链条改造。"])
    assert not strict_hit(["全链条改造"], "explain", "", "别的句子")


def test_list_recall_share_of_elements() -> None:
    elements = ["华为", "百度", "科大讯飞", "阿里云"]
    assert list_recall(elements, "", "依托华为、百度等龙头企业") == 0.5
    assert list_recall(elements, "", "", ["华为、百度", "科大讯飞和阿里云"]) == 1.0
    assert list_recall(elements, "", "华为", not_found=True) == 0.0
    assert list_recall([], "", "华为") is None


def test_confident_wrong_rules() -> None:
    assert confident_wrong(True, "short", hit=False, short_answer="128张", not_found=False)
    assert not confident_wrong(True, "short", hit=False, short_answer="", not_found=False)   # a miss, not confident
    assert not confident_wrong(True, "short", hit=True, short_answer="2000张", not_found=False)
    assert not confident_wrong(True, "short", hit=False, short_answer="128张", not_found=True)
    assert confident_wrong(False, "short", hit=False, short_answer="", not_found=False)      # unanswerable answered
    assert not confident_wrong(False, "short", hit=False, short_answer="", not_found=True)
    assert confident_wrong(True, "list", hit=False, short_answer="", not_found=False, recall=0.0)
    assert not confident_wrong(True, "list", hit=False, short_answer="", not_found=False, recall=0.5)


def _item(id_: str, q: str, answers: list[str], qtype: str = "number", **kw) -> GoldItem:
    ev = [f"证据{''.join(answers)}"] if answers else []
    return GoldItem(id_, q, answers, ev, ["d.txt"] if answers else [], qtype, kw.pop("lang", "zh"), **kw)


class HistoryAssistant:
    """Answers by (history, question), recording the history it was given."""

    def __init__(self, answers: dict[tuple[tuple[str, ...], str], Answer]) -> None:
        self.answers = answers
        self.seen: list[tuple[tuple[str, ...], str]] = []

    def ask(self, question: str, history=None, k: int = 10) -> Answer:
        key = (tuple(history or ()), question)
        self.seen.append(key)
        return self.answers[key]


def _ans(q: str, short: str = "", sentence: str = "", not_found: bool = False, summary=()) -> Answer:
    return Answer(question=q, rewritten_query=q, short_answer=short, sentence=sentence, not_found=not_found,
                  summary=[SummarySentence(s, 1) for s in summary])


def test_evaluator_strict_numbers_splits_and_followups(tmp_path: Path) -> None:
    items = [
        _item("a", "2025年养老床位多少张?", ["2000张"], split="test"),
        _item("b", "那2022年呢?", ["45辆"], history=["2025年养老床位多少张?"], split="test"),
        _item("c", "哪些企业?", ["华为、百度"], "list", elements=["华为", "百度"], split="test"),
        _item("d", "2023年呢?", [], "none", history=["2025年养老床位多少张?"], split="test"),
        _item("e", "How many beds?", ["2000张", "2,000"], "en", lang="en", split="test"),
        _item("f", "fit item", ["3所"], split="fit"),
    ]
    fake = HistoryAssistant({
        ((), "2025年养老床位多少张?"): _ans("q", "2000张", "新增养老床位2000张"),     # strict hit
        (("2025年养老床位多少张?",), "那2022年呢?"): _ans("q", "145辆", "救护车145辆"),  # confident wrong
        ((), "哪些企业?"): _ans("q", "", "依托华为等龙头企业"),                         # list recall 0.5, miss
        (("2025年养老床位多少张?",), "2023年呢?"): _ans("q", "2000张", "x"),           # should have refused
        ((), "How many beds?"): _ans("q", "", "新增养老床位2000张"),                    # no short answer: miss
        ((), "fit item"): _ans("q", "3所", "建3所"),
    })
    ev = GoldEvaluator(items, show_progress_bar=False, warmup=0)
    result = ev.evaluate(fake)
    assert (("2025年养老床位多少张?",), "那2022年呢?") in fake.seen          # history passed to ask
    test = result["overall"]
    assert result["split"] == "test" and test["n"] == 5
    assert test["short_answer_hit"] == 0.25           # 1 of 4 answerable test items
    assert test["answer_hit"] == 0.75                 # lenient: a, b ("45辆" inside "145辆") and e (sentence)
    assert test["list_recall"] == 0.5
    assert test["confident_wrong_rate"] == 0.4        # b (wrong figure) and d (answered an unanswerable) of 5
    assert test["refusal_accuracy"] == 0.0
    assert result["followup"]["n"] == 2 and result["followup"]["confident_wrong_rate"] == 1.0
    assert result["by_lang"]["en"]["short_answer_hit"] == 0.0
    assert result["by_type"]["number"]["confident_wrong_rate"] == 0.5
    assert result["splits"]["fit"]["overall"]["short_answer_hit"] == 1.0
    assert result["splits"]["all"]["overall"]["n"] == 6
    report = write_markdown(result, tmp_path / "r.md").read_text(encoding="utf-8")
    assert "## test split" in report and "wrong short answer" in report and "answered, should refuse" in report
    assert "2025年养老床位多少张? → 那2022年呢?" in report
    assert "| f |" not in report                      # fit items are not listed among the test misses


def test_score_gold_item_strict_fields() -> None:
    item = _item("x", "q", ["8万人"])
    r = score_gold_item(item, _ans("q", "18万人", "城镇新增就业18万人"), 1.0)
    assert r.answer_hit is True   # the old lenient rule: "8万人" is a substring of "18万人"
    assert r.strict_hit is False and r.confident_wrong is True
    r = score_gold_item(item, _ans("q", "8万人"), 1.0)
    assert r.strict_hit and not r.confident_wrong
    assert aggregate([r])["confident_wrong_rate"] == 0.0


def _write(path: Path, objs: list[dict]) -> None:
    path.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs), encoding="utf-8")


def test_split_is_deterministic_stratified_and_sealed(tmp_path: Path) -> None:
    objs = [{"id": f"n{i}", "question": f"q{i}", "answers": [], "evidence": [], "doc": [], "type": "none",
             "lang": "zh"} for i in range(10)]
    objs += [{"id": f"e{i}", "question": f"e{i}", "answers": [], "evidence": [], "doc": [], "type": "none",
              "lang": "en", "history": ["h"]} for i in range(4)]
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    _write(a, objs)
    _write(b, list(reversed(objs)))
    assert assign_splits(a) == {"fit": 7, "test": 7}
    assign_splits(b)
    split_a = {it.id: it.split for it in load_gold(a)}
    assert split_a == {it.id: it.split for it in load_gold(b)}      # depends on the ids only
    items = load_gold(a)
    assert sum(1 for it in items if it.lang == "en" and it.split == "test") == 2   # stratified
    # Sealed: new items are assigned, existing ones never move.
    objs2 = [json.loads(line) for line in a.read_text(encoding="utf-8").splitlines()]
    objs2.append({"id": "new", "question": "qn", "answers": [], "evidence": [], "doc": [], "type": "none",
                  "lang": "zh"})
    _write(a, objs2)
    assert sum(assign_splits(a).values()) == 1
    assert {it.id: it.split for it in load_gold(a) if it.id != "new"} == split_a
    assert len(select_split(load_gold(a), "fit")) + len(select_split(load_gold(a), "test")) == 15


def test_bundled_gold_is_split_and_strict() -> None:
    items = load_gold(ROOT / "data" / "gold" / "taiyuan_gold.jsonl")
    assert all(it.split in ("fit", "test") for it in items)
    assert sum(1 for it in items if it.history) >= 30
    for it in items:  # no partial alternative: no answer is a piece of another (English variants aside)
        for a in it.answers:
            assert not any(a != b and a in b and it.type != "en" for b in it.answers), (it.id, a)


def test_qa_never_imports_eval() -> None:
    for path in (ROOT / "qa").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            assert not any(n == "eval" or n.startswith("eval.") for n in names), f"{path} imports {names}"
