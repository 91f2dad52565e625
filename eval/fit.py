"""Fit re-ranking weights and the "not found" calibration on the fit split of the gold set.

    python -m eval fit [--gold data/gold/taiyuan_gold.jsonl] [--index DIR] [--folds 2] [--out FILE]

Only items whose ``split`` is "fit" are read; the test split is sealed (scored, never fitted on).
The result is written with what it was fitted on (model, documents, gold file hash, split; see
:mod:`qa.profile`) and is loaded only by an index that matches.

1. Every fit-split question is retrieved once (top 20 candidates with their features).
2. Re-ranking weights: coordinate ascent on MRR@10 over answerable questions, from the
   hand-set defaults, on a small grid per weight.
3. Calibration: for Chinese questions a logistic model over the top hit's (coverage, dense,
   relative BM25, year tier, whether a unit the question asks for — 多少公里 — appears with a figure in the top passages)
   separates unanswerable ("none") questions from answerable ones, class-balanced; the
   threshold maximises balanced accuracy (refusal accuracy vs 1 - false refusal rate). English
   questions have no unanswerable gold items, so their threshold sits just below the lowest
   top-hit dense score seen on answerable English questions (a conservative refusal).
K-fold cross-validation reports held-out MRR so the in-sample figure is not mistaken for
generalisation; every fold starts from the code's default weights, never from weights fitted on all
items. The CMRC dev set and XQuAD are never used here.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.assistant import DEFAULT_CALIBRATION, Assistant
from index.profile import FITTED_NAME
from qa.profile import file_sha256, fingerprint, write_fitted
from qa.rerank import FEATURES, RerankWeights, score_matrix

from .gold import DEFAULT_GOLD, GoldFormatError, load_assistant, load_gold, select_split
from .metrics import contains_evidence

log = logging.getLogger(__name__)

MAX_FALSE_REFUSAL = 0.08
GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


@dataclass
class Sample:
    """One gold question's candidates."""

    id: str
    type: str
    same_language: bool    # asked in the collection's language (else cross-lingual)
    X: np.ndarray          # (candidates, features)
    relevant: np.ndarray   # (candidates,) bool


def _mrr(samples: list[Sample], w: np.ndarray, k: int = 10) -> float:
    total = 0.0
    for s in samples:
        order = np.argsort(-(s.X @ w), kind="stable")[:k]
        ranks = np.nonzero(s.relevant[order])[0]
        total += 1.0 / (ranks[0] + 1) if len(ranks) else 0.0
    return total / max(1, len(samples))


def coordinate_ascent(samples: list[Sample], w0: np.ndarray, rounds: int = 3) -> np.ndarray:
    """Maximise MRR@10 one weight at a time over GRID (ties keep the current value)."""
    w = w0.copy()
    best = _mrr(samples, w)
    for _ in range(rounds):
        improved = False
        for j in range(len(w)):
            for v in GRID:
                trial = w.copy()
                trial[j] = v
                score = _mrr(samples, trial)
                if score > best + 1e-9:
                    best, w, improved = score, trial, True
        if not improved:
            break
    return w


def _logistic(X: np.ndarray, y: np.ndarray, steps: int = 3000, lr: float = 0.5, l2: float = 1e-3) -> np.ndarray:
    """Class-balanced logistic regression by gradient descent; returns [bias, weights...]."""
    Xb = np.hstack([np.ones((len(X), 1)), X])
    pos = max(1, y.sum())
    neg = max(1, len(y) - y.sum())
    sw = np.where(y == 1, 0.5 / pos, 0.5 / neg)
    beta = np.zeros(Xb.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(Xb @ beta)))
        grad = Xb.T @ (sw * (p - y)) + l2 * np.r_[0, beta[1:]]
        beta -= lr * grad * 10
    return beta


def collect(assistant: Assistant, items: list) -> tuple[list[Sample], list[dict]]:
    """Retrieve every gold question once; label candidates with the evaluation's hit rule."""
    samples, tops = [], []
    for item in items:
        _, info, qtype, hits, _ = assistant.retrieve(item.question, item.history or None, k=20)
        if not hits:
            continue
        rel = np.array([any(contains_evidence(h.passage.text, e) for e in item.evidence) for h in hits])
        samples.append(Sample(item.id, item.type, info.same_language, score_matrix(hits), rel))
        tops.append({"id": item.id, "type": item.type, "same_language": info.same_language, "hits": hits, "question": item.question,
                     "history": item.history or None})
    return samples, tops


# Inputs were chosen by held-out refusal accuracy (repeated stratified k-fold, 27 unanswerable
# Chinese items): coverage + dense + unit 0.45 (2-fold) / 0.54 (5-fold); adding the top hit's
# relative BM25 score 0.70 / 0.73 at 6-7% false refusals. The best-sentence similarity, the
# re-ranker score margin and the fused score gained less or nothing, so they are not used. Later
# (97 answerable / 41 unanswerable Chinese fit items, repeated 2-/5-fold): the top hit's year tier lifted
# held-out refusal 0.24 / 0.26 → 0.30 / 0.35 at 8% false refusals; the best sentence's coverage or
# similarity, and the heaviest question word missing from the top passage, gained nothing.
ZH_CAL_FEATURES = ("coverage", "dense", "bm25", "unit_missing", "year")


def _threshold(probs: np.ndarray, y: np.ndarray, max_false: float = MAX_FALSE_REFUSAL) -> float:
    """Best refusal accuracy with false refusals at or below MAX_FALSE_REFUSAL.

    A false refusal hides an answer the documents hold, so it costs more than a missed refusal.
    """
    best_t, best_ref = float(probs.min()) - 1e-3, -1.0
    for t in np.unique(np.round(probs, 4)):
        refusal = float(np.mean(probs[y == 0] < t)) if (y == 0).any() else 1.0
        false_ref = float(np.mean(probs[y == 1] < t))
        if false_ref <= max_false and refusal > best_ref + 1e-9:
            best_t, best_ref = float(t), refusal
    return best_t


def _predict(X: np.ndarray, beta: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(np.hstack([np.ones((len(X), 1)), X]) @ beta)))


def refusal_cv(X: np.ndarray, y: np.ndarray, folds: int = 2, seed: int = 0, repeats: int = 5,
               max_false: float = MAX_FALSE_REFUSAL) -> dict[str, float]:
    """Held-out refusal accuracy / false-refusal rate of the not-found model (stratified k-fold, repeated)."""
    rng = np.random.default_rng(seed)
    refusal, false_ref = [], []
    for _ in range(repeats):
        fold_of = np.empty(len(y), int)
        for label in (0, 1):  # stratified: the few unanswerable items spread over the folds
            idx = rng.permutation(np.nonzero(y == label)[0])
            fold_of[idx] = np.arange(len(idx)) % folds
        for f in range(folds):
            tr, te = fold_of != f, fold_of == f
            beta = _logistic(X[tr], y[tr])
            t = _threshold(_predict(X[tr], beta), y[tr], max_false)
            p = _predict(X[te], beta)
            if (y[te] == 0).any():
                refusal.extend((p[y[te] == 0] < t).tolist())
            false_ref.extend((p[y[te] == 1] < t).tolist())
    return {"refusal_accuracy": round(float(np.mean(refusal)), 4) if refusal else None,
            "false_refusal_rate": round(float(np.mean(false_ref)), 4)}


def cv_weights(samples: list[Sample], folds: int, order: np.ndarray) -> list[tuple[float, float]]:
    """Held-out MRR@10 per fold: (defaults, weights fitted on the other folds).

    Every fold starts from the code's defaults (``RerankWeights()``), never from weights fitted on
    all items, which would leak the held-out fold into its own estimate.
    """
    defaults = RerankWeights().w
    w0 = np.array([defaults.get(k, 0.0) for k in FEATURES])
    held = []
    for f in range(folds):
        test_idx = set(order[f::folds].tolist())
        test = [samples[i] for i in order if i in test_idx]
        train = [samples[i] for i in order if i not in test_idx]
        held.append((_mrr(test, w0), _mrr(test, coordinate_ascent(train, w0))))
    return held


# The reader's not-found model may refuse at most this share of answerable fit items (the issue's
# target for false refusals); a refused answerable question hides what the documents say.
READER_MAX_FALSE_REFUSAL = 0.05


def fit_reader_refusal(assistant: Assistant, retrieved: list[tuple[str, str, bool, list]], folds: int = 2,
                       seed: int = 0) -> tuple[dict | None, dict]:
    """Fit the reader answerer's not-found model on fit-split items.

    Args:
        assistant: With the fitted weights and calibration in place.
        retrieved: Per item (type, rewritten query, has Chinese, re-ranked hits), as :func:`fit`
            retrieved them for the calibration (not retrieved again).

    Inputs per question (:func:`qa.answerers.trained.refusal_inputs`): the reader's best span margin
    (span score minus its passage's no-answer score) over the top passages, and the logit of the
    retrieval confidence; class-balanced logistic regression; threshold as high as keeps in-sample
    false refusals ≤ READER_MAX_FALSE_REFUSAL. Returns (params, report), (None, {}) without the reader.
    """
    from qa.answerers.trained import ReaderAnswerer, refusal_inputs
    from qa.reader import ReaderError

    answerer = assistant.answerer if isinstance(assistant.answerer, ReaderAnswerer) else ReaderAnswerer(assistant.embedder)
    X, y = [], []
    try:
        for qtype, rewritten, same_language, hits in retrieved:
            conf = assistant.confidence(assistant.refusal_features(rewritten, hits), same_language)
            spans = answerer.reader.read(rewritten, [h.passage.text for h in hits[:answerer.passages]])
            inputs = refusal_inputs(spans[0].margin if spans else -20.0, conf)
            X.append([inputs["margin"], inputs["confidence"]])
            y.append(0 if qtype == "none" else 1)
    except ReaderError as exc:
        log.warning("reader not available, its not-found model is not fitted: %s", exc)
        return None, {}
    X, y = np.array(X), np.array(y, dtype=float)
    beta = _logistic(X, y)
    probs = _predict(X, beta)
    t = _threshold(probs, y, READER_MAX_FALSE_REFUSAL)
    params = {"bias": float(beta[0]), "margin": float(beta[1]), "confidence": float(beta[2]), "threshold": t}
    report = {
        "items": int(len(y)), "unanswerable": int((y == 0).sum()),
        "refusal_accuracy_in_sample": round(float(np.mean(probs[y == 0] < t)), 4) if (y == 0).any() else None,
        "false_refusal_rate_in_sample": round(float(np.mean(probs[y == 1] < t)), 4),
        "cv_heldout": refusal_cv(X, y, folds=folds, seed=seed, max_false=READER_MAX_FALSE_REFUSAL),
    }
    return params, report


def fit(assistant: Assistant, gold_path: Path, folds: int = 2, seed: int = 0, calibration_only: bool = False,
        out: Path | None = None) -> dict:
    """Fit weights and calibration on the fit split; write them with their provenance; return a report.

    Args:
        assistant: Loaded assistant (with ``calibration_only`` its current weights are kept; otherwise
            the search starts from the code's defaults).
        gold_path: Gold file (only its "fit" items are used).
        folds: Folds of the held-out estimates.
        seed: Fold shuffling seed.
        calibration_only: Keep the re-ranking weights; refit only the not-found model.
        out: Where the parameters are written (default ``fitted.json`` in the index's corpus folder,
            which the next build of that index takes into its profile).

    Raises:
        GoldFormatError: the gold file has no fit split.
    """
    items = select_split(load_gold(gold_path), "fit")
    if not items:
        raise GoldFormatError(f"{gold_path} has no items with split 'fit' (run python -m eval split)")
    samples, tops = collect(assistant, items)
    all_answerable = [s for s in samples if s.type != "none" and s.relevant.any()]
    answerable = [s for s in all_answerable if s.same_language]
    english = [s for s in all_answerable if not s.same_language]
    start = assistant.weights if calibration_only else RerankWeights()
    w0 = np.array([start.w.get(k, 0.0) for k in FEATURES])
    w0_en = np.array([start.w_en.get(k, 0.0) for k in FEATURES])
    before = _mrr(answerable, w0)

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(answerable))
    held = cv_weights(answerable, folds, order)
    w = w0 if calibration_only else coordinate_ascent(answerable, w0)
    after = _mrr(answerable, w)
    # English: few items, so only the dense/fused/year weights move (lexical ones stay 0).
    en_before = _mrr(english, w0_en)
    mask = np.array([k in ("sent", "dense", "fused", "year") for k in FEATURES])
    w_en = w0_en.copy()
    if english and not calibration_only:
        best_en = en_before
        for _ in range(3):
            for j in np.nonzero(mask)[0]:
                for v in GRID:
                    trial = w_en.copy()
                    trial[j] = v
                    score = _mrr(english, trial)
                    if score > best_en + 1e-9:
                        best_en, w_en = score, trial
    weights = RerankWeights({k: float(v) for k, v in zip(FEATURES, w)},
                            {k: float(v) for k, v in zip(FEATURES, w_en)})

    # Calibration features of the top hit exactly as `ask` will see it: retrieved again with the
    # fitted weights in place (English weights for English questions, year tiers first).
    assistant.reranker.weights = weights
    zh_X, zh_y, en_dense, en_y, retrieved = [], [], [], [], []
    for s, t in zip(samples, tops):
        rewritten, _, _, hits, _ = assistant.retrieve(t["question"], t["history"], k=20)
        retrieved.append((s.type, rewritten, s.same_language, hits))
        feats = assistant.refusal_features(rewritten, hits)
        if s.same_language:
            zh_X.append([feats[k] for k in ZH_CAL_FEATURES])
            zh_y.append(0 if s.type == "none" else 1)
        else:
            en_dense.append(feats["dense"])
            en_y.append(0 if s.type == "none" else 1)
    zh_X, zh_y = np.array(zh_X), np.array(zh_y, dtype=float)
    beta = _logistic(zh_X, zh_y)
    probs = _predict(zh_X, beta)
    threshold = _threshold(probs, zh_y)
    cv = refusal_cv(zh_X, zh_y, folds=folds, seed=seed)
    refusal = float(np.mean(probs[zh_y == 0] < threshold)) if (zh_y == 0).any() else None
    false_ref = float(np.mean(probs[zh_y == 1] < threshold))
    # English: one input (no lexical overlap with Chinese text): conf = sigmoid(en_bias + en_dense * dense)
    # crosses `threshold` at a cut on the top hit's similarity, chosen by the same rule as the Chinese
    # threshold when unanswerable English items exist, else 0.02 below the lowest answerable one.
    en_scale = 40.0
    en_d, en_lab = np.array(en_dense), np.array(en_y, dtype=float)
    en_cv = None
    if (en_lab == 0).any() and (en_lab == 1).any():
        en_cut = _threshold(en_d, en_lab)
        en_cv = refusal_cv(en_d[:, None], en_lab, folds=folds, seed=seed)
    elif (en_lab == 1).any():
        en_cut = float(en_d[en_lab == 1].min()) - 0.02
    else:
        en_cut = 0.7
    logit_t = math.log(threshold / (1 - threshold))
    calibration = {
        "zh_bias": float(beta[0]), "zh_cov": float(beta[1]), "zh_dense": float(beta[2]), "zh_bm25": float(beta[3]),
        "zh_unit": float(beta[4]), "zh_year": float(beta[5]),
        "en_bias": float(logit_t - en_scale * en_cut), "en_dense": en_scale, "threshold": threshold,
    }
    report = {
        "questions": len(samples),
        "answerable_with_candidates": len(answerable),
        "mrr@10_before": round(before, 4),
        "mrr@10_after": round(after, 4),
        "en_mrr@10_before": round(en_before, 4),
        "en_mrr@10_after": round(_mrr(english, w_en), 4),
        "cv_heldout_mrr@10": [{"default": round(a, 4), "fitted": round(b, 4)} for a, b in held],
        "zh_refusal_accuracy_in_sample": refusal,
        "zh_false_refusal_rate_in_sample": round(false_ref, 4),
        "zh_refusal_cv_heldout": cv,
        "calibration_only": calibration_only,
        "en_dense_cut": round(en_cut, 4),
        "en_refusal_accuracy_in_sample": round(float(np.mean(en_d[en_lab == 0] < en_cut)), 4) if (en_lab == 0).any() else None,
        "en_false_refusal_rate_in_sample": round(float(np.mean(en_d[en_lab == 1] < en_cut)), 4) if (en_lab == 1).any() else None,
        "en_refusal_cv_heldout": en_cv,
    }
    assistant.calibration = dict(DEFAULT_CALIBRATION, **calibration)
    reader_params, reader_report = fit_reader_refusal(assistant, retrieved, folds=folds, seed=seed)
    if reader_params:
        calibration["reader"] = reader_params
        report["reader"] = reader_report
    fitted_on = {**fingerprint(assistant.index.manifest), "gold_file": Path(gold_path).name,
                 "gold_sha256": file_sha256(gold_path), "split": "fit", "items": len(items)}
    write_fitted({"weights": weights.w, "weights_en": weights.w_en, "calibration": calibration,
                  "fitted_on": fitted_on, "report": report},
                 out or Path(assistant.index.manifest.get("corpus_dir") or ".") / FITTED_NAME)
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m eval fit``: fit on the fit split and write the parameters with their provenance."""
    p = argparse.ArgumentParser(prog="python -m eval fit", description=__doc__.split("\n")[0])
    p.add_argument("--gold", default=str(DEFAULT_GOLD), help="gold .jsonl (only its fit split is used)")
    p.add_argument("--index", help="index directory (default: the bundled corpus's)")
    p.add_argument("--folds", type=int, default=2)
    p.add_argument("--out", help="where to write the parameters (default fitted.json in the index's corpus folder)")
    p.add_argument("--calibration-only", action="store_true",
                   help="keep the re-ranking weights, refit only the not-found model")
    args = p.parse_args(argv)
    logging.getLogger().setLevel(logging.INFO)
    try:
        assistant = load_assistant(args.index)
        report = fit(assistant, Path(args.gold), folds=args.folds, calibration_only=args.calibration_only,
                     out=Path(args.out) if args.out else None)
    except GoldFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, ensure_ascii=False, indent=1))
    print(f"wrote {args.out or Path(assistant.index.manifest.get('corpus_dir') or '.') / FITTED_NAME}; "
          "rebuild the index (python -m index build) to use them")
    return 0
