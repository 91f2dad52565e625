"""Evaluation harness for Wenda: gold-set and SQuAD-format evaluators, benchmark, reports.

Run ``python -m eval --help``. Library use::

    from eval import GoldEvaluator, load_gold
    metrics = GoldEvaluator(load_gold("data/gold/taiyuan_gold.jsonl"))(assistant)
    metrics["recall@5"]
"""
from .gold import GoldFormatError, GoldItem, load_gold, validate_gold
from .metrics import METRIC_KEYS, ItemResult, aggregate, check_thresholds
from .runner import GoldEvaluator
from .squad import SquadEvaluator, load_squad, run_squad

__all__ = [
    "GoldEvaluator", "SquadEvaluator", "GoldFormatError", "GoldItem", "ItemResult", "METRIC_KEYS",
    "aggregate", "check_thresholds", "load_gold", "load_squad", "run_squad", "validate_gold",
]
