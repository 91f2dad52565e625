"""Fitted parameters carry what they were fitted on and load only where that matches (no model)."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from eval.fit import Sample, cv_weights
from index.profile import FITTED_NAME, read_fitted
from qa.profile import fingerprint, load_fitted, mismatch, write_fitted
from qa.rerank import FEATURES, RerankWeights

MANIFEST = {"model": {"id": "e5", "sha256": "abc"},
            "documents": {"a.txt": {"sha256": "1"}, "b.txt": {"sha256": "2"}}}


def _fitted(tmp_path: Path, manifest: dict = MANIFEST) -> dict | None:
    """Write parameters as ``python -m eval fit`` does and read them back as indexing does."""
    write_fitted({"weights": {"dense": 9.0}, "calibration": {"threshold": 0.42},
                  "fitted_on": {**fingerprint(manifest), "split": "fit"}}, tmp_path / FITTED_NAME)
    return read_fitted(tmp_path)


def test_fitted_parameters_load_when_they_match(tmp_path: Path) -> None:
    data = load_fitted(MANIFEST, _fitted(tmp_path))
    assert data is not None and data["calibration"]["threshold"] == 0.42
    assert RerankWeights.from_fitted(data).w["dense"] == 9.0
    # a document added since the fit does not invalidate it
    grown = {**MANIFEST, "documents": {**MANIFEST["documents"], "c.txt": {"sha256": "3"}}}
    assert load_fitted(grown, _fitted(tmp_path)) is not None


@pytest.mark.parametrize("manifest, reason", [
    ({**MANIFEST, "model": {"id": "other", "sha256": "abc"}}, "model"),
    ({**MANIFEST, "model": {"id": "e5", "sha256": "zzz"}}, "model"),
    ({**MANIFEST, "documents": {"a.txt": {"sha256": "1"}}}, "no longer holds"),
    ({**MANIFEST, "documents": {"a.txt": {"sha256": "1"}, "b.txt": {"sha256": "9"}}}, "changed"),
])
def test_mismatched_parameters_fall_back_to_defaults(tmp_path: Path, manifest: dict, reason: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    path = _fitted(tmp_path)
    assert reason in mismatch(fingerprint(MANIFEST), manifest)
    with caplog.at_level(logging.WARNING):
        assert load_fitted(manifest, path) is None
    assert "using the defaults" in caplog.text
    assert RerankWeights.from_fitted(None).w == RerankWeights().w


def test_parameters_without_provenance_are_not_loaded(tmp_path: Path) -> None:
    legacy = tmp_path / FITTED_NAME
    legacy.write_text('{"weights": {"dense": 9.0}, "fitted_on": "taiyuan_gold.jsonl"}', encoding="utf-8")
    assert load_fitted(MANIFEST, read_fitted(tmp_path)) is None
    assert read_fitted(tmp_path / "missing") is None and load_fitted(MANIFEST, None) is None
    legacy.write_text("{oops", encoding="utf-8")
    assert read_fitted(tmp_path) is None


def test_shipped_parameters_match_the_bundled_corpus() -> None:
    import json

    corpus = Path(__file__).resolve().parent.parent / "data" / "corpus" / "taiyuan"
    data = json.loads((corpus / FITTED_NAME).read_text(encoding="utf-8"))
    assert data["fitted_on"]["split"] == "fit" and data["fitted_on"]["gold_file"] == "taiyuan_gold.jsonl"
    import hashlib
    for name, sha in data["fitted_on"]["documents"].items():
        assert hashlib.sha256((corpus / name).read_bytes()).hexdigest() == sha


def test_weight_cv_starts_every_fold_from_the_defaults() -> None:
    rng = np.random.default_rng(0)
    samples = []
    for i in range(12):
        X = rng.normal(size=(5, len(FEATURES)))
        rel = np.zeros(5, bool)
        rel[i % 5] = True
        samples.append(Sample(str(i), "number", True, X, rel))
    order = np.arange(12)
    held = cv_weights(samples, 2, order)
    # the "default" column is the defaults' MRR on each held-out fold, whatever was fitted before
    from eval.fit import _mrr
    w0 = np.array([RerankWeights().w.get(k, 0.0) for k in FEATURES])
    assert [round(d, 6) for d, _ in held] == [round(_mrr(samples[f::2], w0), 6) for f in range(2)]
