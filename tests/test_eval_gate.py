"""CI gate: the whole gold set through the real Assistant must meet eval/thresholds.json."""
from __future__ import annotations

import json

import pytest

from eval import GoldEvaluator, load_gold
from eval.metrics import check_thresholds

from .conftest import GOLD, ROOT

pytestmark = pytest.mark.slow


def test_gold_set_meets_thresholds(assistant):
    thresholds = json.loads((ROOT / "eval" / "thresholds.json").read_text(encoding="utf-8"))
    evaluator = GoldEvaluator(load_gold(GOLD), show_progress_bar=False, warmup=3)
    evaluator(assistant)
    failures = check_thresholds(evaluator.last_result, thresholds)
    assert failures == [], "metrics fell below eval/thresholds.json:\n" + "\n".join(failures)
