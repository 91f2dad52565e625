"""Training and validation data of the reader (:mod:`qa.reader_train`): SQuAD-format files (DRCD
converted to simplified Chinese with OpenCC, CMRC 2018 trial), BM25 hard-negative no-answer pairs, and
the token windows with their span labels."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from .reader import context_offsets, tokenize

log = logging.getLogger(__name__)

CMRC_TRIAL = Path(__file__).resolve().parent.parent / "data" / "datasets" / "cmrc2018" / "cmrc2018_trial.json"


def load_squad(paths: list[Path], t2s: bool, limit: int) -> tuple[list[str], list[dict], int]:
    """Paragraph texts and examples {q, para, answers: [(text, start)]}; t2s keeps offsets valid."""
    conv = None
    if t2s:
        import opencc

        conv = opencc.OpenCC("t2s").convert
    contexts: list[str] = []
    examples: list[dict] = []
    dropped = 0
    for path in paths:
        for art in json.loads(Path(path).read_text(encoding="utf-8"))["data"]:
            for para in art["paragraphs"]:
                ctx = conv(para["context"]) if conv else para["context"]
                pid = len(contexts)
                contexts.append(ctx)
                for qa in para["qas"]:
                    if limit and len(examples) >= limit:
                        return contexts, examples, dropped
                    answers = []
                    for a in qa.get("answers", []):
                        text = conv(a["text"]) if conv else a["text"]
                        start = int(a["answer_start"])
                        if ctx[start:start + len(text)] != text:
                            near = [m for m in range(len(ctx)) if ctx.startswith(text, m)] if text else []
                            start = min(near, key=lambda m: abs(m - start)) if near else -1
                        if start >= 0 and text.strip():
                            answers.append((text, start))
                    if not answers:
                        dropped += 1
                        continue
                    q = conv(qa["question"]) if conv else qa["question"]
                    examples.append({"id": qa["id"], "q": q, "para": pid, "answers": answers})
    log.info("%s: %d paragraphs, %d questions, %d dropped (answer not found after conversion)",
             ", ".join(p.name for p in paths), len(contexts), len(examples), dropped)
    return contexts, examples, dropped


def add_negatives(contexts: list[str], examples: list[dict], ratio: float, rng) -> list[dict]:
    """No-answer pairs: question + the top BM25 other paragraph that does not contain an answer."""
    import bm25s
    import jieba

    jieba.setLogLevel(logging.WARNING)
    toks = [[t for t in jieba.lcut(c) if t.strip()] for c in contexts]
    vocab = {t for d in toks for t in d}
    bm25 = bm25s.BM25()
    bm25.index(toks, show_progress=False)
    chosen = rng.choice(len(examples), size=min(len(examples), int(round(ratio * len(examples)))), replace=False)
    negs = []
    for i in sorted(chosen.tolist()):
        ex = examples[i]
        q = [t for t in jieba.lcut(ex["q"]) if t in vocab] or [next(iter(vocab))]
        docs, _ = bm25.retrieve([q], k=min(10, len(contexts)), show_progress=False)
        cands = [int(d) for d in docs[0]] + rng.permutation(len(contexts)).tolist()
        for d in cands:
            if d != ex["para"] and not any(a in contexts[d] for a, _ in ex["answers"]):
                negs.append({"id": ex["id"] + "-neg", "q": ex["q"], "para": d, "answers": []})
                break
    log.info("%d no-answer pairs (BM25 hard negatives)", len(negs))
    return negs


def featurize(tokenizer, contexts, examples, window, stride) -> dict[str, np.ndarray]:
    """Windows padded to ``window``: ids, mask, start/end labels (0 = no answer), offsets, example."""
    feats: dict[str, list] = {k: [] for k in ("input_ids", "attention_mask", "start", "end", "offsets", "example")}
    for a in range(0, len(examples), 256):
        part = examples[a:a + 256]
        enc = tokenize(tokenizer, [e["q"] for e in part], [contexts[e["para"]] for e in part], window, stride,
                       padding="max_length")
        offs = context_offsets(enc)
        for w, ex_i in enumerate(enc["overflow_to_sample_mapping"]):
            ex = part[int(ex_i)]
            s_lab = e_lab = 0
            if ex["answers"]:
                text, cs = ex["answers"][0]
                ce = cs + len(text)
                valid = offs[w, :, 0] >= 0
                idx = np.nonzero(valid)[0]
                if offs[w, idx[0], 0] <= cs and offs[w, idx[-1], 1] >= ce:
                    s_lab = int(idx[offs[w, idx, 0] <= cs][-1])
                    e_lab = int(idx[offs[w, idx, 1] >= ce][0])
            feats["input_ids"].append(enc["input_ids"][w].astype(np.int32))
            feats["attention_mask"].append(enc["attention_mask"][w].astype(np.uint8))
            feats["start"].append(s_lab)
            feats["end"].append(e_lab)
            feats["offsets"].append(offs[w].astype(np.int32))
            feats["example"].append(a + int(ex_i))
    return {k: np.asarray(v) for k, v in feats.items()}


def select_windows(feats: dict[str, np.ndarray], examples: list[dict], same_null: float, rng) -> dict[str, np.ndarray]:
    """Training windows: per question the one holding the answer most centrally, per hard negative one
    random window, and for a ``same_null`` share of questions one window of their paragraph without
    the answer. Overlapping copies of the same answer add cost, not signal."""
    by_example: dict[int, list[int]] = {}
    for w, ex in enumerate(feats["example"]):
        by_example.setdefault(int(ex), []).append(w)
    keep = []
    for ex, ws in by_example.items():
        if not examples[ex]["answers"]:
            keep.append(int(rng.choice(ws)))
            continue
        pos = [w for w in ws if feats["start"][w] > 0]
        nulls = [w for w in ws if feats["start"][w] == 0]
        if pos:
            mid = feats["attention_mask"][pos].sum(1) / 2
            keep.append(pos[int(np.argmin(np.abs((feats["start"][pos] + feats["end"][pos]) / 2 - mid)))])
        if nulls and rng.random() < same_null:
            keep.append(int(rng.choice(nulls)))
    keep = np.sort(np.asarray(keep, dtype=np.int64))
    return {k: v[keep] for k, v in feats.items()}
