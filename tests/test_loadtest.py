"""Load test harness: answer checks (fast) and a small concurrent run against ``python app.py`` (slow)."""
from __future__ import annotations

import shutil
import time

import pytest

from eval import loadtest
from eval.loadtest import check_answer, load_questions

from .conftest import GOLD

GOOD = {
    "answer": "2000张 — 新增养老床位2000张。[1]", "short_answer": "2000张", "sentence": "新增养老床位2000张。",
    "rewritten_query": "2025年太原新增养老床位多少张？", "not_found": False, "message": "",
    "citations": [{"n": 1, "text": "（三）民生。新增养老床位2000张。", "start": 6, "end": 18}],
}


def test_check_answer_accepts_answers_and_refusals():
    assert check_answer(GOOD) is None
    refusal = {**GOOD, "not_found": True, "citations": [], "answer": "资料中没有找到。", "message": "资料中没有找到。"}
    assert check_answer(refusal) is None


@pytest.mark.parametrize("change, problem", [
    ({"citations": []}, "without citations"),
    ({"sentence": "别的句子。"}, "citations[0]"),
    ({"not_found": "no"}, "boolean"),
    ({"short_answer": None}, "not a string"),
    ({"answer": "  "}, "empty answer"),
])
def test_check_answer_names_the_problem(change, problem):
    assert problem in check_answer({**GOOD, **change})
    assert "not a dict" in check_answer(["2000张"])


def test_questions_come_from_the_gold_file():
    qs = load_questions(GOLD)
    assert len(qs) >= 100 and all(isinstance(q, str) and q.strip() for q in qs)


@pytest.mark.slow
def test_concurrent_clients_get_well_formed_answers_without_errors(tmp_path, built_index):
    """4 clients × 5 questions through /ask of a real app.py subprocess over the session index."""
    from index.workspace import Workspace

    shutil.copytree(built_index, Workspace(tmp_path).path("taiyuan") / "index")  # a workspace as app.py finds it
    t0 = time.perf_counter()
    result = loadtest.run(clients=4, per_client=5, timeout=45, home=tmp_path,
                          start_timeout=90, progress=False)
    s = result["summary"]
    assert s["errors"] == 0, result["errors"]
    assert s["answered"] == 20 and len(result["requests"]) == 20
    assert all(r["error"] is None and r["ms"] > 0 for r in result["requests"])
    # The first gold questions are answerable: most must be answered, not refused.
    assert sum(not r["not_found"] for r in result["requests"]) >= 15
    assert s["throughput_qps"] > 0 and s["p50_ms"] <= s["p95_ms"] <= s["p99_ms"] <= s["max_ms"]
    assert time.perf_counter() - t0 < 120
