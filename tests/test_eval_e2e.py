"""End-to-end checks of the evaluation harness with the real model and index (slow)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval import GoldEvaluator, METRIC_KEYS, load_gold, run_squad
from eval.metrics import check_thresholds
from eval.report import write_markdown

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "data" / "gold" / "taiyuan_gold.jsonl"

pytestmark = pytest.mark.slow


def test_gold_evaluator_real_assistant(assistant, tmp_path: Path) -> None:
    items = load_gold(GOLD)
    sample = [it for it in items if it.type == "number"][:4] + [it for it in items if it.type == "none"][:2]
    ev = GoldEvaluator(sample, show_progress_bar=False, split="all")
    metrics = ev(assistant)
    assert tuple(metrics) == METRIC_KEYS and metrics["n"] == 6
    assert ev.last_result["splits"]["test"]["overall"]["n"] + ev.last_result["splits"]["fit"]["overall"]["n"] == 6
    assert metrics["recall@10"] >= 0.5  # figures of the 2021 report are found
    result = ev.last_result
    assert result["by_type"]["none"]["recall@5"] is None
    assert result["meta"]["model"] and len(result["items"]) == 6
    json.dumps(result)  # JSON-serialisable
    report = write_markdown(result, tmp_path / "r.md")
    assert report.with_suffix(".png").stat().st_size > 1000
    assert check_thresholds(result, {"overall": {"recall@10": 0.0}}) == []


def test_squad_open_retrieval_tiny(embedder, tmp_path: Path) -> None:
    data = {"data": [{"title": "城市", "paragraphs": [
        {"id": "P0", "context": "太原市位于山西省中部，是山西省的省会，古称晋阳。",
         "qas": [{"id": "Q0", "question": "太原古称什么？", "answers": [{"text": "晋阳", "answer_start": 21}]}]},
        {"id": "P1", "context": "大同市位于山西省北部，以云冈石窟闻名，是国家历史文化名城。",
         "qas": [{"id": "Q1", "question": "大同以什么石窟闻名？", "answers": [{"text": "云冈石窟", "answer_start": 12}]}]},
        {"id": "P2", "context": "汾河是黄河的第二大支流，流经太原城区，全长约七百公里。",
         "qas": [{"id": "Q2", "question": "汾河是哪条河的支流？", "answers": [{"text": "黄河", "answer_start": 3}]}]},
    ]}]}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = run_squad(path, embedder=embedder, show_progress_bar=False)
    overall = result["overall"]
    assert tuple(overall) == METRIC_KEYS and overall["n"] == 3
    assert overall["recall@10"] == 1.0  # only three paragraphs: each question's own is retrieved
    assert overall["refusal_accuracy"] is None
    assert result["meta"]["paragraphs"] == 3
