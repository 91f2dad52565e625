"""Profiling and channel-cost tooling: stage attribution, a real profile run, the channel benchmark."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from eval.profile import stage_table, stage_times

from .conftest import GOLD


def _frame(cls, fn, t, children=()):
    return SimpleNamespace(class_name=cls, function=fn, time=t, children=list(children))


def test_stage_times_are_exclusive_and_sum_to_the_total():
    enc = _frame("Embedder", "encode_queries", 8.0, [_frame(None, "linear", 7.5)])
    dense = _frame("HybridRetriever", "_dense", 9.0, [enc])
    search = _frame("HybridRetriever", "search", 10.0, [dense])
    ask = _frame("Assistant", "ask", 12.0, [search, _frame(None, "rank_sentences", 1.0)])
    root = _frame(None, "<module>", 12.5, [ask])
    times = stage_times(root)
    assert times["query encoding (e5 forward pass)"] == pytest.approx(8.0)  # nested model time included
    assert times["dense passage search (FAISS)"] == pytest.approx(1.0)  # its own time only
    assert times["fusion and year features"] == pytest.approx(1.0)
    assert times["answer: sentence scoring"] == pytest.approx(1.0)
    assert times["other (validation, filters, answer assembly)"] == pytest.approx(1.0)
    assert times["outside ask"] == pytest.approx(0.5)
    assert sum(times.values()) == pytest.approx(12.5)
    table = stage_table(times, n_questions=2)
    assert "| query encoding (e5 forward pass) | 4000.00 | 66.7% |" in table
    assert "outside ask" not in table


@pytest.mark.slow
def test_profile_of_real_asks_names_query_encoding(assistant):
    pytest.importorskip("pyinstrument")
    from eval.profile import run_profile

    table, tree, fig = run_profile(gold_path=GOLD, limit=4, assistant=assistant)
    assert fig["questions"] == 4 and fig["samples"] > 0
    assert fig["stages_ms"]["query encoding (e5 forward pass)"] > 0
    assert "Assistant.ask" in tree and "| **total** |" in table


def test_channel_benchmark_reports_pushed_down_filters():
    from eval.channels import measure, to_markdown

    row = measure(400, queries=3, per=3, candidates=20, filter_share=0.1, progress=False)
    assert row["passages"] == 400 and row["sentences"] > 400
    for key in ("sentence_channel_ms", "sentence_matvec_ms", "sentence_faiss_flat_ms", "filter_after_ms",
                "filter_pushed_ms"):
        assert row[key] >= 0
    assert "| 400 |" in to_markdown([row])
