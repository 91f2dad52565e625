"""Stability (issue 13): adding 20 unrelated documents (CMRC 2018 trial paragraphs) to the bundled corpus
should leave the answers to the gold test split as they were, except where an added document is the source.

Measured (``python -m eval stability``): 11 of 186 answers change, 7 of them without a new source — English
questions whose feedback terms come from an added passage among the top dense hits, and near ties of
the re-ranker or of the short-answer choice shifted by the collection's idf. The identity the issue asks
for is a strict xfail until those are fixed; the bound keeps it from getting worse.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from eval.gold import DEFAULT_GOLD, load_gold, select_split
from eval.stability import extra_documents, measure_stability

pytestmark = pytest.mark.slow
CMRC = Path(__file__).resolve().parent.parent / "data" / "datasets" / "cmrc2018" / "cmrc2018_trial.json"
MAX_SAME_SOURCE_CHANGES = 8  # measured 7 (README "Collections"); target 0


@pytest.fixture(scope="module")
def stability(embedder, tmp_path_factory) -> dict:
    items = select_split(load_gold(DEFAULT_GOLD), "test")
    result = measure_stability(items, extra_documents(CMRC, 20), embedder=embedder, progress=False,
                               workdir=tmp_path_factory.mktemp("stability"))
    assert result["overall"]["n"] == len(items) and result["overall"]["added_documents"] == 20
    return result


def _same_source(result: dict) -> list[dict]:
    return [c for c in result["changes"] if not c["new_source"]]


def test_unrelated_documents_change_few_answers(stability: dict) -> None:
    changed = _same_source(stability)
    assert len(changed) <= MAX_SAME_SOURCE_CHANGES, [c["id"] for c in changed]


@pytest.mark.xfail(strict=True, reason="7 answers still change without a new source (cross-lingual feedback terms, "
                                       "idf-shifted near ties): issue 13 note")
def test_unrelated_documents_change_no_answer(stability: dict) -> None:
    assert _same_source(stability) == []
