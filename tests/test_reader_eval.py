"""The reader's evaluation breakdown (qa.reader.span_relation / breakdown): pure functions, no model."""
from __future__ import annotations

import pytest

from qa.reader import RELATIONS, breakdown, span_relation


@pytest.mark.parametrize("pred, gold, want", [
    ((3, 7), (3, 7), "exact"),
    ((2, 9), (3, 7), "pred_contains_gold"),
    ((4, 6), (3, 7), "gold_contains_pred"),
    ((3, 5), (3, 7), "gold_contains_pred"),
    ((5, 9), (3, 7), "overlap"),
    ((7, 9), (3, 7), "disjoint"),  # end offsets are exclusive: touching is not overlapping
    (None, (3, 7), "no_prediction"),
    ((4, 4), (3, 7), "no_prediction"),
])
def test_span_relation(pred, gold, want):
    assert span_relation(pred, gold) == want


def test_breakdown_buckets_by_gold_length_and_counts_relations():
    ctx = "茨柏克沃斯基于1981年进入微软公司任职。"
    clause = "茨柏克沃斯基于1981年进入微软公司任职。"  # CMRC-style clause answer (21 characters)
    records = [
        {"answers": [("1981年", 7)], "pred": "1981年", "start": 7, "end": 12},
        {"answers": [(clause, 0)], "pred": "1981年", "start": 7, "end": 12},
        {"answers": [("微软公司", 14)], "pred": "", "start": -1, "end": -1},
    ]
    assert ctx[7:12] == "1981年" and ctx[14:18] == "微软公司"
    r = breakdown(records)
    assert r["n"] == 3 and r["em"] == pytest.approx(100 / 3, abs=0.01)
    assert r["by_gold_length"]["1-5"] == {"n": 2, "em": 50.0, "f1": 50.0}
    assert r["by_gold_length"]["21-40"]["n"] == 1 and r["by_gold_length"]["21-40"]["em"] == 0.0
    # official F1 of "1981年" against the clause: 2 of 17 tokens (the full stop is dropped), precision 1
    assert r["by_gold_length"]["21-40"]["f1"] == pytest.approx(100 * 2 * (2 / 17) / (1 + 2 / 17), abs=0.01)
    assert set(r["relations"]) == set(RELATIONS)
    assert r["relations"]["exact"] == 1 and r["relations"]["gold_contains_pred"] == 1
    assert r["relations"]["no_prediction"] == 1
    assert r["median_gold_chars"] == 5.0


def test_breakdown_lists_buckets_from_short_to_long():
    recs = [{"answers": [("x" * n, 0)], "pred": "x", "start": 0, "end": 1} for n in (70, 3, 15, 8)]
    assert list(breakdown(recs)["by_gold_length"]) == ["1-5", "6-10", "11-20", ">60"]
