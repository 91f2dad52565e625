"""Fast tests of the evaluation harness's metrics (no model, no index)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.__main__ import main
from qa.spanmetrics import cmrc_em, cmrc_f1, mixed_segmentation
from eval.gold import GoldItem, load_gold, GoldFormatError, validate_gold
from eval.metrics import (
    METRIC_KEYS, ItemResult, ThresholdError, aggregate, answer_hit, check_thresholds, contains_evidence,
    first_hit_rank, group_by_type, mrr_at_k, percentile, recall_at_k, supports,
)
from eval.runner import GoldEvaluator, score_gold_item
from eval.squad import SquadQuestion, load_squad, replace_questions, score_squad_item, write_corpus
from qa.types import Answer, Citation, Hit, SummarySentence
from index.types import Passage

EVIDENCE_40 = "一二三四五六七八九十甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥春夏秋冬东南西北"  # 40 chars


def passage(text: str, doc: str = "d.txt", pid: str = "p") -> Passage:
    return Passage(id=pid, doc_id=doc, title="t", date="", year=None, section="", text=text, start=0,
                   end=len(text), ordinal=0)


def citation(text: str, n: int = 1, doc: str = "d.txt") -> Citation:
    return Citation(n=n, passage_id=f"p{n}", doc_id=doc, title="t", date="", section="", text=text, start=0,
                    end=len(text), doc_start=0)


# --- evidence hits -------------------------------------------------------------------------------
def test_evidence_hit_ignores_whitespace() -> None:
    text = "二、目标\n城镇新增就业 8万人,\n居民消费价格涨幅2%左右。"
    assert contains_evidence(text, "城镇新增就业8万人,居民消费价格涨幅2%左右")
    assert contains_evidence("城镇新增就业8万人", "城镇 新增\t就业 8万人")
    assert not contains_evidence(text, "城镇新增就业9万人")
    assert not contains_evidence(text, "   ")


def test_evidence_30_char_rule() -> None:
    assert len(EVIDENCE_40) == 40
    tail30 = EVIDENCE_40[10:]
    tail29 = EVIDENCE_40[11:]
    assert contains_evidence("开头" + tail30 + "结尾", EVIDENCE_40)          # 30 consecutive chars: hit
    assert contains_evidence(" ".join(tail30), EVIDENCE_40)                   # ... whitespace-insensitive
    assert not contains_evidence("开头" + tail29 + "结尾", EVIDENCE_40)       # 29: no hit
    assert not contains_evidence(EVIDENCE_40[:15] + "|" + EVIDENCE_40[15:], EVIDENCE_40)  # split, no 30-run
    short = EVIDENCE_40[:20]  # < 30 chars: must appear whole
    assert contains_evidence("x" + short + "y", short)
    assert not contains_evidence(short[:19], short)


def test_first_hit_rank_recall_mrr() -> None:
    texts = ["无关", "也无关", "这里有城镇新增就业8万人的说法"]
    assert first_hit_rank(texts, ["城镇新增就业8万人"]) == 3
    assert first_hit_rank(texts, ["不存在", "无关"]) == 1
    assert first_hit_rank(texts, ["不存在"]) is None
    ranks = [1, 3, None, 7]
    assert recall_at_k(ranks, 1) == 0.25
    assert recall_at_k(ranks, 5) == 0.5
    assert recall_at_k(ranks, 10) == 0.75
    assert mrr_at_k(ranks, 10) == pytest.approx((1 + 1 / 3 + 0 + 1 / 7) / 4)
    assert mrr_at_k([11], 10) == 0.0
    assert recall_at_k([], 5) is None


# --- CMRC 2018 EM / F1 ---------------------------------------------------------------------------
def test_cmrc_f1_em_by_hand() -> None:
    # "2000张" -> ["2000", "张"], "2000" -> ["2000"]: LCS 1, P = 1/2, R = 1, F1 = 2/3
    assert mixed_segmentation("2000张", rm_punc=True) == ["2000", "张"]
    assert cmrc_f1(["2000"], "2000张") == pytest.approx(2 / 3)
    assert cmrc_em(["2000"], "2000张") == 0.0
    assert cmrc_em(["2000张", "2000"], "2000") == 1.0
    assert cmrc_f1(["2000张", "2000"], "2000") == 1.0
    # official punctuation is removed for EM and F1 (full-width quotes, 、) but "%" and "," are not
    assert cmrc_em(["无废城市"], "“无废城市”") == 1.0
    assert cmrc_f1(["水塔醋业、紫林醋业"], "水塔醋业") == pytest.approx(2 / 3)  # LCS 4, P 1, R 4/8
    # the LCS is contiguous: 太原 is common but 市 is not adjacent -> LCS 2 of (3, 4) tokens
    assert cmrc_f1(["太原市"], "太原的市") == pytest.approx(2 * (2 / 4) * (2 / 3) / (2 / 4 + 2 / 3))
    # English runs are word tokens, lower-cased; "80,000" stays one token
    assert cmrc_f1(["80,000"], "80,000 People") == pytest.approx(2 / 3)
    assert cmrc_em(["Taiyuan"], "taiyuan") == 1.0
    assert cmrc_f1(["6.6%"], "6.6%") == 1.0
    assert cmrc_f1(["2000"], "") == 0.0 and cmrc_em(["2000"], "") == 0.0
    assert cmrc_f1(["2000"], "三千") == 0.0


# --- answer hit ----------------------------------------------------------------------------------
def test_answer_hit_rules() -> None:
    assert answer_hit(["8万人"], "8 万人")
    assert not answer_hit(["8万人"], "9万人", sentence="城镇新增就业8万人")  # short answer given: only it counts
    assert answer_hit(["8万人"], "", sentence="城镇新增就业8万人")
    assert answer_hit(["六味斋"], "", sentence="水塔醋业等企业入选", summary=["紫林醋业、", "六味斋入选"])
    assert not answer_hit(["8万人"], "8万人", not_found=True)
    assert not answer_hit([], "8万人")


# --- aggregation: refusal, citation precision, latency -------------------------------------------
def _results() -> list[ItemResult]:
    return [
        ItemResult("a", "number", True, rank=1, answer_hit=True, em=1.0, f1=1.0, cited_ok=1, cited_total=1,
                   latency_ms=100),
        ItemResult("b", "number", True, rank=None, not_found=True, latency_ms=200),
        ItemResult("c", "list", True, rank=4, answer_hit=True, f1=0.5, cited_ok=1, cited_total=3, latency_ms=300),
        ItemResult("d", "none", False, not_found=True, latency_ms=50),
        ItemResult("e", "none", False, not_found=False, confident_wrong=True, latency_ms=60),
    ]


def test_aggregate_overall_and_refusal() -> None:
    m = aggregate(_results())
    assert tuple(m) == METRIC_KEYS
    assert m["n"] == 5
    assert m["recall@1"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["recall@5"] == pytest.approx(2 / 3, abs=1e-4)
    assert m["mrr@10"] == pytest.approx((1 + 0.25) / 3, abs=1e-4)
    assert m["answer_hit"] == pytest.approx(2 / 3, abs=1e-4)
    assert m["em"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["f1"] == 0.5
    assert m["refusal_accuracy"] == 0.5           # d refused, e answered
    assert m["confident_wrong_rate"] == 0.2       # e, over all five items
    assert m["false_refusal_rate"] == pytest.approx(1 / 3, abs=1e-4)  # b
    assert m["citation_precision"] == 0.5         # (1 + 1) of (1 + 3) cited passages
    assert m["latency_ms_p50"] == 200.0           # answerable items only
    assert m["latency_ms_p95"] == 290.0


def test_by_type_none_only_refusal() -> None:
    by_type = group_by_type(_results(), ("number", "list", "none"))
    assert list(by_type) == ["number", "list", "none"]
    none = by_type["none"]
    assert none["n"] == 2 and none["refusal_accuracy"] == 0.5
    assert all(none[k] is None for k in METRIC_KEYS if k not in ("n", "refusal_accuracy", "confident_wrong_rate"))
    assert none["confident_wrong_rate"] == 0.5  # the unanswerable item that was answered
    assert by_type["number"]["refusal_accuracy"] is None
    assert by_type["number"]["false_refusal_rate"] == 0.5
    assert by_type["list"]["citation_precision"] == pytest.approx(1 / 3, abs=1e-4)


def test_percentile_linear() -> None:
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)
    assert percentile([], 50) is None


def test_citation_support_rule() -> None:
    assert supports("……完成营造林 46万亩……", evidence=["别的证据"], answers=["46万亩"])
    assert supports("开头" + EVIDENCE_40[:30], evidence=[EVIDENCE_40], answers=[])
    assert not supports("开头" + EVIDENCE_40[:29], evidence=[EVIDENCE_40], answers=["不在"])


def test_score_gold_item_from_answer() -> None:
    item = GoldItem("g1", "2025年新增就业多少?", ["8万人"], ["城镇新增就业8万人,居民消费价格涨幅2%左右"], ["d.txt"],
                    "number", "zh")
    answer = Answer(question=item.question, rewritten_query=item.question, short_answer="8万人",
                    sentence="城镇新增就业8万人。",
                    citations=[citation("城镇新增就业 8万人,居民消费价格涨幅2%左右。", 1), citation("无关内容", 2)],
                    hits=[Hit(passage("无关"), 1.0), Hit(passage("城镇新增就业8万人,居民消费价格涨幅2%左右。"), 0.5)])
    r = score_gold_item(item, answer, 12.0)
    assert (r.rank, r.answer_hit, r.em, r.f1, r.cited_ok, r.cited_total) == (2, True, 1.0, 1.0, 1, 2)
    none = GoldItem("g2", "地铁2号线多长?", [], [], [], "none", "zh")
    refused = score_gold_item(none, Answer(question="q", rewritten_query="q", not_found=True), 5.0)
    assert refused.not_found and not refused.answerable and refused.cited_total == 0
    d = r.to_dict()
    assert d["first_hit_rank"] == 2 and d["short_answer"] == "8万人"


class FakeAssistant:
    """Answers questions from a dict (stands in for the real Assistant)."""

    def __init__(self, answers: dict[str, Answer]) -> None:
        self.answers = answers

    def ask(self, question: str, history=None, k: int = 10) -> Answer:
        return self.answers[question]


def test_gold_evaluator_callable() -> None:
    items = [GoldItem("g1", "q1", ["46万亩"], ["完成营造林46万亩"], ["d.txt"], "number", "zh"),
             GoldItem("g2", "q2", [], [], [], "none", "zh")]
    fake = FakeAssistant({
        "q1": Answer("q1", "q1", short_answer="", sentence="", summary=[SummarySentence("完成营造林46万亩。", 1)],
                     citations=[citation("完成营造林46万亩。")], hits=[Hit(passage("完成营造林46万亩。"), 1.0)]),
        "q2": Answer("q2", "q2", not_found=True),
    })
    ev = GoldEvaluator(items, show_progress_bar=False, warmup=0)
    assert ev.primary_metric == "short_answer_hit"
    m = ev(fake)
    assert m["recall@1"] == 1.0 and m["answer_hit"] == 1.0 and m["f1"] == 0.0 and m["refusal_accuracy"] == 1.0
    # Strict: a figure question answered without a short answer is a miss (the lenient hit counted it).
    assert m["short_answer_hit"] == 0.0 and m["confident_wrong_rate"] == 0.0
    assert set(ev.last_result) == {"overall", "by_type", "by_lang", "followup", "split", "splits", "items", "meta"}
    assert ev.last_result["split"] == "all"  # items without a split


# --- SQuAD-format scoring ------------------------------------------------------------------------
def test_squad_load_and_score(tmp_path: Path) -> None:
    data = {"data": [{"title": "T", "paragraphs": [
        {"id": "P0", "context": "甲乙丙。", "qas": [{"id": "Q0", "question": "什么?", "answers": [{"text": "乙丙"}]}]},
        {"id": "P/1", "context": "丁戊。", "qas": [{"id": "Q1", "question": "何?", "answers": [{"text": "丁"}]}]},
    ]}]}
    f = tmp_path / "s.json"
    f.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    sd = load_squad(f)
    assert list(sd.paragraphs) == ["P0.txt", "P_1.txt"]
    assert [q.doc_id for q in sd.questions] == ["P0.txt", "P_1.txt"]
    corpus = write_corpus(sd, tmp_path / "corpus")
    assert (corpus / "P0.txt").read_text(encoding="utf-8") == "甲乙丙。"
    en = tmp_path / "en.json"
    en.write_text(json.dumps({"data": [{"paragraphs": [{"context": "x", "qas": [{"id": "Q1", "question": "What?"}]}]}]}))
    swapped = replace_questions(sd.questions, en)
    assert [(q.id, q.question, q.answers) for q in swapped] == [("Q1", "What?", ["丁"])]

    q = SquadQuestion("Q0", "什么?", ["乙丙"], "P0.txt")
    ans = Answer("q", "q", short_answer="乙丙", sentence="甲乙丙。",
                 citations=[citation("甲乙丙。", 1, "P0.txt"), citation("丁戊。", 2, "P_1.txt")],
                 hits=[Hit(passage("丁戊。", "P_1.txt"), 1.0), Hit(passage("甲乙丙。", "P0.txt"), 0.9)])
    r = score_squad_item(q, ans, 3.0)
    assert (r.rank, r.answer_hit, r.em, r.cited_ok, r.cited_total) == (2, True, 1.0, 1, 2)
    m = aggregate([r])
    assert m["refusal_accuracy"] is None and m["false_refusal_rate"] == 0.0 and m["citation_precision"] == 0.5


def test_squad_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    assert main(["squad", "--data", str(bad)]) == 2
    assert main(["squad", "--data", str(tmp_path / "missing.json")]) == 2


# --- thresholds ----------------------------------------------------------------------------------
def test_check_thresholds() -> None:
    result = {"overall": aggregate(_results()), "by_type": group_by_type(_results())}
    ok = {"overall": {"recall@5": 0.6}, "by_type": {"number": {"recall@1": 0.5}},
          "max": {"overall": {"false_refusal_rate": 0.4, "latency_ms_p95": 1000}}}
    assert check_thresholds(result, ok) == []
    bad = {"overall": {"recall@5": 0.7, "recall@1": 0.3}, "by_type": {"list": {"recall@1": 0.1}, "time": {"f1": 0.1}},
           "max": {"overall": {"false_refusal_rate": 0.3}, "by_type": {"number": {"latency_ms_p95": 100}}}}
    failures = check_thresholds(result, bad)
    assert len(failures) == 5
    assert any("overall recall@5" in f and "below min 0.7" in f for f in failures)
    assert any("by_type list recall@1 = 0.0 below min 0.1" in f for f in failures)
    assert any("by_type time" in f and "no such type" in f for f in failures)
    assert any("false_refusal_rate" in f and "above max 0.3" in f for f in failures)
    assert any("by_type number latency_ms_p95" in f and "above max 100" in f for f in failures)
    none_only = {"by_type": {"none": {"recall@5": 0.5}}}
    assert check_thresholds(result, none_only) == ["by_type none recall@5: not measured (threshold min 0.5)"]
    with pytest.raises(ThresholdError):
        check_thresholds(result, {"overall": {"recal@5": 0.5}})
    with pytest.raises(ThresholdError):
        check_thresholds(result, {"overal": {}})


def test_thresholds_file_committed_is_well_formed() -> None:
    path = Path(__file__).resolve().parent.parent / "eval" / "thresholds.json"
    if not path.exists():
        pytest.skip("eval/thresholds.json not created yet")
    data = json.loads(path.read_text(encoding="utf-8"))
    check_thresholds({"overall": {}, "by_type": {}}, data)  # raises on unknown metrics/sections


# --- validate ------------------------------------------------------------------------------------
DOC = "一、回顾\n2020年,城镇新增就业 8万人,居民消费价格涨幅2%左右。\n完成营造林46万亩,筑牢绿色生态屏障。\n"


def _write(tmp_path: Path, rows: list) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    (corpus / "a.txt").write_text(DOC, encoding="utf-8")
    f = tmp_path / "gold.jsonl"
    f.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows) + "\n",
                 encoding="utf-8")
    return f


GOOD = [
    {"id": "1", "question": "新增就业多少?", "answers": ["8万人"], "evidence": ["城镇新增就业8万人,居民消费价格"],
     "doc": ["a.txt"], "type": "number", "lang": "zh"},
    {"id": "2", "question": "How many mu of forest?", "answers": ["46万亩", "460,000 mu"],
     "evidence": ["完成营造林 46万亩"], "doc": ["a.txt"], "type": "en", "lang": "en"},
    {"id": "3", "question": "地铁2号线多长?", "answers": [], "evidence": [], "doc": [], "type": "none", "lang": "zh"},
]


def test_validate_good(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    f = _write(tmp_path, GOOD)
    report = validate_gold(f, tmp_path / "corpus")
    assert report.ok and report.n == 3 and report.by_type == {"number": 1, "en": 1, "none": 1}
    assert main(["validate", str(f), "--corpus", str(tmp_path / "corpus")]) == 0
    assert "3 items" in capsys.readouterr().out
    assert len(load_gold(f)) == 3


def test_validate_bad(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rows = [
        GOOD[0],
        dict(GOOD[0], question="重复 id"),                                           # duplicate id
        dict(GOOD[0], id="4", type="trivia"),                                         # bad type
        dict(GOOD[0], id="5", lang="fr"),                                             # bad lang
        dict(GOOD[0], id="6", evidence=["城镇新增就业9万人"]),                        # evidence not in doc
        dict(GOOD[0], id="7", answers=["8万人", "八万"]),                             # answer outside evidence
        dict(GOOD[1], id="8", answers=["460,000 mu"]),                                # en: no answer in evidence
        dict(GOOD[2], id="9", answers=["x"]),                                         # none with an answer
        dict(GOOD[0], id="10", doc=["missing.txt"]),                                  # missing document
        "{broken json",
    ]
    f = _write(tmp_path, rows)
    report = validate_gold(f, tmp_path / "corpus")
    text = "\n".join(report.failures)
    assert not report.ok
    for needle in ("duplicate id", "type 'trivia'", "lang 'fr'", "evidence not found", "answer '八万'",
                   "'en' item", "type 'none' must have empty 'answers'", "'missing.txt' not found", "invalid JSON"):
        assert needle in text, needle
    assert main(["validate", str(f), "--corpus", str(tmp_path / "corpus")]) == 1
    assert "FAILED" in capsys.readouterr().err
    with pytest.raises(GoldFormatError):
        load_gold(f)
    assert main(["validate", str(tmp_path / "nope.jsonl")]) == 2
